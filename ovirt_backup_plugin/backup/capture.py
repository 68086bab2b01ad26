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
of the run to the main process, with a warning: nothing is lost. Workers never outlive the
run: they die with the main process however it dies (``PR_SET_PDEATHSIG``), a run that
stops (a failure, a signal) ends them at once, and they never hold the run lock.
"""
from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import sys
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import util
from typing import Any, Deque, Dict, Iterator, Optional, Tuple

from ..engine import Engine, EngineVm, Pager, PageRead, ReadStats, complete
from ..errors import EngineError, OvfError
from ..model import VmIdentity
from ..ovf import ovf_hash, pack, parse_ovf
from .lock import forget_inherited_locks

log = logging.getLogger(__name__)

MAX_WORKERS = 4
PR_SET_PDEATHSIG = 1      # <linux/prctl.h>
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


def capture_one(ovf: Optional[str], problem: str = "") -> Captured:
    """Parse, hash and compress one OVF (compression is here, beside the parse, so that it
    runs on a worker's core too; the host seals it for the providers). ``problem``: why
    the engine adapter could not read the OVF, when it knows."""
    if not ovf:
        return Captured(error=problem or "the engine sent no OVF (the VM or one of its disks "
                                         "is locked, or it changed while being read)")
    try:
        identity, digest = parse_ovf(ovf), ovf_hash(ovf)
    except OvfError as e:
        return Captured(error=f"its OVF is unusable: {e}")
    return Captured(identity, digest, pack(ovf))


def _capture(vm: EngineVm) -> CapturedVm:
    return vm, capture_one(vm.ovf, vm.problem)


def _vm_id(pair: CapturedVm) -> str:
    return pair[0].id


def default_workers() -> int:
    """One worker per core, at most four: the workers do the heavy part (reading pages,
    parsing OVFs); the main process mostly waits on them and writes."""
    return max(1, min(MAX_WORKERS, os.cpu_count() or 1))


def captured(engine: Engine, datacenter: Optional[str] = None, *,
             workers: Optional[int] = None,
             stats: Optional[ReadStats] = None) -> Iterator[CapturedVm]:
    """``(vm, captured)`` for every VM of the engine (or of one data center), in the
    engine's order, each VM once; then the VMs the pages missed (see
    :mod:`ovirt_backup_plugin.engine.reading`). ``workers=0`` does everything in this
    process. ``stats`` is filled with what the read found besides the VMs."""
    workers = default_workers() if workers is None else workers
    engine.check_scope(datacenter)
    source = _Pages(engine, datacenter, workers)
    try:
        yield from complete(source.pages(), engine, datacenter,
                            Pager(engine.settings.page_size), key=_vm_id, from_vm=_capture,
                            start_list=source.start_list, stats=stats)
        source.close(abort=False)
    finally:
        source.close(abort=True)           # no-op after a clean close


class _Pages:
    """The pages of one read, in order: page 1 here (a one-page engine needs no worker),
    the next ones by worker processes (or here, with ``workers=0`` or when they fail), and
    the start list of the ids the engine has, taken as soon as there is a second page."""

    def __init__(self, engine: Engine, datacenter: Optional[str], workers: int):
        self.engine, self.datacenter, self.workers = engine, datacenter, workers
        self.pool: Optional[_Pool] = None
        self._start: Optional[Dict[str, str]] = None
        self.closed = False

    def pages(self) -> Iterator[PageRead[CapturedVm]]:
        first = self.engine.read_page(self.datacenter, 1)
        yield first.with_items([_capture(vm) for vm in first.items])
        page = 2
        if self.workers > 0:
            try:
                self.pool = _Pool(self.engine, self.datacenter, self.workers)
                yield from self.pool.pages()
                return
            except _PoolFailed as failed:
                log.warning("the worker processes failed (%s); reading on in this process "
                            "from page %d", failed.cause, failed.page)
                page = failed.page
                if self.pool is not None:
                    self._start = self.pool.start_list_if_read()
                    self.pool.abort()
                    self.pool = None
        if self._start is None:
            self._start = self.engine.vm_refs(self.datacenter)
        while True:
            read = self.engine.read_page(self.datacenter, page)
            yield read.with_items([_capture(vm) for vm in read.items])
            page += 1

    def start_list(self) -> Dict[str, str]:
        if self._start is None and self.pool is not None:
            try:
                self._start = self.pool.start_list()
            except _PoolFailed as failed:
                log.warning("the worker processes failed (%s); listing the VMs' ids in this "
                            "process", failed.cause)
        if self._start is None:
            self._start = self.engine.vm_refs(self.datacenter)
        return self._start

    def close(self, *, abort: bool) -> None:
        if self.closed:
            return
        self.closed = True
        if self.pool is not None:
            if abort:
                self.pool.abort()
            else:
                self.pool.finish()


class _PoolFailed(Exception):
    def __init__(self, cause: BaseException, page: int):
        super().__init__(str(cause))
        self.cause, self.page = cause, page


class _Pool:
    """Worker processes reading pages from page 2 on (and the start list first), at most
    :data:`AHEAD` pages in flight, handed back in order."""

    def __init__(self, engine: Engine, datacenter: Optional[str], workers: int):
        self.engine, self.datacenter = engine, datacenter
        self.size = engine.settings.page_size
        log.info("reading pages and parsing OVFs in %d worker process(es)", workers)
        self.executor = ProcessPoolExecutor(
            workers, mp_context=_context(), initializer=_start_worker,
            initargs=(engine.__getstate__(), os.getpid()))
        try:
            self._start: "Future[Dict[str, str]]" = self.executor.submit(_read_start_list,
                                                                         datacenter)
        except (BrokenProcessPool, OSError, RuntimeError) as e:
            self.executor.shutdown(wait=False, cancel_futures=True)
            raise _PoolFailed(e, 2) from e

    def pages(self) -> Iterator[PageRead[CapturedVm]]:
        """Each page from page 2 on, in order; the caller's pager stops the listing (then
        the pages read ahead are past its end, which the engine answers empty)."""
        pending: Deque[Tuple[int, "Future[PageRead[CapturedVm]]"]] = deque()
        try:
            yield from self._in_order(pending)
        except EngineError as e:               # a worker's: the main adapter learns of it
            self.engine.note_failure(e)
            raise
        finally:
            for _, later in pending:
                later.cancel()

    def _in_order(self, pending: Deque[Tuple[int, "Future[PageRead[CapturedVm]]"]]
                  ) -> Iterator[PageRead[CapturedVm]]:
        page = 1
        for page in range(2, 2 + AHEAD):
            self._submit(pending, page)
        while pending:
            number, future = pending[0]
            try:
                read = future.result()
            except (BrokenProcessPool, OSError) as e:
                raise _PoolFailed(e, number) from e
            pending.popleft()
            yield read
            page += 1
            self._submit(pending, page)

    def _submit(self, pending: Deque[Tuple[int, "Future[PageRead[CapturedVm]]"]],
                page: int) -> None:
        """Ask a worker for ``page``. A pool whose workers died refuses new work as it
        refuses results: the main process reads on from the first page not handed back."""
        try:
            pending.append((page, self.executor.submit(_read_page, self.datacenter, page)))
        except (BrokenProcessPool, OSError, RuntimeError) as e:
            raise _PoolFailed(e, pending[0][0] if pending else page) from e

    def start_list(self) -> Dict[str, str]:
        try:
            return self._start.result()
        except (BrokenProcessPool, OSError) as e:
            raise _PoolFailed(e, 0) from e
        except EngineError as e:
            self.engine.note_failure(e)
            raise

    def start_list_if_read(self) -> Optional[Dict[str, str]]:
        if self._start.done() and not self._start.cancelled() and not self._start.exception():
            return self._start.result()
        return None

    def finish(self) -> None:
        """The read is complete: the pages still in flight are past the end (answered
        empty at once); let the workers end."""
        self.executor.shutdown(wait=True, cancel_futures=True)

    def abort(self) -> None:
        """The run stops (a failure, a signal): end the workers now, whatever they wait for;
        a page in flight to an engine that does not answer would hold the run for its whole
        timeout and retries otherwise."""
        # ProcessPoolExecutor has no terminate(); its worker processes are in _processes
        # (Python 3.8-3.13). Workers die on SIGTERM (see _start_worker).
        processes = dict(getattr(self.executor, "_processes", None) or {})
        self.executor.shutdown(wait=False, cancel_futures=True)
        for process in processes.values():
            if process.is_alive():
                process.terminate()
        for process in processes.values():
            process.join(timeout=5)


# -- in a worker process ----------------------------------------------------------------
# A worker's own engine adapter: set once by the pool's initializer in the worker process.
_worker: Dict[str, Engine] = {}


def _start_worker(state: Dict[str, Any], parent: int) -> None:
    """Runs once per worker, first thing: it dies with the main process however that dies
    (``PR_SET_PDEATHSIG``; a parent already gone ends it at once), holds no run lock
    (:func:`.lock.forget_inherited_locks`), dies on SIGTERM and leaves SIGINT to the main
    process. Then its own engine adapter from the parent's settings, inventory and session
    (never the parent's connection), closed when the worker ends."""
    die_with_parent(parent)
    forget_inherited_locks()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    engine = Engine.__new__(Engine)
    engine.__setstate__(state)
    _worker["engine"] = engine
    util.Finalize(None, engine.close, exitpriority=10)


def die_with_parent(parent: int) -> None:
    """Ask Linux to SIGKILL this process when its parent dies (``prctl(PR_SET_PDEATHSIG)``),
    then check the parent is still the one that started it (it may have died before the
    call). Elsewhere nothing is done (the worker ends when the main process closes the
    pool's pipes)."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
                log.warning("prctl(PR_SET_PDEATHSIG) failed: errno %d", ctypes.get_errno())
        except (OSError, AttributeError) as e:
            log.warning("prctl(PR_SET_PDEATHSIG) is not available: %s", e)
    if os.getppid() != parent:
        os._exit(1)                        # the main process is gone already


def _read_start_list(datacenter: Optional[str]) -> Dict[str, str]:
    return _worker["engine"].vm_refs(datacenter)


def _read_page(datacenter: Optional[str], page: int) -> PageRead[CapturedVm]:
    read = _worker["engine"].read_page(datacenter, page)
    return read.with_items([_capture(vm) for vm in read.items])


def _context() -> Any:
    """fork where there is one: workers start at once and never import the caller's main
    module (which ``spawn``/``forkserver`` do, and which breaks unguarded scripts). A child
    does not use the parent's SDK connection: it opens its own."""
    try:
        return multiprocessing.get_context("fork")
    except ValueError:                     # no fork on this platform
        return multiprocessing.get_context("spawn")
