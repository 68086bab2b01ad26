"""Restore plans (``restore --dry-run``): what a restore would ask of the target engine.

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
  the same run (:class:`~.templates.TemplateCheck` applies the same rule during a restore).

Every OVF copy is read and checked first, exactly as a restore would (content hash, size
limit, the hardened parser): a copy that a restore would refuse is a problem of the plan.

Problems make the plan's exit code 1; notes do not. A clean plan is 0.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

from ..engine import Cluster, Engine
from ..errors import BackupError
from ..host import CheckedOvf, ProviderHandle
from ..model import Restorable, VmIdentity
from .restore import copy_names, target_cluster
from .templates import BLANK, needed_template

PROBLEM, NOTE = "problem", "note"


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
    identity: Optional[VmIdentity] = None  # what the checked OVF says (None: not known)
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


def make_plan(items: Sequence[Restorable], handles: Dict[str, ProviderHandle],
              engine: Engine, *, copies: int = 1, pattern: Optional[str] = None,
              cluster: Optional[str] = None, new_ids: bool = False) -> RestorePlan:
    """What restoring ``items`` (as :func:`~.restore.restore` would) means on ``engine``.

    Reads each OVF copy once through its provider, checked as a restore checks it; reads
    only from the engine: ``GET /vms``, ``/clusters``, ``/networks``, ``/vnicprofiles``,
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
        checked, refused = _checked(item, handles)
        target = target_cluster(item, cluster, checked)
        identity = checked.identity if checked is not None else item.identity
        for copy in copy_names(item, copies, pattern, new_ids):
            name, regenerate = copy.name, copy.new_ids
            cp = CopyPlan(item=item, name=name, cluster=target, new_ids=regenerate,
                          identity=identity)
            plan.copies.append(cp)
            if refused:
                cp.problem("stored OVF", f"{refused}; a restore sends nothing for it")
                continue
            _collisions(cp, engine, vms, vm_ids_by_name, planned)
            planned[name] = item.vm_id
            found = _cluster(cp, clusters)
            if item.registers:
                if regenerate:
                    cp.problem("copies", "msd registers what the storage domain holds, with "
                               "its own ids: it cannot make copies with new ids")
                _template_registered(cp, engine, batch_templates)
                cp.note("not checked", "networks, vNIC profiles and disks: msd lists the "
                        f"{'VM' if item.kind == 'vm' else 'template'} without its OVF; "
                        "registering uses the disks the storage domain holds "
                        "(allow_partial_import: missing ones are left out)")
                continue
            _networks(cp, engine, found)
            _disks(cp, engine)
            _template_forced_blank(cp)
    return plan


def _checked(item: Restorable,
             handles: Dict[str, ProviderHandle]) -> "tuple[Optional[CheckedOvf], str]":
    """The item's checked OVF (None for a registering provider), or why it is refused."""
    if item.registers:
        return None, ""
    handle = handles.get(item.provider)
    if handle is None:
        return None, f"provider {item.provider} is not enabled here"
    try:
        return handle.read_checked(item), ""
    except BackupError as e:
        return None, str(e)


def _collisions(cp: CopyPlan, engine: Engine, vms: Dict[str, str],
                vm_ids_by_name: Dict[str, str], planned: Dict[str, str]) -> None:
    item = cp.item
    keeps_id = not cp.new_ids
    if keeps_id and item.vm_id in vms:
        advice = ("remove that VM first" if item.registers else
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
        if not cp.item.registers:     # registering: the OVF's own cluster
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
    identity = cp.identity
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
    identity = cp.identity
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
    identity = cp.identity
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
        if item.registers:
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
