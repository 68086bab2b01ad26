"""The truth about one import: what the engine logged, and what the created VM looks like.

A ``201`` from ``POST /vms`` does not mean the VM came back whole: the engine degrades an
import and only logs audit warnings (engine-facts B2). So every import is sent with a
``Correlation-Id`` (:func:`correlation_id`) and afterwards

* the events of that correlation id (``GET /events?search=correlation_id=X&from=B``, ``B``
  the newest event before the restore began) give the engine's own words: 175 (disks that
  failed to attach), 1198 (custom compatibility version raised), 1229 (fields changed to
  fit the cluster level), 1188 (partial import), 1218 (lease domain gone), 144 (a field
  reset to its default);
* the created VM itself (``GET /vms/{id}?follow=disk_attachments,nics``) shows what no
  correlated event tells: a NIC left without a network (the engine's 9600 has neither the
  VM nor the correlation id, and is logged once a minute engine-wide), a NIC given another
  vNIC profile than the OVF names, a disk of the OVF not attached.

Correlation ids are derived from the restore itself (the engine, the source VM, the stored
configuration, the copy's name and whether it gets new ids), so running the same restore
again finds what its earlier attempt created: a VM of that name (and id, when ids are kept)
with an event of that correlation id naming it is "ours" (:mod:`.batch`). An OVF without
disks logs no import event at all (174/175 are logged only for OVFs with disks, B2): such
a VM cannot be recognised as ours, and is reported as the engine's conflict instead.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from ..engine import EngineEvent, VmState
from ..model import Disk

__all__ = ["PREFIX", "Expected", "correlation_id", "findings", "is_ours"]

PREFIX = "ovb-"
_ALLOWED = re.compile(r"[^0-9a-zA-Z_-]+")

#: Import warnings that carry the correlation id (engine-facts B2), in plain words.
EVENT_WORDS = {
    175: "disks not attached",
    1198: "compatibility version raised",
    1229: "settings changed to fit the cluster's compatibility version",
    1188: "imported without some of its entities",
    1218: "its lease storage domain is gone",
    144: "a field was reset to its default",
    9600: "NICs left without a network",
    925: "MAC addresses outside the MAC pool",
}
_QUIET = {174, 2016}                       # success, and the disk attachments it made


def correlation_id(*, engine_url: str, vm_id: str, ovf_hash: str, name: str,
                   new_ids: bool) -> str:
    """The ``Correlation-Id`` of one copy: ``ovb-`` and 32 hex digits of a digest of what
    makes it this restore (36 characters, all kept by the engine's filter: engine-facts B1)."""
    key = "\n".join([engine_url, vm_id, ovf_hash, name, "new-ids" if new_ids else "same-ids"])
    value = PREFIX + hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
    assert len(value) <= 36 and not _ALLOWED.search(value)
    return value


@dataclass(frozen=True)
class ExpectedNic:
    name: str
    network: str
    profile: str


@dataclass(frozen=True)
class Expected:
    """What the OVF sent asks for: its NICs (after mapping) and its disks."""

    nics: Tuple[ExpectedNic, ...] = ()
    disks: Tuple[Disk, ...] = ()


@dataclass
class Findings:
    warnings: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)


def is_ours(events: Sequence[EngineEvent], vm_id: str) -> bool:
    """Whether an import with this correlation id created ``vm_id``."""
    return any(e.vm_id == vm_id for e in events)


def findings(state: VmState, expected: Expected, events: Sequence[EngineEvent], *,
             cluster: str, profiles: Dict[str, Tuple[str, str]],
             correlation: str) -> Findings:
    """The warnings about one created VM, in plain words. ``profiles``: vNIC profile id ->
    (profile name, network name) of the target engine."""
    out = Findings()
    disk_missing = _disk_findings(state, expected, out)
    _nic_findings(state, expected, out, cluster=cluster, profiles=profiles)
    for event in sorted(events, key=lambda e: e.index):
        if event.code in _QUIET or (event.vm_id and event.vm_id != state.id):
            continue
        if event.code == 175 and disk_missing:
            continue                      # said per disk above
        words = EVENT_WORDS.get(event.code)
        if words is None and event.severity not in ("warning", "error", "alert"):
            continue
        label = words or f"engine {event.severity}"
        out.warnings.append(f"{label} (engine event {event.code}, correlation id "
                            f"{correlation}): {event.description}")
    return out


def _disk_findings(state: VmState, expected: Expected, out: Findings) -> bool:
    if state.disk_ids is None:
        if expected.disks:
            out.notes.append("the engine did not show the VM's disk attachments; they were "
                             "not checked")
        return False
    attached = set(state.disk_ids)
    missing = [d for d in expected.disks if d.id not in attached]
    for disk in missing:
        label = f"{disk.alias} ({disk.id})" if disk.alias else disk.id
        what = "direct LUN disk" if disk.lun else "disk"
        out.warnings.append(f"{what} {label} is not attached: the engine attaches only disks "
                            "it has (it never creates or copies one)")
    return bool(missing)


def _nic_findings(state: VmState, expected: Expected, out: Findings, *, cluster: str,
                  profiles: Dict[str, Tuple[str, str]]) -> None:
    if state.nics is None:
        if expected.nics:
            out.notes.append("the engine did not show the VM's NICs; they were not checked")
        return
    by_name = {n.name: n for n in state.nics}
    for nic in expected.nics:
        got = by_name.get(nic.name)
        if got is None:
            out.warnings.append(f"NIC {nic.name} was not created")
            continue
        if not nic.network:
            continue
        if not got.vnic_profile_id:
            out.warnings.append(
                f"NIC {nic.name} was left without a network: network {nic.network} is "
                f"missing in the data center of cluster {cluster or '?'}, is not a VM "
                f"network, or has no vNIC profile {nic.profile or nic.network} (map it with "
                "--map-network / --map-vnic-profile)")
            continue
        name_network: Optional[Tuple[str, str]] = profiles.get(got.vnic_profile_id)
        if name_network is not None and nic.profile and name_network != (nic.profile, nic.network):
            out.warnings.append(f"NIC {nic.name} got vNIC profile {name_network[0]} of network "
                                f"{name_network[1]}, not {nic.profile} of {nic.network}")
