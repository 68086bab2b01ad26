"""The copies a restore makes of each item: names, ids, target cluster; registering options.

Shared by the restore itself (:mod:`.batch`) and its plan (:mod:`.plan`).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import List, Optional, Tuple

from ..engine import Engine
from ..errors import BackupError
from ..host import CheckedOvf, ProviderHandle
from ..model import FLAG_ID_MISMATCH, Restorable, VnicProfileMapping

__all__ = ["DEFAULT_PATTERN", "CopyName", "RestoreOptions", "copy_names", "from_this_engine",
           "target_cluster"]

log = logging.getLogger(__name__)

DEFAULT_PATTERN = "{name}-{n}"


@dataclass(frozen=True)
class CopyName:
    """One copy to make: its name, and whether it gets new ids."""

    name: str
    new_ids: bool


@dataclass(frozen=True)
class RestoreOptions:
    """How to register from a storage domain (the ``msd`` provider)."""

    allow_partial_import: bool = True
    reassign_bad_macs: bool = True
    vnic_profile_mappings: Tuple[VnicProfileMapping, ...] = ()


def copy_names(item: Restorable, copies: int, pattern: Optional[str],
               new_ids: bool = False) -> List[CopyName]:
    """The copies to make of ``item``.

    One copy keeps its ids (and its name, unless a pattern renames it) unless ``new_ids``;
    several copies always get new ids, and names from the pattern. A backup whose OVF
    carried another VM's id always gets new ids (it must not take that VM's identity)."""
    if copies < 1:
        raise BackupError("--copies must be at least 1")
    forced = FLAG_ID_MISMATCH in item.flags
    if copies == 1 and not pattern:
        return [CopyName(item.name, new_ids or forced)]
    pattern = pattern or DEFAULT_PATTERN
    if copies > 1 and "{n}" not in pattern:
        raise BackupError(f"--name-pattern {pattern!r} needs {{n}} to give {copies} copies "
                          "unique names")
    try:
        names = [pattern.format(name=item.name, n=n, id=item.vm_id) for n in range(1, copies + 1)]
    except (KeyError, IndexError, ValueError) as e:
        raise BackupError(f"--name-pattern {pattern!r}: use {{name}}, {{n}} and {{id}} ({e})") from None
    return [CopyName(name, new_ids or copies > 1 or forced) for name in names]


def target_cluster(item: Restorable, cluster: Optional[str],
                   checked: Optional[CheckedOvf] = None) -> str:
    """Where a copy goes: the asked cluster, else the one the engine reported at backup,
    else the one the OVF names ('' when none is known)."""
    if cluster:
        return cluster
    if item.cluster:
        return item.cluster
    identity = checked.identity if checked is not None else item.identity
    return identity.cluster if identity is not None else ""


def from_this_engine(handle: Optional[ProviderHandle], engine: Engine) -> bool:
    """Whether what ``handle`` keeps was backed up from ``engine``: its store's owner shares
    a data center id with it (:meth:`EngineIdentity.same_engine`). Unknown (no store of its
    own, unclaimed, unreadable) counts as yes: copies then get the careful default (NICs
    unplugged)."""
    if handle is None:
        return True
    try:
        info = handle.describe_store()
        if info is None or info.owner is None:
            return True
        return info.owner.same_engine(engine.identity(info.owner.system))
    except BackupError as e:
        log.info("cannot tell which engine %s's store serves: %s", handle.name, e)
        return True
