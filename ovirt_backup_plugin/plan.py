"""Restore plans (``restore --dry-run``) and the interactive pick of what to restore.

A :class:`RestorePlan` says, for every copy a restore would make, what the *target* engine
would be asked to create and what stands in the way, without changing anything: it only
reads (``GET``) the engine. :func:`make_plan` computes it, :func:`print_plan` shows it.

What is checked, per copy (``ovirt-api.md`` §2 and §3 for the engine's rules):

* **collisions** with the VMs the engine has now (one ``GET /vms``: id → name): the engine
  refuses (409) a VM whose id exists (copies with new ids escape that) or whose name
  exists (the engine's rule is per data center; the plan counts any VM of that name);
* the target **cluster** (``GET /clusters``);
* the **networks** and **vNIC profiles** the OVF's NICs use, in the data center of the
  target cluster (``GET /networks``, ``GET /vnicprofiles``);
* the **disks** the OVF references (``GET /disks/{id}``, 404 means missing): on the
  ``POST /vms`` path the engine re-attaches only disks that exist, it never creates them;
* the **template**: ``POST /vms`` forces the Blank template, so a VM's template is not
  needed there (the plan says so in a note); registering a VM from a storage domain
  (``msd``) needs its template, on the engine or among the templates restored first in
  the same run (:class:`TemplateCheck` applies the same rule during a real restore).

Problems make the plan's exit code 1; notes do not. A clean plan is 0.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Set

from .engine import Cluster, Engine
from .model import Restorable
from .restore import Listing, copy_names

BLANK = "00000000-0000-0000-0000-000000000000"     # the Blank template's id

PROBLEM, NOTE = "problem", "note"


def restores_by_registering(item: Restorable) -> bool:
    """True when the item comes back by registering it from a storage domain (``msd``),
    not by ``POST /vms`` with its OVF: ids and disks stay as the domain holds them."""
    return item.registers


def needed_template(item: Restorable) -> str:
    """The template id a restore of ``item`` needs on the engine ('' when none is needed).

    Only registering needs it: ``POST /vms`` with an OVF forces the Blank template.
    """
    if item.kind != "vm" or not restores_by_registering(item) or item.identity is None:
        return ""
    template_id = item.identity.template_id
    return "" if template_id in ("", BLANK) else template_id


class TemplateCheck:
    """Whether a VM's template is there when it is registered: on the engine (one
    ``GET /templates``, read when first needed) or restored earlier in the same run."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.restored: Set[str] = set()
        self._on_engine: Optional[Set[str]] = None

    def restored_ok(self, item: Restorable) -> None:
        if item.kind == "template":
            self.restored.add(item.vm_id)

    def missing(self, item: Restorable) -> Optional[str]:
        """Why ``item`` cannot be registered for want of its template, or None."""
        template_id = needed_template(item)
        if not template_id or template_id in self.restored:
            return None
        if self._on_engine is None:
            self._on_engine = {t.id for t in self.engine.templates()}
        if template_id in self._on_engine:
            return None
        return (f"its template {template_id} is neither on the engine nor restored in this "
                "run; register or restore that template first (name it together with the VM)")


# --------------------------------------------------------------------------------------
# The plan
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Finding:
    severity: str                          # PROBLEM or NOTE
    topic: str                             # id, name, cluster, network, vnic profile, disk, ...
    text: str


@dataclass
class CopyPlan:
    item: Restorable
    name: str
    cluster: str                           # '' : the cluster the storage domain's OVF names
    new_ids: bool
    findings: List[Finding] = field(default_factory=list)
    checked: List[str] = field(default_factory=list)      # what was found in order

    @property
    def problems(self) -> List[Finding]:
        return [f for f in self.findings if f.severity == PROBLEM]

    def problem(self, topic: str, text: str) -> None:
        self.findings.append(Finding(PROBLEM, topic, text))

    def note(self, topic: str, text: str) -> None:
        self.findings.append(Finding(NOTE, topic, text))


@dataclass
class RestorePlan:
    engine_url: str
    copies: List[CopyPlan] = field(default_factory=list)

    @property
    def problems(self) -> List[Finding]:
        return [f for c in self.copies for f in c.problems]

    @property
    def exit_code(self) -> int:
        """0: every copy can be made as planned; 1: the plan has problems."""
        return 1 if self.problems else 0


