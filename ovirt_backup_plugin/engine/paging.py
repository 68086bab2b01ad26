"""The one pager of ``GET /vms?all_content=true``: which page comes next, and when to stop.

``search='page N'`` is offset paging (``max`` VMs per page). A VM is given out once, however
often the engine repeats it; a page shorter than asked, or one with no VM not seen before,
is the last. The in-process read (:meth:`Engine.iter_vms`) and the worker processes of a
backup (:mod:`ovirt_backup_plugin.backup.capture`) both decide with a :class:`Pager`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Set, TypeVar

__all__ = ["Pager", "page_search", "search_value"]

T = TypeVar("T")


def page_search(page: int, datacenter: Optional[str] = None) -> str:
    """The ``search`` of one page: ``page N`` or ``datacenter=DC page N``."""
    scope = f"datacenter={search_value(datacenter)} " if datacenter else ""
    return f"{scope}page {page}"


def search_value(value: str) -> str:
    """A search value, quoted when the engine's search syntax needs it."""
    if re.fullmatch(r"[\w.\-]+", value):
        return value
    return '"' + value.replace('"', '') + '"'


@dataclass
class Pager:
    """Pages of ``size`` items; ``seen`` holds the VM ids given out so far."""

    size: int
    seen: Set[str] = field(default_factory=set)

    def fresh(self, items: List[T], vm_id: Callable[[T], str]) -> List[T]:
        """The items whose VM was not given out yet (and remember them)."""
        out = [item for item in items if vm_id(item) not in self.seen]
        self.seen.update(vm_id(item) for item in out)
        return out

    def is_last(self, items: list, fresh: list) -> bool:
        """A page shorter than asked, or one that brought nothing new, ends the listing."""
        return len(items) < self.size or not fresh
