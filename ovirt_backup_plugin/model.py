"""Plain data that crosses the hook boundary.

Everything a provider receives or returns is one of these frozen dataclasses (or a str,
bytes, or the provider's own run state). They carry no behaviour that talks to an engine or
a backend, so providers, tests and the host can build them freely.
"""
from __future__ import annotations

import datetime as _dt
import fnmatch
import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple

from .errors import ConfigError

#: How a provider reports a line for the run report or the command's output (``note``).
Note = Callable[[str], None]

#: ``Restorable.flags`` / ``VmBackup.flags``: what a configuration cannot bring back alone.
FLAG_TPM = "tpm"                    # a TPM device: its state is not in the live OVF
FLAG_NVRAM = "nvram"                # UEFI (SecureBoot) VM: its NVRAM vars are not in the OVF
FLAG_DIRECT_LUN = "direct-lun"      # a direct LUN disk: storage outside the engine's domains
FLAG_HOST_DEVICE = "host-device"    # a passed-through host device
FLAG_ID_MISMATCH = "ovf-id-mismatch"  # the OVF's own id is not the engine's VM id
FLAG_UNREAD = "unread"              # the engine did not hand out this VM's OVF in the run
                                    # that holds this entry: it is the configuration an
                                    # earlier run read (the next run reads it again)

#: ``Run.mode`` / ``GenerationInfo.mode``: how a generation was captured.
MODE_FULL = "full"                  # every VM's OVF was read (a sweep)
MODE_INCREMENTAL = "incremental"    # only the VMs the events feed named were read; the
                                    # others are the previous generation's, by reference


def utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


EPOCH = _dt.datetime.min.replace(tzinfo=_dt.timezone.utc)


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
    lun: bool = False                      # a direct LUN disk (no image on a storage domain)


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
    """Who a VM is, as its OVF tells it. Enough to plan its restore and to describe changes."""

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
    bios_type: str = ""                    # <BiosType> as written (numbers in engine OVFs)
    flags: Tuple[str, ...] = ()            # FLAG_* found in the OVF

    def to_dict(self) -> Dict[str, Any]:
        """Plain JSON-ready data (what ``dataclasses.asdict`` gives, without its deep copies:
        every field is a str, an int, None or a tuple of flat dataclasses)."""
        data = dict(self.__dict__)
        for key in ("disks", "nics", "snapshots"):
            data[key] = [dict(item.__dict__) for item in data[key]]
        data["flags"] = list(self.flags)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "VmIdentity":
        data = dict(data)
        data["disks"] = tuple(Disk(**d) for d in data.get("disks", ()))
        data["nics"] = tuple(Nic(**n) for n in data.get("nics", ()))
        data["snapshots"] = tuple(Snapshot(**s) for s in data.get("snapshots", ()))
        data["flags"] = tuple(data.get("flags", ()))
        return cls(**data)


