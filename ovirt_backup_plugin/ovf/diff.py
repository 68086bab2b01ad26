"""``diff_identities``: human-readable configuration changes between two identities."""
from __future__ import annotations

from typing import Callable, Dict, Iterable, Iterator, List, TypeVar

from ..model import Disk, Nic, Snapshot, VmIdentity

__all__ = ["diff_identities"]

T = TypeVar("T")


def _show(value: object) -> str:
    return "(none)" if value is None or value == "" else str(value)


def _change(label: str, old: object, new: object, unit: str = "") -> Iterator[str]:
    if old != new:
        suffix = f" {unit}" if unit else ""
        yield f"{label}: {_show(old)} → {_show(new)}{suffix}"


def _describe_disk(disk: Disk) -> str:
    size = f"{disk.size_gb} GB" if disk.size_gb is not None else "size ?"
    extra = ", boot" if disk.boot else ""
    return f"{disk.alias or disk.id} ({size}, {_show(disk.interface)}{extra}, id {disk.id})"


def _added_removed(what: str, before: Dict[str, T], after: Dict[str, T],
                   describe: Callable[[T], str]) -> Iterator[str]:
    """"<what> added: …" and "<what> removed: …" lines of two keyed collections."""
    yield from (f"{what} added: {describe(v)}" for k, v in after.items() if k not in before)
    yield from (f"{what} removed: {describe(v)}" for k, v in before.items() if k not in after)


def _diff_disks(old: Iterable[Disk], new: Iterable[Disk]) -> Iterator[str]:
    before = {d.id: d for d in old}
    after = {d.id: d for d in new}
    yield from _added_removed("disk", before, after, _describe_disk)
    for disk_id, a in before.items():
        b = after.get(disk_id)
        if b is None or a == b:
            continue
        label = f"disk {b.alias or disk_id}"
        yield from _change(f"{label} alias", a.alias, b.alias)
        yield from _change(f"{label} size", a.size_gb, b.size_gb, "GB")
        yield from _change(f"{label} interface", a.interface, b.interface)
        yield from _change(f"{label} storage domain", a.storage_domain, b.storage_domain)
        yield from _change(f"{label} bootable", a.boot, b.boot)


def _describe_nic(nic: Nic) -> str:
    profile = f"/{nic.vnic_profile}" if nic.vnic_profile and nic.vnic_profile != nic.network else ""
    mac = f", MAC {nic.mac}" if nic.mac else ""
    return f"{nic.name} (network {_show(nic.network)}{profile}{mac})"


def _diff_nics(old: Iterable[Nic], new: Iterable[Nic]) -> Iterator[str]:
    before = {n.name: n for n in old}
    after = {n.name: n for n in new}
    yield from _added_removed("NIC", before, after, _describe_nic)
    for name, a in before.items():
        b = after.get(name)
        if b is None or a == b:
            continue
        yield from _change(f"NIC {name} network", a.network, b.network)
        yield from _change(f"NIC {name} vNIC profile", a.vnic_profile, b.vnic_profile)
        yield from _change(f"NIC {name} MAC", a.mac, b.mac)


def _diff_snapshots(old: Iterable[Snapshot], new: Iterable[Snapshot]) -> Iterator[str]:
    # The ACTIVE snapshot is the running configuration, not a user-visible snapshot.
    before = {s.id: s for s in old if s.type.upper() != "ACTIVE"}
    after = {s.id: s for s in new if s.type.upper() != "ACTIVE"}
    yield from _added_removed("snapshot", before, after, lambda snap: (
        f"{snap.description or snap.id} ({_show(snap.type)}, {_show(snap.date)})"))


def _template_label(identity: VmIdentity) -> str:
    if identity.template_name and identity.template_id:
        return f"{identity.template_name} ({identity.template_id})"
    return identity.template_name or identity.template_id


def diff_identities(old: VmIdentity, new: VmIdentity) -> List[str]:
    """Human-readable changes from ``old`` to ``new``; empty when nothing tracked changed."""
    changes: List[str] = []
    changes.extend(_change("VM id", old.id, new.id))
    changes.extend(_change("kind", old.kind, new.kind))
    changes.extend(_change("name", old.name, new.name))
    changes.extend(_change("description", old.description, new.description))
    changes.extend(_change("cluster", old.cluster, new.cluster))
    changes.extend(_change("cluster version", old.cluster_version, new.cluster_version))
    changes.extend(_change("OS", old.os, new.os))
    changes.extend(_change("memory", old.memory_mb, new.memory_mb, "MB"))
    changes.extend(_change("CPUs", old.cpus, new.cpus))
    changes.extend(_change("template", _template_label(old), _template_label(new)))
    changes.extend(_diff_disks(old.disks, new.disks))
    changes.extend(_diff_nics(old.nics, new.nics))
    changes.extend(_diff_snapshots(old.snapshots, new.snapshots))
    return changes
