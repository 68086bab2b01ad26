"""What the engine adapter hands out: plain records of the engine's objects."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

__all__ = ["DataCenter", "Cluster", "StorageDomain", "EngineVm", "Network", "VnicProfile",
           "Template"]


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