# --------------------------------------------------------------------------------------
# Engines, runs and stores
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

    def to_dict(self) -> Dict[str, Any]:
        return {"system": self.system, "url": self.url,
                "datacenter_ids": list(self.datacenter_ids)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "EngineIdentity":
        return cls(system=str(data.get("system", "")), url=str(data.get("url", "")),
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
    mode: str = "full"                     # "full": every VM was read; "incremental"
    reason: str = ""                       # why this mode (shown in reports and history)
    cursor: Optional[int] = None           # the engine's newest event index this generation
                                           # covers (incremental capture follows from it)


@dataclass(frozen=True)
class StoreInfo:
    """What a provider's store holds, for ``attach`` and the ownership check."""

    location: str                          # where, for humans (a path, a container)
    owner: Optional[EngineIdentity] = None  # the engine the store serves; None: unclaimed
    generations: int = 0
    last_run: Optional[_dt.datetime] = None
    set_aside: Tuple[str, ...] = ()        # earlier histories set aside by attach --fresh
    format: int = 0                        # the store's format version (0: not created yet)


@dataclass(frozen=True)
class GenerationInfo:
    """One committed generation of a provider (``list_generations``)."""

    id: str
    taken_at: Optional[_dt.datetime]
    vms: int = 0
    mode: str = "full"
    reason: str = ""
    cursor: Optional[int] = None
    datacenter: Optional[str] = None       # the run's data-center scope (None: all)


@dataclass(frozen=True)
class PruneResult:
    generations: int = 0                   # generations removed
    blobs: int = 0                         # stored OVFs no kept generation referenced


@dataclass(frozen=True)
class BlobUse:
    """Which generations of one VM reference one stored blob (``inventory_store``)."""

    ovf_hash: str                          # the blob's name (what ``read_ovf`` is asked for)
    vm_id: str
    name: str                              # the VM's name in one of those generations
    first: str                             # the oldest generation id that references it
    last: str                              # the newest one
    generations: int = 1                   # how many generations of this VM reference it
    kind: str = "vm"
    location: str = ""                     # as ``Restorable.location`` (what read_ovf needs)


@dataclass(frozen=True)
class StoreInventory:
    """What a provider's store holds and what its generations reference, for ``check``:
    the host compares the two (a reference to nothing is damage; a stored blob nothing
    references is left-over)."""

    generations: int = 0                   # committed generations
    uses: Tuple[BlobUse, ...] = ()         # what the committed generations reference
    stored: Tuple[str, ...] = ()           # the name of every blob the store holds
    kept: Tuple[str, ...] = ()             # names only set-aside histories reference
    problems: Tuple[str, ...] = ()         # what the provider found unreadable on the way


@dataclass(frozen=True)
class VmBackup:
    """One VM's configuration as a run captured it, ready to store.

    The key is the engine's VM id (``vm_id``), never the id the OVF itself carries.
    ``blob`` is what the provider stores under ``ovf_hash``: the OVF sealed by the host
    (compressed, and encrypted when the provider's store is), to be handed back unchanged
    by ``read_ovf``. Providers never need to look inside it. For a store sealed encrypted,
    ``ovf_hash`` is a keyed name (it tells nothing of the content) and ``ovf`` is empty.
    """

    vm_id: str
    name: str
    kind: str                              # "vm" or "template"
    datacenter: str                        # as the engine reported it at backup
    cluster: str                           # as the engine reported it (the OVF's if none)
    ovf_hash: str                          # the content's name: equal for equal content
    blob: bytes                            # the sealed OVF
    ovf: str = ""                          # the OVF text exactly as the engine sent it
    identity: Optional[VmIdentity] = None  # what the OVF says (parsed with the hardened parser)
    flags: Tuple[str, ...] = ()


# --------------------------------------------------------------------------------------
# Provider declarations and settings
# --------------------------------------------------------------------------------------
#: ``ProviderDeclaration.keeps``: what a provider holds that can be restored.
KEEPS_OVF = "ovf-copies"        # OVF copies of its own: lists them, hands them out (read_ovf)
KEEPS_ENGINE = "engine-side"    # what the engine keeps (msd): lists it, restores it itself
KEEPS_NOTHING = "nothing"       # stores nothing restorable (noop, debug)

#: Option types a provider can declare.
OPTION_TYPES = ("str", "int", "float", "bool", "duration", "path", "secret")


@dataclass(frozen=True)
class Option:
    """One setting a provider takes in its ``[provider:NAME]`` section.

    ``type="secret"`` means the value is never written in the file: the section gives
    ``NAME_file`` (a file holding it) or ``NAME_env`` (an environment variable), and the
    provider reads it with :meth:`ProviderSettings.secret`.
    """

    name: str
    type: str = "str"
    default: Any = None
    help: str = ""


@dataclass(frozen=True)
class ProviderDeclaration:
    """What a provider is (``declare_provider``): what it keeps and which settings it takes."""

    keeps: str
    options: Tuple[Option, ...] = ()
    description: str = ""
    off_host: bool = False                 # it ships what it stores off this host


@dataclass(frozen=True)
class ProviderSettings:
    """A provider's own settings: its declared options (parsed, defaults filled in), the
    data centers it covers, and where the system keeps local state.

    The host's keys of a ``[provider:NAME]`` section (retries, retention, scope) are not
    among ``options``: the host applies them itself.
    """

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)
    datacenter: Optional[str] = None       # the provider's scope (None: every data center);
                                           # the host filters by it, providers need not
    system: str = "default"                # the backed-up system's name (one per engine)
    state_dir: str = "."                   # where providers keep local state by default

    def get(self, key: str, default: Any = None) -> Any:
        value = self.options.get(key)
        return default if value in (None, "") else value

    def secret(self, key: str) -> Optional[str]:
        """The value of the declared secret option ``key``, read from the file its
        ``KEY_file`` names or the variable its ``KEY_env`` names (never from the settings
        file itself); None when the section gives neither."""
        path = self.get(key + "_file")
        if path:
            try:
                with open(os.path.expanduser(str(path)), encoding="utf-8") as f:
                    return f.read().strip()
            except OSError as e:
                raise ConfigError(f"[provider:{self.name}] {key}_file: cannot read {path}: "
                                  f"{e.strerror or e}") from None
        env = self.get(key + "_env")
        if env:
            value = os.environ.get(str(env))
            if value is None:
                raise ConfigError(f"[provider:{self.name}] {key}_env: the environment "
                                  f"variable {env} is not set")
            return value
        return None


@dataclass(frozen=True)
class BackupOutcome:
    """What the host tells a provider when a run ends (``after_backup``)."""

    ok: bool                               # False: the run is abandoned for this provider
    written: int = 0                       # OVFs this provider took in this run
    new_blobs: int = 0                     # of which were new content
    reason: str = ""                       # why not ok
    carried: int = 0                       # unchanged VMs recorded by reference (carry_over)


# --------------------------------------------------------------------------------------
# Listing and restoring
# --------------------------------------------------------------------------------------
_GLOB = re.compile(r"[*?\[]")


def is_glob(token: str) -> bool:
    """Whether a VM selector is a name pattern (``*``, ``?``, ``[...]``)."""
    return bool(_GLOB.search(token))


@dataclass(frozen=True)
class Query:
    """What a listing asks of a provider (``list_restorable``).

    An item *matches* when its VM id equals one of ``vms``, or its name in that generation
    equals one or matches one as a case-sensitive glob (``*``, ``?``, ``[...]``, as
    :func:`fnmatch.fnmatchcase`); an empty ``vms`` matches every VM. ``datacenter`` and
    ``cluster`` compare the item's (as recorded at backup); ``at`` keeps generations taken
    at or before it, ``generation`` only that one. With ``every`` the answer holds every
    matching item, else only the newest matching item of each VM. ``limit`` keeps that
    many items, newest first.
    """

    vms: Tuple[str, ...] = ()
    datacenter: Optional[str] = None
    cluster: Optional[str] = None
    at: Optional[_dt.datetime] = None
    generation: Optional[str] = None
    every: bool = False
    limit: Optional[int] = None

    @property
    def ids_and_names(self) -> Tuple[str, ...]:
        return tuple(t for t in self.vms if not is_glob(t))

    @property
    def globs(self) -> Tuple[str, ...]:
        return tuple(t for t in self.vms if is_glob(t))

    def selects(self, vm_id: str, name: str) -> bool:
        if not self.vms:
            return True
        return any(t == vm_id or t == name or (is_glob(t) and fnmatch.fnmatchcase(name, t))
                   for t in self.vms)

    def admits(self, item: "Restorable") -> bool:
        """Whether ``item`` matches everything but ``every`` and ``limit``."""
        return (self.selects(item.vm_id, item.name)
                and self.datacenter in (None, item.datacenter)
                and self.cluster in (None, item.cluster)
                and self.generation in (None, item.generation)
                and (self.at is None or (item.taken_at is not None and item.taken_at <= self.at)))

    def answer(self, items: Sequence["Restorable"]) -> "list[Restorable]":
        """``items`` narrowed to this query: what a provider that filters in Python returns
        (and what the host checks every answer against)."""
        chosen = [i for i in items if self.admits(i)]
        chosen.sort(key=newest_first)
        if not self.every:
            newest: Dict[str, Restorable] = {}
            for i in chosen:
                newest.setdefault(i.vm_id, i)
            chosen = list(newest.values())
        return chosen[:self.limit] if self.limit is not None else chosen


@dataclass(frozen=True)
class Restorable:
    """One restorable configuration (one VM in one generation) held by one provider."""

    provider: str
    vm_id: str
    name: str
    generation: str                        # the run id, or a provider's own label
    taken_at: Optional[_dt.datetime] = None
    datacenter: str = ""
    cluster: str = ""
    ovf_hash: str = ""
    kind: str = "vm"
    location: str = ""                     # provider-specific key (a storage domain id)
    generations: Optional[int] = None      # how many generations of this VM it holds
    flags: Tuple[str, ...] = ()            # FLAG_*: what its configuration cannot bring back
    identity: Optional[VmIdentity] = None  # only from providers that cannot hand out the OVF
                                           # (msd): what the engine tells without it
    registers: bool = False                # restored by the provider itself (restore_vm),
                                           # not from its OVF; set by the host

    def to_dict(self) -> Dict[str, Any]:
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
            "flags": list(self.flags),
        }


