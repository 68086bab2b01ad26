"""Incremental capture: read only the VMs the engine's events named, sweep to stay honest.

A *sweep* (full run) reads every VM's OVF. An *incremental* run builds on the newest
generation of every provider that keeps OVF copies: it reads the events feed since that
generation's cursor (:mod:`ovirt_backup_plugin.engine.events`), reads the OVFs of the VMs
those events name (a few batched requests), and records every other VM of that generation
by reference (:func:`carry_unchanged`, the ``carry_over`` hook). Either way the generation
it commits is complete, and its record says which it was and why (``Run.mode``,
``Run.reason``), with the cursor the next run follows (``Run.cursor``) -- committed with
the generation or not at all.

:func:`plan_capture` decides. A sweep is chosen, with the reason recorded, when:

* ``--full`` or ``[backup] mode = full``;
* a provider that keeps OVF copies has no generation yet (the first run), cannot list its
  generations, or its newest one has no cursor or covers another data-center scope;
* the newest sweep is older than ``[backup] full_every`` (default 24h), or the newest
  generation is older than the engine keeps events (30 days);
* the feed cannot be read, or the cursor's own event is gone from it (aged out, or
  dismissed -- "clear all" dismisses it too): events may be missing;
* more events than one read takes (:data:`~ovirt_backup_plugin.engine.events.FEED_MAX`),
  or more changed VMs than a quarter of the generation (a sweep is cheaper then);
* an event that may change VMs without naming them (a data-center compatibility upgrade,
  952, bumps every VM's ``<Generation>``; affinity groups, permissions, template and
  cluster updates ...), or an event of a VM code that names no VM;
* the per-run cross-check does not add up: the engine's VM count (``GET /ovirt-engine/api``
  summary, one small request, on every run of every data center) against what the
  generation would hold, and a sample of VMs no event named, read in the same batches as
  the changed ones (no extra request; a run with nothing to read has no sample) and
  compared with the stored content hash -- which includes ``<Generation>``, so it is
  stronger than comparing ``<Generation>`` alone, and needs nothing more stored.

The cursor a run records is the newest followed event that is older than the engine's
clock minus :attr:`CaptureSettings.overlap` (an id lower than one seen may become visible a
moment later, see the events module); newer events are read again by the next run, which
costs nothing but reading their VMs again.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import random
import re
from dataclasses import dataclass, field
from typing import (
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    Optional,
    Protocol,
    Sequence,
    Set,
    Tuple,
    TypeVar,
)

from ..engine import Engine, EngineVm, ReadStats
from ..engine.events import (
    FEED_MAX,
    SWEEP,
    VM_IF_NAMED,
    EngineStatus,
    FeedEvent,
    engine_status,
    newest_events,
    read_feed,
)
from ..errors import BackupError, OvfError
from ..host import ProviderHandle
from ..model import (
    FLAG_UNREAD,
    MODE_FULL,
    MODE_INCREMENTAL,
    GenerationInfo,
    Query,
    Restorable,
    Run,
    VmBackup,
    utcnow,
)
from ..ovf import key_id_of, ovf_hash, pack, seal
from .capture import Captured, CapturedVm, capture_one, captured

log = logging.getLogger(__name__)

__all__ = ["CaptureSettings", "Capture", "plan_capture", "sweep", "carry_unchanged",
           "keep_unread", "MODES"]

MODES = ("auto", "full")
EVENT_RETENTION = dt.timedelta(days=30)   # AuditLogAgingThreshold (engine-facts A2)
SWEEP_LOOKBACK = 50                       # newest events read to place a sweep's cursor
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


@dataclass(frozen=True)
class CaptureSettings:
    """How runs are captured (``[backup] mode``, ``full_every``; ``backup --full``)."""

    mode: str = "auto"                    # auto: incremental when it is safe; full: always sweep
    full_every: dt.timedelta = dt.timedelta(hours=24)
    force_full: bool = False              # backup --full
    sample: int = 8                       # unnamed VMs read and compared per run
    batch: int = 50                       # VM ids per request
    overlap: dt.timedelta = dt.timedelta(seconds=120)
    changed_share: float = 0.25           # more changed VMs than this share: sweep
    workers: Optional[int] = None         # a sweep's worker processes (capture.captured)
    #: VMs the last run listed but could not back up (health.skipped_ids): read again by
    #: an incremental run, event or not, so that a VM never backed up is not forgotten.
    retry: Tuple[str, ...] = ()


# -- who takes part -----------------------------------------------------------------------
class Report(Protocol):
    ok: bool
    written: int
    new_blobs: int
    carried: int


class Participant(Protocol):
    """A provider taking part in a run (``run._Open``): its handle, state and report."""

    @property
    def handle(self) -> ProviderHandle: ...

    @property
    def state(self) -> object: ...

    @property
    def report(self) -> Report: ...


P = TypeVar("P", bound=Participant)
MakeBackup = Callable[[EngineVm, Captured], VmBackup]


@dataclass
class Capture:
    """What a run reads, and what it records by reference: the planner's decision."""

    mode: str
    reason: str
    cursor: Optional[int]
    source: Callable[[], Iterator[CapturedVm]]
    carry: Dict[str, List[Restorable]] = field(default_factory=dict)   # provider -> items
    unread: List[EngineVm] = field(default_factory=list)               # OVF withheld
    engine: Optional[Engine] = None
    batch: int = 50
    stats: ReadStats = field(default_factory=ReadStats)   # what a sweep's read found besides
    to_read: Optional[int] = None          # VMs an incremental run reads (None: not known)
    status: Optional[EngineStatus] = None  # the engine's summary, when the plan read it

    @property
    def incremental(self) -> bool:
        return self.mode == MODE_INCREMENTAL

    def stamp(self, run: Run) -> Run:
        return dataclasses.replace(run, mode=self.mode, reason=self.reason, cursor=self.cursor)

    def vms(self) -> Iterator[CapturedVm]:
        return self.source()

    def describe(self) -> str:
        what = "incremental" if self.incremental else "full sweep"
        return f"{what}: {self.reason}" if self.reason else what