def make_plan(items: Sequence[Restorable], engine: Engine, *, copies: int = 1,
              pattern: Optional[str] = None, cluster: Optional[str] = None,
              new_ids: bool = False) -> RestorePlan:
    """What restoring ``items`` (as :func:`~.restore.restore` would) means on ``engine``.

    Reads only: ``GET /vms``, ``/clusters``, ``/networks``, ``/vnicprofiles``,
    ``/templates`` and ``/disks/{id}``, each at most once per engine.
    """
    plan = RestorePlan(engine_url=engine.url)
    vms = engine.vm_names()
    vm_ids_by_name: Dict[str, str] = {}
    for vm_id, name in vms.items():
        vm_ids_by_name.setdefault(name, vm_id)
    clusters = {c.name: c for c in engine.clusters()}
    batch_templates = {i.vm_id: i for i in items if i.kind == "template"}
    planned: Dict[str, str] = {}           # name → the item it is planned for
    for item in items:
        target = cluster or item.cluster or (item.identity.cluster if item.identity else "")
        for name, regenerate in copy_names(item, copies, pattern, new_ids):
            cp = CopyPlan(item=item, name=name, cluster=target, new_ids=regenerate)
            plan.copies.append(cp)
            _collisions(cp, engine, vms, vm_ids_by_name, planned)
            planned[name] = item.vm_id
            target_cluster = _cluster(cp, clusters)
            if restores_by_registering(item):
                if regenerate:
                    cp.problem("copies", "msd registers what the storage domain holds, with "
                               "its own ids: it cannot make copies with new ids")
                _template_registered(cp, engine, batch_templates)
                cp.note("not checked", "networks, vNIC profiles and disks: msd lists the "
                        f"{'VM' if item.kind == 'vm' else 'template'} without its OVF; "
                        "registering uses the disks the storage domain holds "
                        "(allow_partial_import: missing ones are left out)")
                continue
            if item.identity is None:
                cp.note("not checked", f"networks, vNIC profiles and disks: {item.provider} "
                        "lists it without what its OVF says")
            _networks(cp, engine, target_cluster)
            _disks(cp, engine)
            _template_forced_blank(cp)
    return plan


def _collisions(cp: CopyPlan, engine: Engine, vms: Dict[str, str],
                vm_ids_by_name: Dict[str, str], planned: Dict[str, str]) -> None:
    item = cp.item
    keeps_id = not cp.new_ids
    if keeps_id and item.vm_id in vms:
        advice = ("remove that VM first" if restores_by_registering(item) else
                  "restore a copy with --new-ids, or remove that VM first")
        cp.problem("id", f"the engine already has a VM with id {item.vm_id} "
                   f"({vms[item.vm_id]}): it would refuse this one (409); {advice}")
    other = vm_ids_by_name.get(cp.name)
    if other and not (keeps_id and other == item.vm_id):     # else: the id problem says it
        cp.problem("name", f"the engine already has a VM named {cp.name} ({other}): it "
                   "would refuse this one (409); choose another name with --name-pattern")
    if item.kind == "template":
        for t in engine.templates():
            if keeps_id and t.id == item.vm_id:
                cp.problem("id", f"the engine already has template {t.name} with id {t.id}")
            elif t.name == cp.name:
                cp.problem("name", f"the engine already has a template named {t.name} "
                           f"({t.id})")
    if cp.name in planned:
        cp.problem("name", f"{cp.name} is planned twice in this restore (two VMs of that "
                   "name); restore them one at a time or with --name-pattern")
    if not any(f.topic in ("id", "name") for f in cp.findings):
        what = "VM or template" if item.kind == "template" else "VM"
        cp.checked.append(f"no {what} of that {'id or name' if keeps_id else 'name'}")


def _cluster(cp: CopyPlan, clusters: Dict[str, Cluster]) -> Optional[Cluster]:
    """Check the target cluster; return it (None when unknown)."""
    if not cp.cluster:
        if not restores_by_registering(cp.item):     # registering: the OVF's own cluster
            cp.problem("cluster", "no target cluster: the OVF names none; give --cluster")
        return None
    found = clusters.get(cp.cluster)
    if found is None:
        known = ", ".join(sorted(clusters)) or "none"
        cp.problem("cluster", f"the engine has no cluster named {cp.cluster} "
                   f"(it has: {known}); give --cluster")
        return None
    cp.checked.append(f"cluster {cp.cluster}")
    return found


