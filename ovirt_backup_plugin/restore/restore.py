"""Restoring: copies of the chosen items brought back into an engine.

For an item a provider keeps as an OVF copy, the host does the restore itself: it reads the
copy through the provider's ``read_ovf``, checks it as at backup (content hash, size
limit, hardened parser; :meth:`ProviderHandle.read_checked`) and creates the VM with
``POST /vms``. Nothing is sent when the check fails. A provider that restores differently
(``msd`` registers what a storage domain holds) does it in its own ``restore_vm``.

:func:`restore` is the simple entry point (the demo, the provider contract suite); the
work is done by :func:`.batch.restore_many`: templates first, VMs in parallel, every import
followed and checked (see :mod:`.batch`). The copies' names and clusters come from
:mod:`.copies`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

from ..engine import Engine
from ..host import ProviderHandle
from ..model import Restorable
from ..progress import NO_PROGRESS, Progress
from .batch import ALREADY, DEFAULT_PARALLEL, FAILED, SKIPPED, BatchReport, RestoreSettings, restore_many
from .copies import DEFAULT_PATTERN, CopyName, RestoreOptions, copy_names, target_cluster

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_PATTERN", "CopyName", "RestoreOptions", "RestoreOutcome", "copy_names",
           "outcome_of", "restore", "target_cluster"]


@dataclass
class RestoreOutcome:
    restored: List[str] = field(default_factory=list)
    failed: List[str] = field(default_factory=list)
    report: Optional[BatchReport] = None

    @property
    def exit_code(self) -> int:
        if self.report is not None:
            return self.report.exit_code
        if self.failed:
            return 2 if not self.restored else 1
        return 0


def outcome_of(report: BatchReport) -> RestoreOutcome:
    """The names restored (or found restored) and the copies that failed, with why."""
    out = RestoreOutcome(report=report)
    for o in report.outcomes:
        if o.status in (FAILED, SKIPPED):
            out.failed.append(f"{o.name}: {o.error}")
        else:
            out.restored.append(o.name)
            if o.status == ALREADY:
                log.info("%s was restored by an earlier run", o.name)
    return out


def restore(items: Sequence[Restorable], handles: Dict[str, ProviderHandle], engine: Engine, *,
            copies: int = 1, pattern: Optional[str] = None, cluster: Optional[str] = None,
            new_ids: bool = False, echo: Callable[[str], None] = print,
            options: Optional[RestoreOptions] = None,
            parallel: int = DEFAULT_PARALLEL,
            nics_unplugged: Optional[bool] = None,
            progress: Progress = NO_PROGRESS) -> RestoreOutcome:
    """Restore each item (templates first) as ``copies`` copies; ``progress`` is told of
    each copy done (default: nothing shown)."""
    report = restore_many(items, handles, engine, RestoreSettings(
        copies=copies, pattern=pattern, cluster=cluster, new_ids=new_ids,
        options=options or RestoreOptions(),
        parallel=parallel, nics_unplugged=nics_unplugged), echo=echo, progress=progress)
    return outcome_of(report)
