"""A complete read of the engine's VMs: the pages, then what they missed, read by id.

``search='page N'`` is offset paging over ``ORDER BY vm_name`` and every page is a new query
(engine-facts B.6): a VM removed before the current offset while the pages are read shifts
the later pages by one, so one VM slips past the next page boundary unseen; a VM added there
shifts them the other way (one VM comes twice, and the pager drops the copy). A position
that could not be read even on its own (:class:`~.paging.Failed`) is also missing.

So when the read took more than one request, the run takes the ids the engine has (one
``GET /vms`` without ``all_content``: the *start list*; the backup takes it in a worker while
the first pages are read) and, after the last page, reads every VM of that list the pages did
not give by id (``GET /vms/{id}?all_content=true``). A VM the engine no longer has was
removed during the run; one that still cannot be read is given out with ``ovf=None`` and the
reason. So every VM the engine had when the run started is captured or reported.

By id rather than ``search=id=a or id=b``: a removal makes one VM slip, so the VMs missed are
about as many as the VMs removed while the pages were read (a few), the single GET answers a
clear 404 for a VM that is gone, and every distinct search text stays in the engine's search
cache until it restarts (bll/SearchQuery, engine-facts B.6). A backup of an engine that did
not change makes no request by id.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Dict, Iterable, Iterator, List, Optional, Tuple, TypeVar

from ..errors import EngineError
from .faults import splittable
from .inventory import EngineVm
from .paging import Pager, PageRead

if TYPE_CHECKING:                           # the adapter imports this module
    from .adapter import Engine

log = logging.getLogger(__name__)
T = TypeVar("T")

__all__ = ["complete", "ReadStats"]


@dataclass
class ReadStats:
    """What a complete read found besides the VMs: for the run report."""

    requests: int = 0                                   # page requests (parts included)
    checked: bool = False                               # the start list was compared
    moved: List[Tuple[str, str]] = field(default_factory=list)      # (id, name) read by id
    removed: List[Tuple[str, str]] = field(default_factory=list)    # (id, name) gone
    unreadable: List[Tuple[str, str]] = field(default_factory=list)  # (id, name)


def complete(pages: Iterable[PageRead[T]], engine: "Engine", datacenter: Optional[str],
             pager: Pager, *, key: Callable[[T], str], from_vm: Callable[[EngineVm], T],
             start_list: Callable[[], Dict[str, str]],
             stats: Optional[ReadStats] = None) -> Iterator[T]:
    """Every item of ``pages`` whose VM was not given out yet, until the pager says the
    listing ended; then, unless one whole page was the whole listing, every VM of
    ``start_list()`` the pages missed, read by id (``from_vm`` turns it into an item)."""
    stats = stats if stats is not None else ReadStats()
    whole_single_page = True
    for number, read in enumerate(pages):
        stats.requests += read.requests
        for failed in read.failed:
            log.info("page %d: the VM at position %d could not be read (%s); it is read "
                     "again by id", read.page, failed.offset + 1, failed.reason)
        fresh = pager.fresh(read.items, key)
        yield from fresh
        whole_single_page = number == 0 and read.whole
        if pager.ends(read, fresh):
            break
    if whole_single_page:
        return                               # one query: one consistent view of the engine
    yield from _missed(engine, datacenter, pager, start_list(), from_vm, stats)


def _missed(engine: "Engine", datacenter: Optional[str], pager: Pager,
            start: Dict[str, str], from_vm: Callable[[EngineVm], T],
            stats: ReadStats) -> Iterator[T]:
    stats.checked = True
    missed = [(vm_id, name) for vm_id, name in start.items() if vm_id not in pager.seen]
    if missed:
        log.info("%d VM(s) of the %d the engine had were not in the pages (moved while they "
                 "were read, or unreadable); reading them by id", len(missed), len(start))
    for vm_id, name in missed:
        try:
            vm = engine.fetch_vm(vm_id)
        except EngineError as e:
            if e.code == 404:
                stats.removed.append((vm_id, name))
                continue
            if not (splittable(e) or (e.code or 0) >= 500):
                raise                          # a refusal: the run stops, as for a page
            if not e.unreadable:
                engine.still_answering(e)      # raises when the engine itself is gone
            stats.unreadable.append((vm_id, name))
            pager.seen.add(vm_id)
            yield from_vm(EngineVm(vm_id, name, "", datacenter or "", None,
                                   problem=engine.unreadable_reason(vm_id, e)))
            continue
        if datacenter and vm.datacenter != datacenter:
            stats.removed.append((vm_id, name))      # it left the data center being read
            continue
        if vm.id in pager.seen:
            continue
        pager.seen.add(vm.id)
        stats.moved.append((vm.id, vm.name))
        yield from_vm(vm)
