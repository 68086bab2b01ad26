"""Reading the engine's VMs and turning each OVF into what providers store.

A backup spends its CPU in three places of about equal weight: the SDK turning each page of
``GET /vms?all_content=true`` into objects, parsing, hashing and compressing each OVF, and
the providers' writes. Only the writes need the main process (the providers' open runs).
So when the engine has more than one page, worker processes each log in with their own SDK
connection, read the next pages and capture their OVFs, while the main process writes what
came back, page by page and in order. A real engine also gains from it: it builds several
pages of OVFs at once. One page per worker and one more are in flight, so memory stays flat;
workers log out when they end.

A small engine (one page) starts no worker. Workers that cannot start or die leave the rest
of the run to the main process, with a warning: nothing is lost.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import util
from typing import Any, Deque, Dict, Iterator, List, Optional, Tuple

from ..engine import Engine, EngineVm, Pager
from ..errors import OvfError
from ..model import VmIdentity
from ..ovf import ovf_hash, pack, parse_ovf

log = logging.getLogger(__name__)

MAX_WORKERS = 4
AHEAD = MAX_WORKERS + 1   # pages in flight at most: one per worker and one more. Read-ahead
                          # asks for pages past the end, which the engine answers empty
                          # (synth.EMPTY_PAGES_AFTER models that)


@dataclass(frozen=True)
class Captured:
    """One VM's OVF, parsed, hashed and compressed; or why it could not be."""

    identity: Optional[VmIdentity] = None
    digest: str = ""                      # ovf_hash of the OVF
    packed: bytes = b""                   # zlib of the UTF-8 OVF
    error: str = ""                       # set when the OVF is missing or unusable

    @property
    def ok(self) -> bool:
        return self.identity is not None


#: A VM as the engine listed it, and what capturing its OVF gave.
CapturedVm = Tuple[EngineVm, Captured]


def capture_one(ovf: Optional[str]) -> Captured:
    """Parse, hash and compress one OVF (compression is here, beside the parse, so that it
    runs on a worker's core too; the host seals it for the providers)."""
    if not ovf:
        return Captured(error="the engine sent no OVF (the VM or one of its disks is "
                              "locked, or it changed while being read)")
    try:
        identity, digest = parse_ovf(ovf), ovf_hash(ovf)
    except OvfError as e:
        return Captured(error=f"its OVF is unusable: {e}")
    return Captured(identity, digest, pack(ovf))


def default_workers() -> int:
    """One worker per core, at most four: the workers do the heavy part (reading pages,
    parsing OVFs); the main process mostly waits on them and writes."""
    return max(1, min(MAX_WORKERS, os.cpu_count() or 1))


def captured(engine: Engine, datacenter: Optional[str] = None, *,
             workers: Optional[int] = None) -> Iterator[CapturedVm]:
    """``(vm, captured)`` for every VM of the engine (or of one data center), in the
    engine's order, each VM once. ``workers=0`` does everything in this process."""
    workers = default_workers() if workers is None else workers
    engine.check_scope(datacenter)
    pager = Pager(engine.settings.page_size)
    page = 1
    if workers > 0:
        first = engine.fetch_page(datacenter, 1)     # a one-page engine needs no worker
        fresh = pager.fresh(first, lambda vm: vm.id)
        yield from ((vm, capture_one(vm.ovf)) for vm in fresh)
        if pager.is_last(first, fresh):
            return
        try:
            for pairs in _pooled(engine, datacenter, workers):
                fresh_pairs = pager.fresh(pairs, lambda pair: pair[0].id)
                yield from fresh_pairs
                if pager.is_last(pairs, fresh_pairs):
                    return
            return
        except _PoolFailed as failed:
            log.warning("the worker processes failed (%s); reading on in this process from "
                        "page %d", failed.cause, failed.page)
            page = failed.page
    for vm in engine.iter_vms(datacenter, start=page, pager=pager):
        yield vm, capture_one(vm.ovf)


class _PoolFailed(Exception):
    def __init__(self, cause: BaseException, page: int):
        super().__init__(str(cause))
        self.cause, self.page = cause, page


def _pooled(engine: Engine, datacenter: Optional[str],
            workers: int) -> Iterator[List[CapturedVm]]:
    """``[(vm, captured)]`` of each page from page 2 on, in order, read by workers; the
    last one yielded is the first short page (the caller's pager stops there)."""
    size = engine.settings.page_size
    log.info("reading pages and parsing OVFs in %d worker process(es)", workers)
    pool = ProcessPoolExecutor(workers, mp_context=_context(), initializer=_start_worker,
                               initargs=(engine.__getstate__(),))
    pending: Deque[Tuple[int, "Future[List[CapturedVm]]"]] = deque()
    page = 2
    try:
        for page in range(2, 2 + min(workers, MAX_WORKERS) + 1):
            pending.append((page, pool.submit(_read_page, datacenter, page)))
        while pending:
            number, future = pending[0]
            try:
                vms = future.result()
            except (BrokenProcessPool, OSError) as e:
                raise _PoolFailed(e, number) from e
            pending.popleft()
            yield vms
            if len(vms) < size:                      # the last page: stop asking
                for _, later in pending:
                    later.cancel()
                return
            page += 1
            pending.append((page, pool.submit(_read_page, datacenter, page)))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# -- in a worker process ----------------------------------------------------------------
# A worker's own engine adapter: set once by the pool's initializer in the worker process.
_worker: Dict[str, Engine] = {}


def _start_worker(state: Dict[str, Any]) -> None:
    """Runs once per worker: its own engine adapter from the parent's settings and
    inventory (its own login on first use, never the parent's connection), logged out when
    the worker ends."""
    engine = Engine.__new__(Engine)
    engine.__setstate__(state)
    _worker["engine"] = engine
    util.Finalize(None, engine.close, exitpriority=10)


def _read_page(datacenter: Optional[str], page: int) -> List[CapturedVm]:
    return [(vm, capture_one(vm.ovf)) for vm in _worker["engine"].fetch_page(datacenter, page)]


def _context() -> Any:
    """fork where there is one: workers start at once and never import the caller's main
    module (which ``spawn``/``forkserver`` do, and which breaks unguarded scripts). A child
    does not use the parent's SDK connection: it opens its own."""
    try:
        return multiprocessing.get_context("fork")
    except ValueError:                     # no fork on this platform
        return multiprocessing.get_context("spawn")
