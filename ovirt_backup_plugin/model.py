"""Plain data that crosses the hook boundary.

Everything a provider receives or returns is one of these frozen dataclasses (or a str).
They carry no behaviour that talks to an engine or a backend, so providers, tests and the
host can build them freely.
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Mapping, Optional, Tuple


def utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


# --------------------------------------------------------------------------------------
# What an OVF says about a VM (filled by ovirt_backup_plugin.ovf.parse_ovf)
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Disk:
    id: str                                # the API disk id (first part of ovf:fileRef)
    alias: str = ""
    size_gb: Optional[int] = None          # provisioned size, GiB (ovf:size)
    interface: str = ""                    # VirtIO_SCSI, VirtIO, IDE, ...
    storage_domain: str = ""               # storage domain id (rasd:StorageId of the disk item)
    boot: bool = False


@dataclass(frozen=True)
class Nic:
    name: str
    network: str = ""
    vnic_profile: str = ""
    mac: str = ""


@dataclass(frozen=True)
class Snapshot:
    id: str
    type: str = ""                         # ACTIVE, REGULAR, ...
    description: str = ""
    date: str = ""


@dataclass(frozen=True)
class VmIdentity:
    """Who a VM is, as its OVF tells it. Enough to list it, pick it and plan its restore."""

    id: str
    name: str
    description: str = ""
    cluster: str = ""                      # <ClusterName>, empty in dialects that lack it
    os: str = ""                           # e.g. rhel_7x64
    memory_mb: Optional[int] = None
    cpus: Optional[int] = None
    creation_date: str = ""                # as the OVF writes it, e.g. 2019/10/15 10:12:12
    cluster_version: str = ""              # <ClusterCompatibilityVersion>
    template_id: str = ""
    template_name: str = ""
    kind: str = "vm"                       # "vm" or "template"
    disks: Tuple[Disk, ...] = ()
    nics: Tuple[Nic, ...] = ()
    snapshots: Tuple[Snapshot, ...] = ()

    def to_dict(self) -> dict:
        """Plain JSON-ready data (what ``dataclasses.asdict`` gives, without its deep copies:
        every field is a str, an int, None or a tuple of flat dataclasses)."""
        data = dict(self.__dict__)
        for key in ("disks", "nics", "snapshots"):
            data[key] = [dict(part.__dict__) for part in data[key]]
        return data

    @classmethod
    def from_dict(cls, data: Mapping) -> "VmIdentity":
        data = dict(data)
        data["disks"] = tuple(Disk(**d) for d in data.get("disks", ()))
        data["nics"] = tuple(Nic(**n) for n in data.get("nics", ()))
        data["snapshots"] = tuple(Snapshot(**s) for s in data.get("snapshots", ()))
        return cls(**data)


# --------------------------------------------------------------------------------------
# A backup run and what it hands to providers
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EngineIdentity:
    """Which engine a store serves. Two engines are the same one when they share a data
    center id (ids survive an engine-backup restore; a rebuilt engine has new ones)."""

    system: str
    url: str
    datacenter_ids: Tuple[str, ...] = ()

    def same_engine(self, other: "EngineIdentity") -> bool:
        return bool(set(self.datacenter_ids) & set(other.datacenter_ids))

    def to_dict(self) -> dict:
        return {"system": self.system, "url": self.url,
                "datacenter_ids": list(self.datacenter_ids)}

    @classmethod
    def from_dict(cls, data: Mapping) -> "EngineIdentity":
        return cls(system=data.get("system", ""), url=data.get("url", ""),
                   datacenter_ids=tuple(data.get("datacenter_ids", ())))


@dataclass(frozen=True)
class Run:
    """One backup run: a generation in every provider that takes part."""

    id: str                                # sortable: 20261126T074500Z-<8 hex>
    started_at: _dt.datetime
    system: str                            # the name of the backed-up system (engine)
    engine_url: str
    datacenter: Optional[str] = None       # the run's scope: None means every data center
    engine: Optional[EngineIdentity] = None


@dataclass(frozen=True)
class StoreInfo:
    """What a provider's store holds, for ``attach`` and the ownership check."""

    location: str                          # where, for humans (a path, a container)
    owner: Optional[EngineIdentity] = None # the engine the store serves; None: unclaimed
    generations: int = 0
    last_run: Optional[_dt.datetime] = None
    set_aside: Tuple[str, ...] = ()        # earlier histories set aside by attach --fresh


