"""Parsing and hashing the engine's OVFs, on another core while the next page is read.

A backup spends its CPU in three places of equal weight: the SDK turning each page of
``GET /vms?all_content=true`` into objects, parsing, hashing and compressing each OVF, and
the providers' writes. The first and the last need the main process (the SDK connection,
the providers' open runs); the middle one does not. So the VMs are
cut into chunks, and from the second chunk on each chunk's OVFs are parsed and hashed by
worker processes while the main process reads the next page and writes the previous
chunk. At most :data:`AHEAD` chunks are in flight, so memory stays flat. A small engine
(one chunk) never starts a worker, and workers that cannot start or die leave the rest of the
run to this process, with a warning.
"""
from __future__ import annotations

import itertools
import logging
import multiprocessing
import os
import zlib
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Iterable, Iterator, List, Optional, Sequence, Tuple

from .errors import OvfError
from .model import VmIdentity
from .ovf import ovf_hash, parse_ovf

log = logging.getLogger(__name__)

CHUNK = 50          # VMs per task handed to a worker
AHEAD = 3           # chunks in flight at most

#: (identity, ovf hash, zlib of the OVF, error): all None but error when error says why.
Captured = Tuple[Optional[VmIdentity], Optional[str], Optional[bytes], str]
ZLIB_LEVEL = 1      # twice as fast as the default 6 for a tenth more bytes on OVFs


def capture_one(ovf: Optional[str]) -> Captured:
    """Parse, hash and compress one OVF (compression is here, beside the parse, so that it
    runs on the worker's core too; providers that store compressed OVFs take it as is)."""
    if not ovf:
        return None, None, None, ("the engine sent no OVF (the VM or one of its disks is "
                                  "locked, or it changed while being read)")
    try:
        identity, digest = parse_ovf(ovf), ovf_hash(ovf)
    except OvfError as e:
        return None, None, None, f"its OVF is unusable: {e}"
    return identity, digest, zlib.compress(ovf.encode("utf-8"), ZLIB_LEVEL), ""


def capture_chunk(ovfs: Sequence[Optional[str]]) -> List[Captured]:
    return [capture_one(ovf) for ovf in ovfs]


def default_workers() -> int:
    """One worker per core beyond the main process's, at least one, at most two."""
    return max(1, min(2, (os.cpu_count() or 2) - 1))


def captured(vms: Iterable, *, workers: Optional[int] = None,
             chunk: int = CHUNK) -> Iterator[Tuple[object, Captured]]:
    """``(vm, (identity, hash, error))`` for each VM of ``vms`` (objects with ``.ovf``), in
    order. ``workers=0`` parses everything in this process."""
    workers = default_workers() if workers is None else workers
    chunks = _chunks(iter(vms), chunk)
    first = next(chunks, None)
    if first is None:
        return
    second = next(chunks, None) if workers > 0 else None
    if second is None:
        yield from _inline(first)
        for rest in chunks:                # workers == 0
            yield from _inline(rest)
        return
    try:
        yield from _pooled(first, second, chunks, workers)
    except _PoolFailed as failed:          # go on in this process, nothing is lost
        log.warning("OVF parsing workers failed (%s); parsing in this process", failed.cause)
        for chunk_ in failed.unfinished:
            yield from _inline(chunk_)
        for rest in chunks:
            yield from _inline(rest)


class _PoolFailed(Exception):
    def __init__(self, cause, unfinished):
        super().__init__(str(cause))
        self.cause, self.unfinished = cause, unfinished


def _pooled(first, second, chunks, workers):
    pending = deque()
    try:
        with ProcessPoolExecutor(workers, mp_context=_context()) as pool:
            for c in (first, second):
                pending.append((c, pool.submit(capture_chunk, [vm.ovf for vm in c])))
            for c in chunks:
                pending.append((c, pool.submit(capture_chunk, [vm.ovf for vm in c])))
                while len(pending) >= AHEAD:
                    c, future = pending[0]
                    results = future.result()
                    pending.popleft()
                    yield from zip(c, results)
            while pending:
                c, future = pending[0]
                results = future.result()
                pending.popleft()
                yield from zip(c, results)
    except (BrokenProcessPool, OSError) as e:
        raise _PoolFailed(e, [c for c, _ in pending]) from e


def _inline(chunk) -> Iterator[Tuple[object, Captured]]:
    for vm in chunk:
        yield vm, capture_one(vm.ovf)


def _chunks(it: Iterator, size: int) -> Iterator[list]:
    while True:
        chunk = list(itertools.islice(it, size))
        if not chunk:
            return
        yield chunk


def _context():
    """fork where there is one: workers start at once and never import the caller's main
    module (which ``spawn``/``forkserver`` do, and which breaks unguarded scripts). A child
    only parses and hashes the strings it is sent; it touches none of the inherited
    connections and leaves with ``os._exit``."""
    try:
        return multiprocessing.get_context("fork")
    except ValueError:                     # no fork on this platform
        return multiprocessing.get_context("spawn")
