"""``ovirt-backup check [--provider P] [--read-data]``: is every backup still there, whole?

In the habit of ``restic check`` and ``borg check --verify-data``. The host does the
verifying; a provider only says what its store holds (``inventory_store``):

* every reference of every committed generation must resolve to a stored blob: one that
  does not is a problem, reported per VM and the generations that reference it;
* stored blobs that no generation references (an abandoned run's, an interrupted prune's)
  are reported and counted, not a problem: ``prune`` collects them;
* with ``--read-data`` every referenced blob is read once (however many generations share
  it) through :meth:`~ovirt_backup_plugin.host.ProviderHandle.read_checked`: decrypted,
  checked against the name its generations recorded, the size limit and the backup-time
  parser. A blob that fails is a problem of every VM and generation that references it.
  The blobs of each key are counted: an old key can go once no blob needs it.

Exit code: 0 clean, 1 any problem, 2 no provider could be checked at all.

A provider without ``inventory_store`` is checked through its listing (every generation of
every VM): with ``--read-data`` each blob is read; without it nothing can be verified.
"""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Set

from ..engine import Engine
from ..errors import BackupError
from ..host import ProviderHandle
from ..model import BlobUse, Query, Restorable, StoreInventory
from ..progress import NO_PROGRESS, Progress, Task

__all__ = ["ProviderCheck", "check", "check_provider"]


@dataclass
class ProviderCheck:
    """What ``check`` found in one provider."""

    name: str
    generations: int = 0
    references: int = 0                    # (VM, generation) references
    vms: int = 0
    blobs: int = 0                         # distinct blobs referenced
    stored: Optional[int] = None           # blobs the store holds (None: it cannot say)
    unreferenced: List[str] = field(default_factory=list)
    problems: List[str] = field(default_factory=list)
    read: int = 0                          # blobs read back (--read-data)
    keys: Counter = field(default_factory=Counter)    # key id ('' : in clear) -> blobs
    seconds: float = 0.0
    read_seconds: float = 0.0
    error: str = ""                        # the provider could not be checked at all


def _generations(use: BlobUse) -> str:
    if use.generations == 1 or use.first == use.last:
        return f"generation {use.last}"
    return f"{use.generations} generations, {use.first} … {use.last}"


def _where(use: BlobUse) -> str:
    kind = "VM" if use.kind == "vm" else use.kind
    return f"{kind} {use.name} ({use.vm_id}), {_generations(use)}"


def _from_listing(handle: ProviderHandle, engine: Engine) -> StoreInventory:
    """What a provider without ``inventory_store`` references, from its listing."""
    grouped: Dict[tuple, List[Restorable]] = {}
    items = handle.list_restorable(Query(every=True), engine)
    for item in items:
        grouped.setdefault((item.ovf_hash, item.vm_id), []).append(item)
    uses = []
    for (name, vm_id), found in grouped.items():
        found.sort(key=lambda i: (i.taken_at is None, i.taken_at, i.generation))
        uses.append(BlobUse(ovf_hash=name, vm_id=vm_id, name=found[-1].name,
                            first=found[0].generation, last=found[-1].generation,
                            generations=len(found), kind=found[-1].kind,
                            location=found[-1].location))
    return StoreInventory(generations=len({i.generation for i in items}), uses=tuple(uses))


def check_provider(handle: ProviderHandle, engine: Engine, *,
                   read_data: bool = False, progress: Progress = NO_PROGRESS) -> ProviderCheck:
    """Check one provider's store (see the module); ``progress`` is told of each stored
    OVF ``read_data`` reads."""
    result = ProviderCheck(handle.name)
    started = time.monotonic()
    inventoried = handle.implements("inventory_store")
    inventory = handle.inventory_store() if inventoried else _from_listing(handle, engine)
    result.generations = inventory.generations
    result.problems += list(inventory.problems)
    by_blob: Dict[str, List[BlobUse]] = {}
    for use in inventory.uses:
        by_blob.setdefault(use.ovf_hash, []).append(use)
    result.references = sum(u.generations for u in inventory.uses)
    result.vms = len({u.vm_id for u in inventory.uses})
    result.blobs = len(by_blob)
    missing: Set[str] = set()
    if inventoried:
        stored = set(inventory.stored)
        result.stored = len(stored)
        missing = set(by_blob) - stored
        for name in sorted(missing):
            for use in by_blob[name]:
                result.problems.append(f"{_where(use)}: its stored OVF {name[:16]} is missing "
                                       f"from {handle.name}")
        result.unreferenced = sorted(stored - set(by_blob) - set(inventory.kept))
    result.seconds = time.monotonic() - started
    if read_data:
        started = time.monotonic()
        to_read = sorted(set(by_blob) - missing)
        task = progress.task(f"check {handle.name}", total=len(to_read), unit="OVF")
        try:
            _read_all(handle, to_read, by_blob, result, task)
        finally:
            task.close()
        result.read_seconds = time.monotonic() - started
    return result