def sweep(engine: Engine, scope: Optional[str], *, reason: str = "",
          cursor: Optional[int] = None, workers: Optional[int] = None) -> Capture:
    """A full run: every VM read (what a run without a planner does)."""
    stats = ReadStats()
    return Capture(MODE_FULL, reason, cursor,
                   lambda: captured(engine, scope, workers=workers, stats=stats),
                   engine=engine, stats=stats)


# -- the newest generation of each provider ------------------------------------------------
@dataclass
class _Base:
    handle: ProviderHandle
    generation: GenerationInfo
    last_full: Optional[dt.datetime]
    items: Dict[str, Restorable]


class _Sweep(Exception):
    """Why this run must be a sweep."""


def _aware(when: Optional[dt.datetime]) -> Optional[dt.datetime]:
    """A time a store gave without a zone is UTC (what every store writes)."""
    if when is not None and when.tzinfo is None:
        return when.replace(tzinfo=dt.timezone.utc)
    return when


def _age(since: Optional[dt.datetime], now: dt.datetime) -> str:
    if since is None:
        return "unknown"
    seconds = max(0, int((now - since).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _bases(carriers: Sequence[ProviderHandle], engine: Engine, scope: Optional[str],
           settings: CaptureSettings, now: dt.datetime) -> List[_Base]:
    bases = []
    for h in carriers:
        if not h.implements("list_generations"):
            raise _Sweep(f"provider {h.name} cannot list its generations")
        try:
            gens = h.list_generations()
        except BackupError as e:
            raise _Sweep(f"provider {h.name} could not list its generations: {e}") from None
        if not gens:
            raise _Sweep(f"first run: provider {h.name} has no generation yet")
        newest = gens[0]
        if newest.cursor is None:
            raise _Sweep(f"the newest generation of {h.name} ({newest.id}) has no event cursor")
        if newest.datacenter != scope:
            raise _Sweep(f"the newest generation of {h.name} covers "
                         f"{newest.datacenter or 'every data center'}, this run "
                         f"{scope or 'every data center'}")
        last_full = _aware(next((g.taken_at for g in gens if g.mode == MODE_FULL), None))
        if last_full is None or now - last_full >= settings.full_every:
            raise _Sweep(f"the last full sweep in {h.name} was "
                         f"{_age(last_full, now) + ' ago' if last_full else 'never'} "
                         f"(full_every {_age(now - settings.full_every, now)})")
        taken = _aware(newest.taken_at)
        if taken is not None and now - taken >= EVENT_RETENTION:
            raise _Sweep(f"the newest generation of {h.name} is {_age(taken, now)} "
                         "old; the engine keeps events 30 days")
        try:
            items = h.list_restorable(Query(generation=newest.id), engine)
        except BackupError as e:
            raise _Sweep(f"provider {h.name} could not list generation {newest.id}: {e}") from None
        _check_sealed_as_now(h, newest, items)
        bases.append(_Base(h, newest, last_full, {i.vm_id: i for i in items
                                                   if i.generation == newest.id}))
    return bases


def _check_sealed_as_now(h: ProviderHandle, newest: GenerationInfo,
                         items: Sequence[Restorable]) -> None:
    """Carried VMs keep their stored blobs, so an incremental run builds only on a
    generation sealed as new blobs are (a sweep after a key rotation, or after ``encrypt``
    changed, seals every VM the new way: the old key is then needed only until prune).
    One stored blob of the generation tells (a sweep seals all of them one way)."""
    item = next((i for i in items if i.generation == newest.id and FLAG_UNREAD not in i.flags),
                None)                   # an unread VM keeps an older blob, sealed as it was
    if item is None:
        return
    try:
        stored = key_id_of(h.read_ovf(item))
    except BackupError as e:          # a lost blob: carry_over hands it back to be read
        log.info("provider %s: cannot tell how generation %s is sealed: %s", h.name,
                 newest.id, e)
        return
    now = h.sealer.writes_with
    if stored != now:
        was = f"with key {stored}" if stored else "in clear"
        raise _Sweep(f"generation {newest.id} of {h.name} is sealed {was}, new blobs "
                     f"{'with key ' + now if now else 'in clear'}: a sweep seals every VM "
                     "the new way")


# -- the plan --------------------------------------------------------------------------
def plan_capture(engine: Engine, handles: Sequence[ProviderHandle], scope: Optional[str],
                 settings: CaptureSettings = CaptureSettings(),
                 echo: Callable[[str], None] = lambda s: None) -> Capture:
    """Decide how this run captures (see the module's docstring). Reads the providers'
    newest generations, the engine's summary and events feed, and the OVFs of the VMs the
    events named; a sweep decided on the way says why."""
    carriers = [h for h in handles if h.keeps_ovf and h.implements("write_ovf")]
    status: Optional[EngineStatus] = None
    feed: Optional[List[FeedEvent]] = None
    try:
        if settings.force_full:
            raise _Sweep("--full was given")
        if settings.mode == "full":
            raise _Sweep("[backup] mode = full")
        if not carriers:
            raise _Sweep("no provider keeps OVF copies to build on")
        now = utcnow()
        bases = _bases(carriers, engine, scope, settings, now)
        try:
            status = engine_status(engine)
        except BackupError as e:
            raise _Sweep(f"the engine's summary could not be read: {e}") from None
        cursor = min(int(b.generation.cursor or 0) for b in bases)
        try:
            feed = read_feed(engine, cursor)
        except BackupError as e:
            raise _Sweep(f"the event feed could not be read: {e}") from None
        return _incremental(engine, bases, scope, settings, status, cursor, feed, echo)
    except _Sweep as why:
        reason = str(why)
    cursor_now, note, status = _sweep_cursor(engine, settings, status, feed)
    if note:
        echo(f"  {note}")
        log.warning("%s", note)
    capture = sweep(engine, scope, reason=reason, cursor=cursor_now, workers=settings.workers)
    capture.status = status
    return capture


def _settled(events: Iterable[FeedEvent], status: Optional[EngineStatus],
             settings: CaptureSettings) -> Optional[int]:
    """The newest event older than the engine's clock minus the overlap (None if none)."""
    now = status.time if status is not None and status.time is not None else utcnow()
    limit = now - settings.overlap
    ids = [e.id for e in events if e.time is not None and e.time <= limit]
    return max(ids) if ids else None


def _sweep_cursor(engine: Engine, settings: CaptureSettings, status: Optional[EngineStatus],
                  feed: Optional[List[FeedEvent]],
                  ) -> Tuple[Optional[int], str, Optional[EngineStatus]]:
    """Where the feed is before a sweep reads any VM: the newest settled followed event, or
    0 when the engine has none; None (the next run sweeps again) when it cannot be read.
    Also the engine's summary (read here when the plan had not)."""
    try:
        if status is None:
            status = engine_status(engine)
        events = feed if feed else newest_events(engine, SWEEP_LOOKBACK)
    except BackupError as e:
        return None, (f"the events feed could not be read ({e}); this sweep records no "
                      "cursor, so the next run is a sweep too"), status
    if not events:
        return 0, "", status
    settled = _settled(events, status, settings)
    return (settled if settled is not None else min(e.id for e in events)), "", status


def _incremental(engine: Engine, bases: List[_Base], scope: Optional[str],
                 settings: CaptureSettings, status: EngineStatus, cursor: int,
                 feed: List[FeedEvent], echo: Callable[[str], None]) -> Capture:
    if len(feed) >= FEED_MAX:
        raise _Sweep(f"more than {FEED_MAX} configuration events since event {cursor}")
    if cursor > 0 and not any(e.id == cursor for e in feed):
        raise _Sweep(f"event {cursor}, the cursor of the newest generation, is gone from the "
                     "engine (aged out or dismissed): events may be missing")
    events = sorted((e for e in feed if e.id > cursor), key=lambda e: e.id)
    named: Set[str] = set()
    for event in events:
        kind = event.kind
        if kind is None:
            continue
        if kind.effect == SWEEP:
            raise _Sweep(f"{event.label()} may change VMs without naming them ({kind.why})")
        if not event.vm_id:
            if kind.effect == VM_IF_NAMED:
                continue
            raise _Sweep(f"{event.label()} names no VM")
        if not _UUID.fullmatch(event.vm_id):
            raise _Sweep(f"{event.label()} names VM id {event.vm_id!r}, not a UUID")
        named.add(event.vm_id.lower())
    by_events = set(named)
    named |= {vm_id.lower() for vm_id in settings.retry if _UUID.fullmatch(vm_id)}
    # every base keyed by the lower-case VM id (the engine's ids are lower-case UUIDs)
    held: List[Dict[str, Restorable]] = [{k.lower(): i for k, i in b.items.items()}
                                         for b in bases]
    known: Dict[str, Restorable] = {}
    for items in held:
        for vm_id, item in items.items():
            known.setdefault(vm_id, item)
            if FLAG_UNREAD in item.flags:
                named.add(vm_id)                # its OVF was withheld last time: read again
    total = len(known)
    if total and len(named) > max(settings.batch, settings.changed_share * total):
        raise _Sweep(f"{len(named)} VMs changed, more than {settings.changed_share:.0%} of "
                     f"{total}: a sweep is cheaper")
    # The sample rides along with the VMs to read (same batches, no extra request); a run
    # with nothing to read reads no sample: the count, the gap check and full_every hold.
    unnamed = sorted(set(known) - named) if named else []
    # seeded by what the run builds on: another sample every run, the same one when the
    # same run is made again (a test, a retried run)
    seed = f"{bases[0].generation.id}:{cursor}:{[e.id for e in events]}"
    sample = sorted(random.Random(seed).sample(unnamed, min(settings.sample, len(unnamed))))
    wanted = sorted(named) + sample
    fetched: Dict[str, CapturedVm] = {}
    if wanted:
        try:
            for vm in engine.vms_by_id(wanted, batch=settings.batch):
                key = vm.id.lower()
                if vm.ovf is None and not vm.name and key in known:
                    item = known[key]           # unreadable (over the SDK's limit ...):
                    vm = dataclasses.replace(   # named as its backup names it, kept
                        vm, name=item.name, datacenter=item.datacenter, cluster=item.cluster)
                if scope is None or vm.datacenter == scope:   # moved out of scope: gone
                    fetched[key] = (vm, capture_one(vm.ovf, vm.problem))
        except BackupError as e:
            raise _Sweep(f"the changed VMs could not be read: {e}") from None
    for vm_id in sample:
        item = known[vm_id]
        got = fetched.get(vm_id)
        if got is None:
            raise _Sweep(f"cross-check: VM {item.name} ({item.vm_id}) of generation "
                         f"{item.generation} is gone from the engine, and no event said so")
        vm, cap = got
        if cap.ok and not all(b.handle.sealer.holds_content(items[vm_id].ovf_hash, cap.digest)
                              for b, items in zip(bases, held) if vm_id in items):
            raise _Sweep(f"cross-check: VM {vm.name} ({vm.id}) changed without an event (its "
                         f"OVF is not the one generation {item.generation} holds)")
    gone = named - set(fetched)
    check = f"sample of {len(sample)} ok" if sample else "no sample (nothing to read)"
    whole = next((items for b, items in zip(bases, held)
                  if b.handle.settings.datacenter is None), None)
    if scope is None and whole is not None and status.vms is not None:
        expected = len((set(whole) - gone) | set(fetched))
        if status.vms != expected:
            raise _Sweep(f"cross-check: the engine has {status.vms} VMs, this run would hold "
                         f"{expected}")
        check = f"the engine's {status.vms} VMs, " + check
    carry = {b.handle.name: [i for k, i in items.items() if k not in fetched and k not in gone]
             for b, items in zip(bases, held)}
    settled = _settled(feed, status, settings)
    new_cursor = max(cursor, settled) if settled is not None else cursor
    unchanged = len(set(known) - gone - set(fetched))
    again = len((named - by_events) & set(fetched))     # withheld or skipped last time
    reason = (f"{len(events)} event(s) since event {cursor}; {len(fetched)} VM(s) read "
              f"({len(by_events & set(fetched))} named by events, "
              + (f"{again} read again, " if again else "") + f"{len(sample)} sampled), "
              f"{len(gone & set(known))} removed, {unchanged} carried over; cross-check: {check}")
    order = [fetched[k] for k in wanted if k in fetched]
    return Capture(MODE_INCREMENTAL, reason, new_cursor, lambda: iter(order), carry,
                   engine=engine, batch=settings.batch, to_read=len(order), status=status)


# -- recording unchanged VMs by reference ----------------------------------------------------
def carry_unchanged(capture: Capture, run: Run, participants: Sequence[P],
                    make_backup: MakeBackup, fail: Callable[[P, str], None],
                    echo: Callable[[str], None] = lambda s: None) -> int:
    """Record every unchanged VM of an incremental run in each provider that keeps OVF
    copies (``carry_over``; for a provider without it, each OVF read back, checked and
    written again). A VM a provider lost is read from the engine and written to it.
    Returns how many distinct VMs were carried."""
    carried: Set[str] = set()
    for p in participants:
        items = capture.carry.get(p.handle.name)
        if items is None or not p.report.ok:
            continue
        carried |= _carry(capture, run, p, items, make_backup, fail, echo)
    return len(carried)


def keep_unread(capture: Capture, run: Run, participants: Sequence[P],
                make_backup: MakeBackup, fail: Callable[[P, str], None],
                echo: Callable[[str], None] = lambda s: None) -> int:
    """The VMs whose OVF the engine withheld in this run keep their newest backup in the new
    generation, flagged ``unread`` (the next run reads them again), so that the generation
    stays complete. A VM without any backup stays out of it. Returns how many were kept."""
    if not capture.unread:
        return 0
    ids = tuple(sorted({vm.id for vm in capture.unread}))
    kept: Set[str] = set()
    for p in participants:
        h = p.handle
        if not (h.keeps_ovf and p.report.ok):
            continue
        try:
            newest = h.list_restorable(Query(vms=ids), capture.engine or Engine(None))
        except BackupError as e:
            fail(p, f"while keeping the previous backup of unread VMs: {e}")
            continue
        scope = h.settings.datacenter
        items = [dataclasses.replace(i, flags=tuple(dict.fromkeys(i.flags + (FLAG_UNREAD,))))
                 for i in newest if i.vm_id in ids and scope in (None, i.datacenter)]
        kept |= _carry(capture, run, p, items, make_backup, fail, echo, fetch=False)
    return len(kept)


def _carry(capture: Capture, run: Run, p: P, items: List[Restorable],
           make_backup: MakeBackup, fail: Callable[[P, str], None], echo: Callable[[str], None], *,
           fetch: bool = True) -> Set[str]:
    h = p.handle
    if not items:
        return set()
    lost: List[str]
    try:
        if h.implements("carry_over"):
            lost = h.carry_over(run, p.state, items)
        else:
            lost = _read_back(run, p, items)
    except BackupError as e:
        fail(p, f"while recording the unchanged VMs: {e}")
        return set()
    lost_set = set(lost)
    done = {i.vm_id for i in items} - lost_set
    p.report.carried += len(done)
    p.report.written += len(done)
    if lost_set:
        echo(f"  {h.name}: {len(lost_set)} stored OVF(s) missing; "
             + ("reading them from the engine" if fetch else "not kept"))
        log.warning("provider %s lost %d stored OVF(s): %s", h.name, len(lost_set),
                    ", ".join(sorted(lost_set)[:10]))
        if fetch and capture.engine is not None:
            done |= _refetch(capture, run, p, sorted(lost_set), make_backup, fail)
    return done


def _read_back(run: Run, p: Participant, items: List[Restorable]) -> List[str]:
    """The host's way for a provider without ``carry_over``: each stored OVF read back,
    opened and checked as a restore would (its hash, the key that sealed it, the parser),
    and written again under its content hash, as a capture hands it (the host names the
    blob: in an encrypted store ``item.ovf_hash`` is already the keyed name)."""
    lost = []
    for item in items:
        try:
            checked = p.handle.read_checked(item)
        except (BackupError, OvfError) as e:
            log.warning("provider %s: the stored OVF of %s cannot be carried over: %s",
                        p.handle.name, item.name, e)
            lost.append(item.vm_id)
            continue
        new = p.handle.write_ovf(run, p.state, VmBackup(
            vm_id=item.vm_id, name=item.name, kind=item.kind, datacenter=item.datacenter,
            cluster=item.cluster, ovf_hash=ovf_hash(checked.text), blob=seal(pack(checked.text)),
            ovf=checked.text, identity=checked.identity, flags=item.flags))
        p.report.new_blobs += 1 if new else 0
    return lost


def _refetch(capture: Capture, run: Run, p: P, ids: List[str],
             make_backup: MakeBackup, fail: Callable[[P, str], None]) -> Set[str]:
    assert capture.engine is not None
    done: Set[str] = set()
    try:
        vms = capture.engine.vms_by_id(ids, batch=capture.batch)
    except BackupError as e:
        fail(p, f"while reading the VMs whose stored OVF was missing: {e}")
        return done
    for vm in vms:
        cap = capture_one(vm.ovf, vm.problem)
        if not cap.ok:
            log.warning("VM %s (%s): %s", vm.name, vm.id, cap.error)
            continue
        try:
            new = p.handle.write_ovf(run, p.state, make_backup(vm, cap))
        except BackupError as e:
            fail(p, f"while writing VM {vm.name}: {e}")
            return done
        p.report.written += 1
        p.report.new_blobs += 1 if new else 0
        done.add(vm.id)
    return done
