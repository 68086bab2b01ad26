"""Restore plans (``restore --dry-run``): what a restore would ask of the target engine.

A :class:`RestorePlan` says, for every copy a restore would make, what the *target* engine
would be asked to create and what stands in the way, without changing anything: it only
reads (``GET``) the engine. :func:`make_plan` computes it, :func:`print_plan` shows it,
:func:`print_summary` shows its totals (before a large restore asks to go on).

What is checked, per copy, in the order the engine checks an import where REST shows it
(ImportVmFromConfiguration's validate(), engine-facts B4):

* the **stored OVF**: read and checked exactly as a restore would (content hash, size
  limit, the hardened parser): a copy a restore would refuse is a problem of the plan;
* the target **cluster** exists (``GET /clusters``; the cluster given, or the one recorded
  at backup after ``--map-cluster``); it has a **BIOS type** (a new cluster no host was
  activated in has none, and the engine refuses every import into it:
  CLUSTER_BIOS_TYPE_NOT_SET, 409); its **compatibility level** against the OVF's
  (``GET /clusterlevels``: a level the engine does not support is a problem, one it
  raises or lowers to the cluster's is a note: it logs what it changed, 1229); its
  **data center** is up (ACTION_TYPE_FAILED_STORAGE_POOL_STATUS_ILLEGAL, 409);
* the **MAC pool** of the cluster can give the copies with new ids their NICs
  (``GET /macpools``, and the MACs its clusters' VMs use: ``GET /vms?search=cluster=X
  &follow=nics``; MAC_POOL_NOT_ENOUGH_MAC_ADDRESSES, 409);
* **id** and **name** collisions with the VMs the engine has now, both reported when both
  collide (a few copies are looked up by search, many by one listing:
  :class:`~.existing.ExistingVms`): the engine refuses (409) a VM whose id exists (copies
  with new ids escape that) and one whose name exists in the data center;
* the **template**: ``POST /vms`` forces the Blank template, so a VM's template is not
  needed there (a note); registering a VM from a storage domain (``msd``) needs its
  template, on the engine or among the templates restored first in the same run;
* the **networks** and **vNIC profiles** the NICs use after ``--map-network`` /
  ``--map-vnic-profile``, in the data center of the target cluster (``GET /networks``,
  ``GET /vnicprofiles``): a NIC whose network is missing is imported without one;
* the **disks** the OVF references (``GET /disks/{id}``, 404 means missing): the engine
  re-attaches only disks that exist, it never creates them;
* what a configuration **cannot bring back** (the OVF's flags): TPM and NVRAM state,
  direct LUN disks, host devices (notes).

Problems make the plan's exit code 1; notes do not. A clean plan is 0.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ..engine import Cluster, DataCenter, Engine, MacPool
from ..errors import BackupError, EngineError
from ..host import CheckedOvf, ProviderHandle
from ..model import FLAG_DIRECT_LUN, FLAG_HOST_DEVICE, FLAG_NVRAM, FLAG_TPM, Restorable, VmIdentity
from ..ovf.rewrite import map_nic
from ..terminal import to_json
from .copies import copy_names, from_this_engine, target_cluster
from .existing import ExistingVms
from .mapping import TargetMapping
from .templates import BLANK, needed_template

PROBLEM, NOTE = "problem", "note"

#: What each flag means for a restore, in plain words (the notes of a plan, ``list``).
CANNOT_BRING_BACK = {
    FLAG_TPM: "its TPM state is not in the OVF: the restored VM gets an empty TPM (keys "
              "sealed in it, e.g. BitLocker or LUKS, are lost)",
    FLAG_NVRAM: "UEFI firmware: its NVRAM variables (boot entries, SecureBoot keys) are not "
                "in the OVF; the restored VM starts with fresh ones",
    FLAG_DIRECT_LUN: "direct LUN disk(s): storage outside the engine's domains, and the OVF "
                     "keeps no CHAP credentials; the LUN must be reachable from the target",
    FLAG_HOST_DEVICE: "passed-through host device(s): only hosts that have the same devices "
                      "can run it",
}


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
    unplugged: bool = False
    mac_at: int = 0                        # where the MAC pool's finding goes (engine order)

    @property
    def problems(self) -> List[Finding]:
        return [f for f in self.findings if f.severity == PROBLEM]

    def problem(self, topic: str, text: str) -> None:
        self.findings.append(Finding(PROBLEM, topic, text))

    def note(self, topic: str, text: str) -> None:
        self.findings.append(Finding(NOTE, topic, text))

    def to_dict(self) -> Dict[str, Any]:
        return {"name": self.name, "source": {"vm_id": self.item.vm_id, "name": self.item.name,
                                              "provider": self.item.provider,
                                              "generation": self.item.generation},
                "cluster": self.cluster or None, "new_ids": self.new_ids,
                "nics_unplugged": self.unplugged, "checked": self.checked,
                "problems": [{"topic": f.topic, "text": f.text} for f in self.problems],
                "notes": [{"topic": f.topic, "text": f.text} for f in self.findings
                          if f.severity == NOTE]}


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

    def to_dict(self) -> Dict[str, Any]:
        return {"engine": self.engine_url, "exit_code": self.exit_code,
                "copies": [c.to_dict() for c in self.copies]}

    def json(self) -> str:
        return to_json(self.to_dict())


@dataclass
class _Target:
    """What the plan reads of the target engine, each at most once."""

    engine: Engine
    clusters: Dict[str, Cluster]
    datacenters: Dict[str, DataCenter]
    existing: ExistingVms
    _levels: Optional[List[str]] = None
    _pools: Optional[Dict[str, MacPool]] = None

    def levels(self) -> List[str]:
        if self._levels is None:
            try:
                self._levels = self.engine.cluster_levels()
            except EngineError:
                self._levels = []
        return self._levels

    def pool_of(self, cluster: Cluster) -> Optional[MacPool]:
        if self._pools is None:
            self._pools = {p.id: p for p in self.engine.mac_pools()}
        pool = self._pools.get(cluster.mac_pool_id)
        if pool is None:
            pool = next((p for p in self._pools.values() if p.default_pool), None)
        return pool


def make_plan(items: Sequence[Restorable], handles: Dict[str, ProviderHandle],
              engine: Engine, *, copies: int = 1, pattern: Optional[str] = None,
              cluster: Optional[str] = None, new_ids: bool = False,
              mapping: Optional[TargetMapping] = None,
              nics_unplugged: Optional[bool] = None) -> RestorePlan:
    """What restoring ``items`` (as :func:`~.batch.restore_many` would) means on ``engine``.

    Reads each OVF copy once through its provider, checked as a restore checks it; reads
    only from the engine, each collection at most once per plan.
    """
    mapping = mapping or TargetMapping()
    plan = RestorePlan(engine_url=engine.url)
    # what every plan reads, asked at once (one round trip; each is read once per plan)
    engine.prefetch("clusters", "datacenters", "cluster_levels", "networks", "vnic_profiles")
    names = [(item, copy_names(item, copies, pattern, new_ids)) for item in items]
    wanted = [(None if c.new_ids else item.vm_id, c.name) for item, cs in names for c in cs
              if not item.registers]
    wanted += [(item.vm_id, c.name) for item, cs in names for c in cs if item.registers]
    target = _Target(engine, {c.name: c for c in engine.clusters()},
                     {d.id: d for d in engine.datacenters()}, ExistingVms.lookup(engine, wanted))
    batch_templates = {i.vm_id: i for i in items if i.kind == "template"}
    planned: Dict[str, str] = {}           # name → the item it is planned for
    same: Dict[str, bool] = {}
    for item, item_copies in names:
        if item.provider not in same:
            same[item.provider] = from_this_engine(handles.get(item.provider), engine)
        checked, refused = _checked(item, handles)
        base = target_cluster(item, None, checked)
        where = cluster or (mapping.cluster(base) if base else "")
        identity = checked.identity if checked is not None else item.identity
        for copy in item_copies:
            cp = CopyPlan(item=item, name=copy.name, cluster=where, new_ids=copy.new_ids,
                          identity=identity)
            cp.unplugged = not item.registers and (
                nics_unplugged if nics_unplugged is not None
                else copy.new_ids and same[item.provider])
            plan.copies.append(cp)
            if refused:
                cp.problem("stored OVF", f"{refused}; a restore sends nothing for it")
                continue
            found = _cluster(cp, target)
            cp.mac_at = len(cp.findings)   # the MAC check comes next in the engine's order
            _collisions(cp, target, planned)
            planned[copy.name] = item.vm_id
            if item.registers:
                if copy.new_ids:
                    cp.problem("copies", "msd registers what the storage domain holds, with "
                               "its own ids: it cannot make copies with new ids")
                _template_registered(cp, engine, batch_templates)
                cp.note("not checked", "networks, vNIC profiles and disks: msd lists the "
                        f"{'VM' if item.kind == 'vm' else 'template'} without its OVF; "
                        "registering uses the disks the storage domain holds "
                        "(allow_partial_import: missing ones are left out)")
                continue
            _template_forced_blank(cp)
            _networks(cp, engine, found, mapping)
            _disks(cp, engine)
            _cannot_bring_back(cp)
            if cp.unplugged and identity is not None and identity.nics:
                why = ("--nics-unplugged" if nics_unplugged else "a copy in the engine its "
                       "original came from: its guest carries the original's addresses; "
                       "--nics-plugged keeps them plugged")
                cp.note("nics", f"its NICs are restored unplugged ({why})")
    _mac_capacity(plan, target)
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


def _cluster(cp: CopyPlan, target: _Target) -> Optional[Cluster]:
    """The target cluster: it exists, has a BIOS type, its level fits, its data center is
    up (engine-facts B4 steps 2, 3, 8). Returns it (None when unknown)."""
    if not cp.cluster:
        if not cp.item.registers:     # registering: the OVF's own cluster
            cp.problem("cluster", "no target cluster: the OVF names none; give --cluster")
        return None
    found = target.clusters.get(cp.cluster)
    if found is None:
        known = ", ".join(sorted(target.clusters)) or "none"
        cp.problem("cluster", f"the engine has no cluster named {cp.cluster} "
                   f"(it has: {known}); give --cluster or --map-cluster")
        return None
    details = []
    if not found.bios_type:
        cp.problem("bios type", f"cluster {cp.cluster} has no BIOS type yet (no host was "
                   "activated in it): the engine refuses every import into it "
                   "(CLUSTER_BIOS_TYPE_NOT_SET, 409); activate a host in it or set its BIOS "
                   "type")
    if found.version:
        details.append(f"level {found.version}")
    _level(cp, found, target)
    dc = target.datacenters.get(found.datacenter_id)
    if dc is not None:
        if dc.status and dc.status != "up":
            cp.problem("data center", f"data center {dc.name} of cluster {cp.cluster} is "
                       f"{dc.status}: the engine refuses imports until it is up "
                       "(ACTION_TYPE_FAILED_STORAGE_POOL_STATUS_ILLEGAL, 409)")
        else:
            details.append(f"data center {dc.name}")
    cp.checked.append(f"cluster {cp.cluster}" + (f" ({', '.join(details)})" if details else ""))
    return found


def _level_key(level: str) -> Tuple[int, ...]:
    try:
        return tuple(int(p) for p in level.split(".")[:2])
    except ValueError:
        return ()


def _level(cp: CopyPlan, cluster: Cluster, target: _Target) -> None:
    """The OVF's ClusterCompatibilityVersion against the cluster's and /clusterlevels."""
    own = cp.identity.cluster_version if cp.identity is not None else ""
    if not own or not _level_key(own):
        return
    levels = target.levels()
    keys = sorted(_level_key(v) for v in levels if _level_key(v))
    if keys and _level_key(own) > keys[-1]:
        cp.problem("level", f"the OVF is of compatibility level {own}, above what this "
                   f"engine supports ({', '.join(levels)}): its configuration needs a newer "
                   "engine")
        return
    if not cluster.version or _level_key(cluster.version) == _level_key(own):
        return
    if keys and _level_key(own) < keys[0]:
        cp.note("level", f"the OVF is of compatibility level {own}, below what this engine "
                f"supports ({', '.join(levels)}): the engine raises it to cluster "
                f"{cluster.name}'s {cluster.version} and logs what it changed (event 1229)")
    elif _level_key(own) < _level_key(cluster.version):
        cp.note("level", f"the OVF is of compatibility level {own}, cluster {cluster.name} of "
                f"{cluster.version}: the engine imports it at {cluster.version} and logs what "
                "it changed (event 1229)")
    else:
        cp.note("level", f"the OVF is of compatibility level {own}, above cluster "
                f"{cluster.name}'s {cluster.version}: the engine imports it at "
                f"{cluster.version}, changing what that level lacks (event 1229)")


def _collisions(cp: CopyPlan, target: _Target, planned: Dict[str, str]) -> None:
    item = cp.item
    keeps_id = not cp.new_ids
    same = target.existing.with_id(item.vm_id) if keeps_id else None
    if same is not None:
        advice = ("remove that VM first" if item.registers else
                  "restore a copy with --new-ids and a new name (--name-pattern), or remove "
                  "that VM first")
        cp.problem("id", f"the engine already has a VM with id {item.vm_id} "
                   f"({same.name}): it would refuse this one (409); {advice}")
    for other in target.existing.named(cp.name):
        advice = ("choose another name with --name-pattern" if not keeps_id else
                  "restore a copy with --new-ids and another name (--name-pattern; a new "
                  "name alone keeps the colliding id), or remove that VM first")
        if same is not None and other.id == same.id:
            advice = "that is the VM above: remove it, or restore a copy with --new-ids and a new name"
        cp.problem("name", f"the engine already has a VM named {cp.name} ({other.id}): it "
                   f"would refuse this one (409); {advice}")
    if item.kind == "template":
        for t in target.engine.templates():
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


def _mac_capacity(plan: RestorePlan, target: _Target) -> None:
    """Copies with new ids take new MACs from their cluster's pool (engine-facts B4 step 9:
    MAC_POOL_NOT_ENOUGH_MAC_ADDRESSES). Free = the pool's range size minus the MACs in its
    ranges that its clusters' VMs use."""
    wanting = [cp for cp in plan.copies if cp.new_ids and not cp.item.registers
               and cp.identity is not None and cp.identity.nics
               and cp.cluster in target.clusters]
    if not wanting:
        return
    by_pool: Dict[str, List[CopyPlan]] = {}
    pools: Dict[str, MacPool] = {}
    for cp in wanting:
        pool = target.pool_of(target.clusters[cp.cluster])
        if pool is None:
            continue
        pools[pool.id] = pool
        by_pool.setdefault(pool.id, []).append(cp)
    for pool_id, copies in by_pool.items():
        pool = pools[pool_id]
        used: set = set()
        for cl in target.clusters.values():
            if (cl.mac_pool_id or "") == pool.id or (not cl.mac_pool_id and pool.default_pool):
                used.update(m for m in target.engine.cluster_macs(cl.name) if pool.contains(m))
        free = max(0, pool.size - len(used))
        need = 0
        for cp in copies:
            nics = len(cp.identity.nics) if cp.identity else 0
            need += nics
            if need > free:
                cp.findings.insert(cp.mac_at, Finding(
                           PROBLEM, "mac pool", f"MAC pool {pool.name} has {free} free address(es) "
                           f"({pool.size} in its ranges, {len(used)} in use) and these copies "
                           f"need {sum(len(c.identity.nics) for c in copies if c.identity)}: "
                           f"this one's {nics} NIC(s) would be refused "
                           "(MAC_POOL_NOT_ENOUGH_MAC_ADDRESSES, 409); add a range to the pool "
                           "or restore fewer copies"))
        if need <= free:
            copies[0].checked.append(f"MAC pool {pool.name}: {free} free for {need} new MAC(s)")