def newest_first(item: Restorable) -> Tuple[float, str, str]:
    """Sort key: newest generation first, then by name."""
    when = (item.taken_at or EPOCH).timestamp()
    return (-when, item.name, item.vm_id)


@dataclass(frozen=True)
class RestoreRequest:
    """What the user asked for one copy of one VM."""

    item: Restorable
    name: str                              # the name the restored VM gets
    cluster: Optional[str] = None          # None: the cluster recorded at backup / the OVF's
    regenerate_ids: bool = False           # True for copies: new VM id, new MACs
    allow_partial_import: bool = True      # register (msd) only
    reassign_bad_macs: bool = True         # register (msd) only
    vnic_profile_mappings: Tuple["VnicProfileMapping", ...] = ()
    identity: Optional[VmIdentity] = None  # what the verified OVF says (host-checked)
    cluster_mappings: Tuple["ClusterMapping", ...] = ()   # register (msd) only


@dataclass(frozen=True)
class VnicProfileMapping:
    """Register (msd): the source's ``network/profile`` becomes this engine's profile id."""

    source: str
    target_id: str


@dataclass(frozen=True)
class ClusterMapping:
    """Register (msd): the source's cluster ``source`` becomes this engine's ``target``
    (``registration_configuration.cluster_mappings``)."""

    source: str
    target: str


@dataclass(frozen=True)
class RestoreResult:
    provider: str
    vm_id: str
    name: str
    notes: Tuple[str, ...] = ()
