"""Parsing and hashing the engine's OVFs, on another core while the next page is read.

A backup spends its CPU in three places of equal weight: the SDK turning each page of
``GET /vms?all_content=true`` into objects, parsing each OVF (lxml plus the identity walk)
and hashing it, and the providers' writes. The first and the last need the main process
(the SDK connection, the providers' open runs); the middle one does not. So the VMs are
cut into chunks, and from the second chunk on each chunk's OVFs are parsed and hashed by
worker processes while the main process reads the next page and writes the previous
chunk. At most :data:`AHEAD` chunks are in flight, so memory stays flat. A small engine
(one chunk) never starts a worker.
"""
from __future__ import annotations

import itertools
import multiprocessing
import os
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from typing import Iterable, Iterator, List, Optional, Sequence, Tuple

from .errors import OvfError
from .model import VmIdentity
from .ovf import ovf_hash, parse_ovf

CHUNK = 50          # VMs per task handed to a worker
AHEAD = 3           # chunks in flight at most

#: (identity, ovf hash, error): identity and hash are None when error says why.
Captured = Tuple[Optional[VmIdentity], Optional[str], str]


def capture_one(ovf: Optional[str]) -> Captured:
    if not ovf:
        return None, None, ("the engine sent no OVF (the VM or one of its disks is locked, "
                            "or it changed while being read)")
    try:
        return parse_ovf(ovf), ovf_hash(ovf), ""
    except OvfError as e:
        return None, None, f"its OVF is unusable: {e}"


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
    context = _context()
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        pending = deque((c, pool.submit(capture_chunk, [vm.ovf for vm in c]))
                        for c in (first, second))
        for c in chunks:
            pending.append((c, pool.submit(capture_chunk, [vm.ovf for vm in c])))
            while len(pending) >= AHEAD:
                yield from _results(*pending.popleft())
        while pending:
            yield from _results(*pending.popleft())


def _inline(chunk) -> Iterator[Tuple[object, Captured]]:
    for vm in chunk:
        yield vm, capture_one(vm.ovf)


def _results(chunk, future) -> Iterator[Tuple[object, Captured]]:
    yield from zip(chunk, future.result())


def _chunks(it: Iterator, size: int) -> Iterator[list]:
    while True:
        chunk = list(itertools.islice(it, size))
        if not chunk:
            return
        yield chunk


def _context():
    """forkserver: workers start from a clean process (no threads, no open connections of
    ours are inherited), with the parser module imported once."""
    try:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["ovirt_backup_plugin.capture"])
        return context
    except ValueError:                     # no forkserver on this platform
        return multiprocessing.get_context("spawn")
