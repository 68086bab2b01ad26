"""Which generations were full sweeps and which incremental, for ``list --generations`` and
``history`` (a ``Restorable`` carries no mode: the providers' ``list_generations`` say it)."""
from __future__ import annotations

import logging
from typing import Dict, Iterable, Optional

from ..errors import BackupError
from ..host import ProviderHandle
from ..model import MODE_FULL, MODE_INCREMENTAL, GenerationInfo

log = logging.getLogger(__name__)

__all__ = ["generations_of", "mode_label"]


def generations_of(handles: Iterable[ProviderHandle]) -> Dict[str, GenerationInfo]:
    """Generation id -> what its provider recorded (the first provider that lists it wins:
    a run is one generation in every provider that took part, with one mode)."""
    out: Dict[str, GenerationInfo] = {}
    for h in handles:
        if not h.implements("list_generations"):
            continue
        try:
            for g in h.list_generations():
                out.setdefault(g.id, g)
        except BackupError as e:
            log.warning("provider %s could not list its generations: %s", h.name, e)
    return out


def mode_label(info: Optional[GenerationInfo]) -> str:
    """``full``, ``incremental`` or ``-`` (not known: a provider without list_generations)."""
    if info is None:
        return "-"
    return {MODE_FULL: "full", MODE_INCREMENTAL: "incremental"}.get(info.mode, info.mode)