def _read_all(handle: ProviderHandle, names: List[str], by_blob: Dict[str, List[BlobUse]],
              result: ProviderCheck, task: Task) -> None:
    """Each stored OVF of ``names`` read once, opened and checked as a restore would."""
    for name in names:
        task.advance()
        first = by_blob[name][0]
        item = Restorable(provider=handle.name, vm_id=first.vm_id, name=first.name,
                          generation=first.last, ovf_hash=name, kind=first.kind,
                          location=first.location)
        result.read += 1
        try:
            checked = handle.read_checked(item)
        except BackupError as e:
            for use in by_blob[name]:
                result.problems.append(f"{_where(use)}: {e}")
            continue
        result.keys[checked.key_id] += 1


def _report(result: ProviderCheck, read_data: bool, keys: Sequence[str],
            echo: Callable[[str], None]) -> None:
    name = result.name
    stored = "" if result.stored is None else f"; the store holds {result.stored} OVF(s)"
    echo(f"{name}: {result.generations} generation(s), {result.references} reference(s) of "
         f"{result.vms} VM(s) to {result.blobs} distinct stored OVF(s){stored} "
         f"({result.seconds:.2f}s)")
    if result.stored is None and not read_data:
        echo(f"  {name} cannot say what it stores (no inventory_store): only --read-data "
             "verifies its references")
    if read_data:
        parts = []
        for key_id, count in sorted(result.keys.items()):
            if not key_id:
                parts.append(f"{count} in clear")
            else:
                role = ("current key" if keys and key_id == keys[0] else
                        "an old key" if key_id in keys else "a key not in the ring")
                parts.append(f"{count} with key {key_id} ({role})")
        sealed = f"; sealed: {', '.join(parts)}" if parts else ""
        echo(f"  read {result.read} stored OVF(s) once each, decrypted, hash-checked and "
             f"parsed in {result.read_seconds:.2f}s{sealed}")
    if result.unreferenced:
        shown = ", ".join(n[:16] for n in result.unreferenced[:5])
        more = f" and {len(result.unreferenced) - 5} more" if len(result.unreferenced) > 5 else ""
        echo(f"  {len(result.unreferenced)} stored OVF(s) no generation references ({shown}"
             f"{more}): left by an abandoned run or an interrupted prune; not damage, "
             "'ovirt-backup prune' removes them")
    for problem in result.problems:
        echo(f"  PROBLEM {problem}")
    if not result.problems:
        echo(f"  {name}: clean" + ("" if read_data else " (references; --read-data reads "
                                                     "every stored OVF too)"))


def check(handles: Sequence[ProviderHandle], *, engine: Optional[Engine] = None,
          read_data: bool = False, echo: Callable[[str], None] = print,
          warn: Callable[[str], None] = print, progress: Progress = NO_PROGRESS) -> int:
    """The ``check`` command over ``handles``: 0 clean, 1 problems, 2 nothing checked."""
    engine = engine or Engine(None)
    checked = failed = problems = 0
    for handle in handles:
        if not handle.keeps_ovf:
            echo(f"{handle.name}: skipped: it keeps no OVF copies of its own")
            continue
        try:
            result = check_provider(handle, engine, read_data=read_data, progress=progress)
        except BackupError as e:
            warn(f"error: {handle.name}: cannot be checked: {e}")
            failed += 1
            continue
        checked += 1
        problems += len(result.problems)
        keys = handle.sealer.keys.ids if handle.sealer.keys is not None else ()
        _report(result, read_data, keys, echo)
    if not checked and failed:
        return 2
    if problems or failed:
        echo(f"check: {problems} problem(s)" + (f", {failed} provider(s) not checked"
                                                 if failed else ""))
        return 1
    echo("check: no problem found" if checked else "check: nothing to check")
    return 0
