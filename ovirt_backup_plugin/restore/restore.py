"""Restoring: copies of the chosen items brought back into an engine.

For an item a provider keeps as an OVF copy, the host does the restore itself: it reads the
copy through the provider's ``read_ovf``, checks it as at backup (content hash, size
limit, hardened parser; :meth:`ProviderHandle.read_checked`) and creates the VM with
``POST /vms``. Nothing is sent when the check fails. A provider that restores differently
(``msd`` registers what a storage domain holds) does it in its own ``restore_vm``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from ..engine import Engine
from ..errors import BackupError
from ..host import CheckedOvf, ProviderHandle
from ..model import FLAG_ID_MISMATCH, Restorable, RestoreRequest, RestoreResult, VnicProfileMapping
from ..progress import NO_PROGRESS, Progress, counted
from .templates import TemplateCheck

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_PATTERN", "CopyName", "RestoreOptions", "RestoreOutcome", "copy_names",
           "restore", "target_cluster"]

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


@dataclass
class RestoreOutcome:
    restored: List[str] = field(default_factory=list)
    failed: List[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if self.failed:
            return 2 if not self.restored else 1
        return 0


def restore(items: Sequence[Restorable], handles: Dict[str, ProviderHandle], engine: Engine, *,
            copies: int = 1, pattern: Optional[str] = None, cluster: Optional[str] = None,
            new_ids: bool = False, echo: Callable[[str], None] = print,
            options: RestoreOptions = RestoreOptions(),
            progress: Progress = NO_PROGRESS) -> RestoreOutcome:
    """Restore each item (templates first) as ``copies`` copies; ``progress`` is told of
    each item done (default: nothing shown)."""
    outcome = RestoreOutcome()
    templates = TemplateCheck(engine)      # registering a VM needs its template there
    echo = progress.wrap(echo)
    for item in counted(sorted(items, key=lambda i: i.kind != "template"),
                        progress.task("restore", total=len(items), unit="VM")):
        handle = handles.get(item.provider)
        echo(f"restoring {item.kind} {item.name} ({item.vm_id}) from {item.provider}, "
             f"generation {item.generation}")
        try:
            if handle is None:
                raise BackupError(f"provider {item.provider!r} is not enabled here")
            missing = templates.missing(item)
            checked = None if handle.registers else handle.read_checked(item)
        except BackupError as e:
            outcome.failed.append(f"{item.name}: not restored: {e}")
            echo(f"  FAILED {item.name}: {e}; nothing was sent to the engine")
            continue
        if missing:
            outcome.failed.append(f"{item.name}: skipped: {missing}")
            echo(f"  SKIPPED {item.name}: {missing}")
            continue
        if checked is not None and checked.identity.disks:
            disks = checked.identity.disks
            aliases = ", ".join(d.alias or d.id for d in disks)
            echo(f"  note: its OVF references {len(disks)} disk(s) ({aliases}); the engine "
                 "re-attaches only disks that still exist on its storage, it never creates or "
                 "copies disks")
        where = target_cluster(item, cluster, checked)
        for copy in copy_names(item, copies, pattern, new_ids):
            try:
                result = _restore_copy(handle, engine, item, copy, where, checked, options)
            except BackupError as e:
                outcome.failed.append(f"{copy.name}: {e}")
                echo(f"  FAILED {copy.name}: {e}")
                continue
            outcome.restored.append(copy.name)
            templates.restored_ok(item)
            echo(f"  restored {copy.name} as VM {result.vm_id} in cluster "
                 f"{where or '(from the OVF)'}" + (" with new ids" if copy.new_ids else ""))
            for note in result.notes:
                echo(f"  note: {note}")
    return outcome


def _restore_copy(handle: ProviderHandle, engine: Engine, item: Restorable, copy: CopyName,
                  cluster: str, checked: Optional[CheckedOvf],
                  options: RestoreOptions) -> RestoreResult:
    if checked is None:                    # the provider restores it its own way (msd)
        request = RestoreRequest(item=item, name=copy.name, cluster=cluster or None,
                                 regenerate_ids=copy.new_ids,
                                 allow_partial_import=options.allow_partial_import,
                                 reassign_bad_macs=options.reassign_bad_macs,
                                 vnic_profile_mappings=options.vnic_profile_mappings)
        return handle.restore_vm(request, engine)
    vm_id = engine.add_vm_from_ovf(checked.text, name=copy.name, cluster=cluster or None,
                                   regenerate_ids=copy.new_ids)
    return RestoreResult(provider=handle.name, vm_id=vm_id, name=copy.name)
