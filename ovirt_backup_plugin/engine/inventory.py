"""What the engine adapter hands out: plain records of the engine's objects."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

__all__ = ["DataCenter", "Cluster", "StorageDomain", "EngineVm", "Network", "VnicProfile",
           "Template", "MacPool", "EngineEvent", "VmNic", "VmState", "VmRef"]


@dataclass(frozen=True)
class DataCenter:
    id: str
    name: str
    status: str = ""                       # up, uninitialized, maintenance, problematic, ...


@dataclass(frozen=True)
class Cluster:
    id: str
    name: str
    datacenter_id: str
    version: str = ""                      # compatibility level "major.minor" ('' unknown)
    bios_type: str = ""                    # '' : not set (no host activated yet)
    mac_pool_id: str = ""


@dataclass(frozen=True)
class StorageDomain:
    id: str
    name: str
    type: str
    status: str
    master: bool


@dataclass(frozen=True)
class EngineVm:
    """A VM as the engine lists it; ``ovf`` is None when the engine withheld it."""

    id: str
    name: str
    cluster_id: str
    datacenter: str                        # the data center's name ('' when unknown)
    ovf: Optional[str]
    cluster: str = ""                      # the cluster's name ('' when unknown)
    problem: str = ""                      # why ``ovf`` is None, when the adapter knows


@dataclass(frozen=True)
class Network:
    id: str
    name: str
    datacenter_id: str


@dataclass(frozen=True)
class VnicProfile:
    id: str
    name: str
    network_id: str


@dataclass(frozen=True)
class Template:
    id: str
    name: str


def mac_value(mac: str) -> int:
    """A MAC address as a number (``56:6f:00:00:00:01`` -> 0x566f00000001)."""
    return int(mac.replace(":", "").replace("-", ""), 16)


@dataclass(frozen=True)
class MacPool:
    """``GET /macpools``: a pool's ranges (engine-facts B5)."""

    id: str
    name: str
    ranges: Tuple[Tuple[str, str], ...] = ()
    allow_duplicates: bool = False
    default_pool: bool = False

    @property
    def size(self) -> int:
        return sum(max(0, mac_value(b) - mac_value(a) + 1) for a, b in self.ranges)

    def contains(self, mac: str) -> bool:
        try:
            value = mac_value(mac)
        except ValueError:
            return False
        return any(mac_value(a) <= value <= mac_value(b) for a, b in self.ranges)


@dataclass(frozen=True)
class EngineEvent:
    """One audit-log entry (``GET /events``)."""

    index: int
    code: int
    severity: str
    description: str
    correlation_id: str = ""
    vm_id: str = ""


@dataclass(frozen=True)
class VmNic:
    name: str
    mac: str = ""
    vnic_profile_id: str = ""              # '' : the NIC has no network
    plugged: bool = True


@dataclass(frozen=True)
class VmState:
    """A VM as ``GET /vms/{id}`` shows it; ``nics``/``disk_ids`` only when followed."""

    id: str
    name: str
    status: str
    cluster_id: str = ""
    nics: Optional[Tuple[VmNic, ...]] = None
    disk_ids: Optional[Tuple[str, ...]] = None

    @property
    def locked(self) -> bool:
        return self.status == "image_locked"


@dataclass(frozen=True)
class VmRef:
    id: str
    name: str