def _cannot_bring_back(cp: CopyPlan) -> None:
    identity = cp.identity
    for flag in (identity.flags if identity else ()):
        if flag in CANNOT_BRING_BACK:
            cp.note(flag, CANNOT_BRING_BACK[flag])


def _networks(cp: CopyPlan, engine: Engine, cluster: Optional[Cluster],
              mapping: TargetMapping) -> None:
    """The NICs' networks and vNIC profiles after the mapping, in the target cluster's data
    center (in any data center when the cluster is unknown)."""
    identity = cp.identity
    nics = []
    for n in (identity.nics if identity else ()):
        network, profile = map_nic(n.network, n.vnic_profile, mapping.networks, mapping.profiles)
        if network:
            nics.append(type(n)(n.name, network, profile, n.mac))
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


def print_summary(plan: RestorePlan, echo: Callable[[str], None] = print, *,
                  show: int = 10) -> None:
    """The plan in a few lines: how many copies where, the problems (at most ``show``),
    and how many notes (what a configuration cannot bring back, among others)."""
    by_cluster: Dict[str, int] = {}
    for cp in plan.copies:
        by_cluster[cp.cluster or "(the OVF's)"] = by_cluster.get(cp.cluster or "(the OVF's)", 0) + 1
    new = sum(1 for c in plan.copies if c.new_ids)
    echo(f"restore plan against {plan.engine_url}: {_count(len(plan.copies), 'copy', 'copies')} "
         f"of {_count(len({c.item.vm_id for c in plan.copies}), 'VM')} ({new} with new ids) "
         "into " + ", ".join(f"{name} {n}" for name, n in sorted(by_cluster.items())))
    problems = [(cp, f) for cp in plan.copies for f in cp.problems]
    for cp, f in problems[:show]:
        echo(f"  PROBLEM {cp.name}: {f.topic}: {f.text}")
    if len(problems) > show:
        echo(f"  ... and {len(problems) - show} more problem(s) (--dry-run shows them all)")
    notes: Dict[str, int] = {}
    for cp in plan.copies:
        for f in cp.findings:
            if f.severity == NOTE:
                notes[f.topic] = notes.get(f.topic, 0) + 1
    if notes:
        echo("  notes: " + ", ".join(f"{topic} {n}" for topic, n in sorted(notes.items()))
             + " (--dry-run shows them)")
    if not problems:
        echo("  no problems found")