@dataclass(frozen=True)
class PruneResult:
    generations: int = 0                   # generations removed
    blobs: int = 0                         # OVF blobs no kept generation referenced


@dataclass(frozen=True)
class VmBackup:
    """One VM's configuration as a run captured it."""

    identity: VmIdentity
    ovf: str                               # the OVF document, exactly as the engine sent it
    ovf_hash: str                          # sha256 of the OVF with volatile fields removed
    datacenter: str = ""                   # name of the VM's data center
    ovf_zlib: Optional[bytes] = None       # zlib of the UTF-8 OVF, made beside the parse
                                           # (on another core): store it as is if you compress


@dataclass(frozen=True)
class ProviderSettings:
    """A provider's own settings: its ``[provider:NAME]`` section plus its scope."""

    name: str
    options: Mapping[str, str] = field(default_factory=dict)
    datacenter: Optional[str] = None       # None: every data center
    system: str = "default"                # the backed-up system's name (one per engine)
    state_dir: str = "."                   # where providers keep local state by default

    def get(self, key: str, default: Optional[str] = None) -> Optional[str]:
        value = self.options.get(key)
        return default if value in (None, "") else value

    def secret(self, key: str) -> Optional[str]:
        """Read ``KEY_file`` (a path) or ``KEY_env`` (a variable name), never the value inline."""
        import os

        path = self.get(key + "_file")
        if path:
            with open(os.path.expanduser(path), encoding="utf-8") as f:
                return f.read().strip()
        env = self.get(key + "_env")
        if env:
            return os.environ.get(env)
        return None


@dataclass(frozen=True)
class BackupOutcome:
    """What the host tells a provider when a run ends (``after_backup``)."""

    ok: bool                               # False: the run is abandoned for this provider
    written: int = 0                       # OVFs this provider took in this run
    new_blobs: int = 0                     # of which were new content
    reason: str = ""                       # why not ok


# --------------------------------------------------------------------------------------
# Listing and restoring
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Restorable:
    """One restorable configuration held by one provider."""

    provider: str
    vm_id: str
    name: str
    generation: str                        # the run id, or a provider's own label
    taken_at: Optional[_dt.datetime] = None
    datacenter: str = ""
    cluster: str = ""
    ovf_hash: str = ""
    kind: str = "vm"
    location: str = ""                     # provider-specific key (object name, storage domain id)
    identity: Optional[VmIdentity] = None
    registers: bool = False                # restored by registering what a storage domain
                                           # holds (ids and disks as they are), not from an OVF

    def to_dict(self) -> dict:
        return {
            "provider": self.provider,
            "vm_id": self.vm_id,
            "name": self.name,
            "kind": self.kind,
            "generation": self.generation,
            "taken_at": self.taken_at.isoformat() if self.taken_at else None,
            "datacenter": self.datacenter,
            "cluster": self.cluster,
            "ovf_hash": self.ovf_hash,
            "location": self.location,
        }


@dataclass(frozen=True)
class RestoreRequest:
    """What the user asked for one copy of one VM."""

    item: Restorable
    name: str                              # the name the restored VM gets
    cluster: Optional[str] = None          # None: the cluster the OVF names
    regenerate_ids: bool = False           # True for copies: new VM id, new MACs
    allow_partial_import: bool = True      # register (msd) only
    reassign_bad_macs: bool = True         # register (msd) only
    vnic_profile_mappings: Tuple[Tuple[str, str], ...] = ()   # (from "network/profile", to profile id)


@dataclass(frozen=True)
class RestoreResult:
    provider: str
    vm_id: str
    name: str
    notes: Tuple[str, ...] = ()
