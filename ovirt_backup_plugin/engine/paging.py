"""The one pager of ``GET /vms?all_content=true``: which page comes next, and when to stop.

``search='page N'`` is offset paging (``max`` VMs per page). A VM is given out once, however
often the engine repeats it; a page shorter than asked, or one with no VM not seen before,
is the last. The in-process read (:meth:`Engine.iter_vms`) and the worker processes of a
backup (:mod:`ovirt_backup_plugin.backup.capture`) both decide with a :class:`Pager`.

A page that fails to parse (the SDK refuses a text node over 10 MB: engine-facts C.3) or to
arrive is read again in smaller pages, down to single VMs (:func:`read_in_slices`, used by
:meth:`Engine.read_page` in both); what still fails is a :class:`Failed` position, read
again by id when the run checks what the pages missed (:mod:`.reading`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Generic, List, Optional, Set, TypeVar

__all__ = ["Pager", "page_search", "search_value", "Slice", "page_slice", "smaller", "Failed",
           "PageRead", "read_in_slices"]

T = TypeVar("T")
U = TypeVar("U")


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

    def ends(self, read: "PageRead", fresh: list) -> bool:
        """:meth:`is_last` for a page read in parts: positions that failed count as there."""
        return read.count < self.size or (not fresh and not read.failed)


# -- a page that fails is read again in smaller pages ---------------------------------
@dataclass(frozen=True)
class Slice:
    """``size`` VMs from ``offset`` on in the engine's order: the page ``offset // size + 1``
    of ``max=size`` (``page N`` is ``OFFSET (N-1)*max LIMIT max``: engine-facts B.6), so
    ``offset`` is always a multiple of ``size``."""

    offset: int
    size: int

    @property
    def page(self) -> int:
        return self.offset // self.size + 1


def page_slice(page: int, size: int) -> Slice:
    return Slice((page - 1) * size, size)


def smaller(piece: Slice) -> List[Slice]:
    """``piece`` as pages of the next smaller size: the largest divisor of its size that is at
    most half of it (100 -> 50 -> 25 -> 5 -> 1), so that each part is again a page of the
    engine (its offset a multiple of its size) and together they cover ``piece`` exactly."""
    if piece.size <= 1:
        return [piece]
    part = next(d for d in range(piece.size // 2, 0, -1) if piece.size % d == 0)
    return [Slice(piece.offset + n, part) for n in range(0, piece.size, part)]


@dataclass(frozen=True)
class Failed:
    """A position of the listing that could not be read even on its own (a page of one).
    ``answered``: the engine answered, but the answer did not parse (so a VM is there)."""

    offset: int
    reason: str
    answered: bool = False


@dataclass
class PageRead(Generic[T]):
    """What reading one page gave: its items in the engine's order, the positions that could
    not be read, and how many requests it took (1 when the page arrived whole)."""

    page: int
    size: int
    items: List[T]
    failed: List[Failed] = field(default_factory=list)
    requests: int = 1

    @property
    def count(self) -> int:
        """Positions the engine had in this page (read or not)."""
        return len(self.items) + len(self.failed)

    @property
    def whole(self) -> bool:
        """Read in one request, nothing failed: one consistent snapshot of the engine."""
        return self.requests == 1 and not self.failed

    def with_items(self, items: List[U]) -> "PageRead[U]":
        return PageRead(self.page, self.size, items, list(self.failed), self.requests)


def read_in_slices(piece: Slice, fetch: Callable[[Slice], List[T]], *,
                   splittable: Callable[[Exception], bool],
                   answered: Callable[[Exception], bool],
                   alive: Callable[[Exception], None]) -> PageRead[T]:
    """Read ``piece`` with ``fetch``; when it fails with an error ``splittable`` accepts (the
    answer did not parse, or did not arrive), read it again as :func:`smaller` pages, down to
    single VMs. ``alive(error)`` is asked before splitting a page that did not arrive; it
    raises when the engine itself is gone (then splitting would only multiply timeouts).
    A single VM that still fails is a :class:`Failed` position; a part shorter than asked
    ends the listing (the later parts are past its end).

    When nothing at all could be read and no answer came for any position (every part
    timed out, say), the trouble is not one VM's: the first error is raised.
    """
    out: PageRead[T] = PageRead(piece.page, piece.size, [], [], 0)
    first: List[Exception] = []

    def read(part: Slice) -> bool:            # True: the listing ended within ``part``
        out.requests += 1
        try:
            items = fetch(part)
        except Exception as e:
            if not splittable(e):
                raise
            first.append(e)
            alive(e)
            if part.size == 1:
                out.failed.append(Failed(part.offset, str(e), answered(e)))
                return False
            return any(read(sub) for sub in smaller(part))
        out.items.extend(items)
        return len(items) < part.size

    read(piece)
    if out.failed and not out.items and not any(f.answered for f in out.failed):
        raise first[0]
    return out