def _networks(cp: CopyPlan, engine: Engine, cluster: Optional[Cluster]) -> None:
    """The NICs' networks and vNIC profiles, in the target cluster's data center (in any
    data center when the cluster is unknown)."""
    identity = cp.item.identity
    nics = [n for n in (identity.nics if identity else ()) if n.network]
    if not nics:
        return
    dc_id = cluster.datacenter_id if cluster else None
    if cluster:
        dc = f"data center {engine.datacenter_of_cluster(cluster.id) or dc_id}"
        lacks = f"{dc} (of cluster {cluster.name}) has no {{}}".format
    else:
        lacks = "no data center of the engine has a {}".format
    networks = [n for n in engine.networks() if dc_id is None or n.datacenter_id == dc_id]
    profiles = engine.vnic_profiles() if any(n.vnic_profile for n in nics) else []
    seen_networks, seen_profiles = set(), set()
    for nic in nics:
        ids = {n.id for n in networks if n.name == nic.network}
        if not ids:
            cp.problem("network", f"{nic.name} uses network {nic.network}; "
                       f"{lacks('network of that name')}: the restored NIC would not be "
                       "connected")
            continue
        seen_networks.add(nic.network)
        if not nic.vnic_profile:
            continue
        if not any(p.name == nic.vnic_profile and p.network_id in ids for p in profiles):
            cp.problem("vnic profile", f"{nic.name} uses vNIC profile {nic.vnic_profile} of "
                       f"network {nic.network}; "
                       f"{lacks('vNIC profile of that name on that network')}")
            continue
        seen_profiles.add((nic.network, nic.vnic_profile))
    if seen_networks:
        cp.checked.append(_count(len(seen_networks), "network"))
    if seen_profiles:
        cp.checked.append(_count(len(seen_profiles), "vNIC profile"))


def _disks(cp: CopyPlan, engine: Engine) -> None:
    identity = cp.item.identity
    disks = identity.disks if identity else ()
    present = 0
    for disk in disks:
        if engine.disk_exists(disk.id):
            present += 1
            continue
        label = f"{disk.alias} ({disk.id})" if disk.alias else disk.id
        if cp.item.kind == "template":
            cp.problem("disk", f"disk {label} does not exist on the engine: it refuses a "
                       "template whose disks are missing (400)")
        else:
            cp.problem("disk", f"disk {label} does not exist on the engine: the VM would be "
                       "created without it (the engine re-attaches only disks that exist, "
                       "it never creates them)")
    if present:
        cp.checked.append(_count(present, "disk") + " exist" + ("s" if present == 1 else ""))


def _template_forced_blank(cp: CopyPlan) -> None:
    identity = cp.item.identity
    if cp.item.kind != "vm" or identity is None or identity.template_id in ("", BLANK):
        return
    label = (f"{identity.template_name} ({identity.template_id})" if identity.template_name
             else identity.template_id)
    cp.note("template", f"the OVF names template {label}; POST /vms creates the VM on the "
            "Blank template (the engine forces it), so that template is not needed")


def _template_registered(cp: CopyPlan, engine: Engine,
                         batch_templates: Dict[str, Restorable]) -> None:
    template_id = needed_template(cp.item)
    if not template_id:
        return
    if template_id in batch_templates:
        cp.checked.append(f"template {batch_templates[template_id].name} "
                          "(restored first in this run)")
    elif any(t.id == template_id for t in engine.templates()):
        name = next(t.name for t in engine.templates() if t.id == template_id)
        cp.checked.append(f"template {name}")
    else:
        cp.problem("template", f"template {template_id} is neither on the engine nor among "
                   "what this restore brings back: registering the VM needs it; restore "
                   "that template too (name it together with the VM), or skip this VM")


def _count(n: int, what: str, plural: str = "") -> str:
    return f"{n} {what if n == 1 else plural or what + 's'}"


def _taken(item: Restorable) -> str:
    return item.taken_at.strftime("%Y-%m-%d %H:%M UTC") if item.taken_at else "-"


def print_plan(plan: RestorePlan, echo: Callable[[str], None] = print) -> None:
    echo(f"restore plan against {plan.engine_url} (dry run: nothing is changed)")
    current = None
    for cp in plan.copies:
        item = cp.item
        if item is not current:
            current = item
            echo("")
            echo(f"{item.kind} {item.name} ({item.vm_id}) from {item.provider}, "
                 f"generation {item.generation}, taken {_taken(item)}")
        if restores_by_registering(item):
            how = "register it from its storage domain as it is (same ids)"
        else:
            how = "POST /vms with new ids" if cp.new_ids else "POST /vms keeping its ids"
        where = f"in cluster {cp.cluster}" if cp.cluster else "in the cluster the OVF names"
        echo(f"  {cp.name}: create {where}; {how}")
        for f in cp.findings:
            if f.severity == PROBLEM:
                echo(f"    PROBLEM {f.topic}: {f.text}")
        if cp.checked:
            echo(f"    ok: {'; '.join(cp.checked)}")
        for f in cp.findings:
            if f.severity == NOTE:
                echo(f"    note: {f.topic}: {f.text}")
    echo("")
    problems = plan.problems
    if not plan.copies:
        echo("plan: nothing to restore")
    elif problems:
        bad = sum(1 for c in plan.copies if c.problems)
        echo(f"plan: {_count(len(problems), 'problem')} in {bad} of "
             f"{_count(len(plan.copies), 'copy', 'copies')}; nothing was changed")
    else:
        echo(f"plan: clean, {_count(len(plan.copies), 'copy', 'copies')} can be restored; "
             "nothing was changed")


# --------------------------------------------------------------------------------------
# Interactive pick
# --------------------------------------------------------------------------------------
_RANGE = re.compile(r"\A(\d+)(?:-(\d+))?\Z")


def parse_selection(text: str, count: int) -> List[int]:
    """Numbers (1-based) picked from a list of ``count``: ``"1 3 5-7"`` → [1, 3, 5, 6, 7].

    Separators are spaces or commas; ``all`` picks everything; empty text or ``q`` picks
    nothing (cancel). The result is sorted and without duplicates. Anything else raises
    ValueError with a message for the user.
    """
    text = text.strip().lower()
    if text in ("", "q", "quit"):
        return []
    if text in ("all", "*"):
        return list(range(1, count + 1))
    picked: Set[int] = set()
    for token in re.split(r"[\s,]+", text):
        match = _RANGE.match(token)
        if not match:
            raise ValueError(f"{token!r} is not a number or a range like 5-7")
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) else first
        if first > last:
            raise ValueError(f"{token!r}: a range goes from low to high (e.g. {last}-{first})")
        for n in (first, last):
            if not 1 <= n <= count:
                raise ValueError(f"{n} is not in the list (1-{count})")
        picked.update(range(first, last + 1))
    return sorted(picked)


def filter_listing(listing: Listing, *, provider: Optional[str] = None,
                   generation: Optional[str] = None,
                   at: Optional[dt.datetime] = None) -> Listing:
    """The same listing with only the items that match the restore's filters."""
    items = [i for i in listing.items
             if (not provider or i.provider == provider)
             and (not generation or i.generation == generation)
             and (not at or (i.taken_at and i.taken_at <= at))]
    return Listing(items=items, errors=dict(listing.errors))


def pick(listing: Listing, *, echo: Callable[[str], None] = print,
         read: Callable[[str], str] = input) -> List[Restorable]:
    """Show the newest generation of each VM, numbered, and read which to restore.

    Returns the picked items ([] when the user cancels, or at end of input). A wrong
    answer is explained and asked again.
    """
    for provider, error in listing.errors.items():
        echo(f"warning: provider {provider} could not list: {error}")
    items = listing.newest()
    if not items:
        echo("nothing to restore")
        return []
    rows = [("#", "NAME", "DATA CENTER", "TAKEN (UTC)", "FROM")]
    for n, item in enumerate(items, 1):
        name = item.name + (" (template)" if item.kind == "template" else "")
        taken = item.taken_at.strftime("%Y-%m-%d %H:%M") if item.taken_at else "-"
        rows.append((str(n), name, item.datacenter or "-", taken,
                     ",".join(listing.holders(item))))
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    for r in rows:
        echo("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())
    while True:
        try:
            text = read("restore which (e.g. 1 3 5-7; empty or q cancels)? ")
        except EOFError:
            return []
        try:
            numbers = parse_selection(text, len(items))
        except ValueError as e:
            echo(f"  {e}")
            continue
        return [items[n - 1] for n in numbers]
