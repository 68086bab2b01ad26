"""Restoring many VMs: templates first, then VMs over K engine connections, each import
followed until the engine is done with it and checked for what the engine really did.

Order
    Every copy to make is a :class:`Job`, in the order of the plan: templates first, then
    the VMs, each item's copies together. Templates and what a provider registers itself
    (``msd``: ``restore_vm``) are done first, one at a time, in this thread: a VM
    registered from a storage domain needs its template there, and the provider contract
    promises nothing about a provider being called from several threads. Then the VMs made
    with ``POST /vms`` are imported by K workers, each with its own :class:`Engine` (its
    own SDK connection: an ``ovirtsdk4.Connection`` is not thread-safe). This thread reads
    and checks each stored OVF (through its provider, once per item), maps it for the
    target and hands it to a worker, keeping at most 2K imports in flight, so memory does
    not grow with the number of VMs. The report comes in the order of the plan, not in the
    order the imports finish.

Refusals
    The engine takes its locks before it validates (engine-facts B4): a parallel import can
    be refused because another command holds a lock: ``ACTION_TYPE_FAILED_OBJECT_LOCKED``
    ("Related operation is currently in progress"), ``…VM_IS_BEING_IMPORTED``,
    ``…NAME_ALREADY_USED`` (the name lock, not VM_CANNOT_IMPORT_VM_NAME_EXISTS), a locked
    template image; and the proxy answers 502/503/504 while the engine is away. Those are
    retried with exponential back-off and jitter, a bounded number of times
    (:attr:`RestoreSettings.attempts`). Before an import is sent again after an answer that
    may hide a done import (5xx, a timeout, a reset connection), the engine is asked whether
    the VM exists now with this import's correlation id. Anything else fails that copy.

202
    Engines before 4.5.1 may answer 202 (the ``<vm>`` still ``image_locked``, engine-facts
    B3). The import is then followed with ``GET /vms/{id}`` until the VM leaves
    ``image_locked`` (at most :attr:`RestoreSettings.wait_locked` seconds), and its final
    state is reported. The product does not send ``X-Ovirt-Expect: 201-created`` (which
    would make those engines block): a blocking request lasts as long as the import, and a
    client timeout during it (the SDK's ``timeout``) would leave it unknown whether the VM
    was created; polling keeps every request short and the wait bounded by this side.

Truth and resume
    Each import carries a ``Correlation-Id`` derived from the restore
    (:func:`.truth.correlation_id`); afterwards its events and the created VM are read
    (:func:`.truth.findings`) and a copy the engine degraded is reported "restored with
    warnings". Running the same restore again finds the VMs its earlier attempt created
    (same name, same id when ids are kept, and an event of the same correlation id naming
    that VM) and skips them, saying so.
"""
from __future__ import annotations

import logging
import random
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple

from ..engine import Engine, VmState
from ..errors import BackupError, EngineError
from ..host import CheckedOvf, ProviderHandle
from ..model import Restorable, RestoreRequest, VnicProfileMapping
from ..ovf.rewrite import Rewritten, rewrite_ovf
from ..progress import NO_PROGRESS, Progress
from ..terminal import to_json
from .arguments import CONFIRM_ABOVE, DEFAULT_PARALLEL
from .copies import RestoreOptions, copy_names, from_this_engine, target_cluster
from .existing import ExistingVms
from .mapping import TargetMapping
from .templates import TemplateCheck
from .truth import Expected, ExpectedNic, correlation_id, findings, is_ours

log = logging.getLogger(__name__)

__all__ = ["ALREADY", "CONFIRM_ABOVE", "DEFAULT_PARALLEL", "FAILED", "LOCKED", "RESTORED",
           "SKIPPED", "WARNED", "BatchReport", "CopyOutcome", "Job", "RestoreSettings",
           "outcome_lines", "plan_jobs", "restore_many", "transient_refusal"]


RESTORED, WARNED, ALREADY = "restored", "restored-with-warnings", "already-restored"
FAILED, SKIPPED, LOCKED = "failed", "skipped", "still-importing"
_OK = (RESTORED, ALREADY)

_REFUSALS = ("related operation is currently in progress", "is being imported",
             "name is already in use", "image is locked", "please try again later")


@dataclass(frozen=True)
class RestoreSettings:
    copies: int = 1
    pattern: Optional[str] = None
    cluster: Optional[str] = None          # the target cluster of every copy
    new_ids: bool = False
    options: RestoreOptions = RestoreOptions()
    mapping: TargetMapping = TargetMapping()
    nics_unplugged: Optional[bool] = None  # None: unplugged for copies into the source engine
    parallel: int = DEFAULT_PARALLEL
    wait_locked: float = 600.0             # seconds a 202 import is followed
    attempts: int = 6                      # tries of one import on transient refusals


@dataclass
class Job:
    """One copy to make."""

    index: int
    item: Restorable
    name: str
    new_ids: bool
    correlation_id: str
    cluster: str = ""                      # filled when its OVF has been read


@dataclass
class CopyOutcome:
    job: Job
    status: str
    vm_id: str = ""
    cluster: str = ""
    warnings: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    error: str = ""
    attempts: int = 0
    accepted: bool = False                 # the engine answered 202 and imported later

    @property
    def name(self) -> str:
        return self.job.name

    def to_dict(self) -> Dict[str, Any]:
        item = self.job.item
        return {"name": self.name, "status": self.status, "vm_id": self.vm_id or None,
                "cluster": self.cluster or None, "new_ids": self.job.new_ids,
                "source": {"vm_id": item.vm_id, "name": item.name, "kind": item.kind,
                           "provider": item.provider, "generation": item.generation},
                "correlation_id": self.job.correlation_id if not item.registers else None,
                "attempts": self.attempts, "accepted_202": self.accepted,
                "warnings": self.warnings, "notes": self.notes, "error": self.error or None}


@dataclass
class BatchReport:
    engine_url: str
    outcomes: List[CopyOutcome] = field(default_factory=list)

    def count(self, *statuses: str) -> int:
        return sum(1 for o in self.outcomes if o.status in statuses)

    @property
    def exit_code(self) -> int:
        """0: every copy restored cleanly (or already there); 1: some came back degraded or
        failed; 2: nothing was restored."""
        if not self.outcomes:
            return 0
        if all(o.status in _OK for o in self.outcomes):
            return 0
        if self.count(RESTORED, WARNED, ALREADY, LOCKED) == 0:
            return 2
        return 1

    def summary(self) -> str:
        restored = self.count(RESTORED, WARNED, LOCKED)
        failed = self.count(FAILED, SKIPPED)
        extra = []
        if self.count(WARNED, LOCKED):
            extra.append(f"{self.count(WARNED, LOCKED)} with warnings")
        if self.count(ALREADY):
            extra.append(f"{self.count(ALREADY)} already restored by an earlier run, skipped")
        return f"restored {restored}, failed {failed}" + (f" ({'; '.join(extra)})" if extra else "")

    def to_dict(self) -> Dict[str, Any]:
        return {"engine": self.engine_url, "exit_code": self.exit_code,
                "restored": self.count(RESTORED, WARNED, LOCKED),
                "with_warnings": self.count(WARNED, LOCKED),
                "already_restored": self.count(ALREADY), "failed": self.count(FAILED, SKIPPED),
                "vms": [o.to_dict() for o in self.outcomes]}

    def json(self) -> str:
        return to_json(self.to_dict())


def transient_refusal(e: EngineError) -> bool:
    """Whether a refused import may succeed when sent again (a lock, a busy proxy)."""
    if e.code == 409:
        text = str(e).lower()
        return any(marker in text for marker in _REFUSALS)
    return e.code in (502, 503, 504)


def _ambiguous(e: EngineError) -> bool:
    """An answer after which the import may have been done anyway."""
    return e.code is None or e.code >= 500


def plan_jobs(items: Sequence[Restorable], settings: RestoreSettings,
              engine_url: str) -> List[Job]:
    """Every copy to make, in the order of the plan (templates first). Raises
    :class:`BackupError` for a pattern that cannot name the copies (before anything is done)."""
    jobs: List[Job] = []
    for item in sorted(items, key=lambda i: i.kind != "template"):
        for copy in copy_names(item, settings.copies, settings.pattern, settings.new_ids):
            jobs.append(Job(len(jobs), item, copy.name, copy.new_ids, correlation_id(
                engine_url=engine_url, vm_id=item.vm_id, ovf_hash=item.ovf_hash,
                name=copy.name, new_ids=copy.new_ids)))
    return jobs


# --------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------
class _Workers:
    """One Engine per worker thread, closed at the end."""

    def __init__(self, settings: Any):
        self.settings = settings
        self.local = threading.local()
        self.engines: List[Engine] = []
        self.lock = threading.Lock()

    def engine(self) -> Engine:
        engine = getattr(self.local, "engine", None)
        if engine is None:
            engine = self.local.engine = Engine(self.settings)
            with self.lock:
                self.engines.append(engine)
        return engine

    def close(self) -> None:
        for engine in self.engines:
            engine.close()


@dataclass
class _Context:
    settings: RestoreSettings
    existing: ExistingVms
    baseline: int
    profiles: Dict[str, Tuple[str, str]]
    sleep: Callable[[float], None] = time.sleep
    retry_delay: float = 1.0


class _Printer:
    """Prints outcomes in the order of the plan as soon as all earlier ones are known."""

    def __init__(self, jobs: List[Job], echo: Callable[[str], None], item_notes: Dict[int, List[str]]):
        self.jobs, self.echo, self.item_notes = jobs, echo, item_notes
        self.outcomes: Dict[int, CopyOutcome] = {}
        self.next = 0
        self.headed: Set[int] = set()

    def add(self, outcome: CopyOutcome) -> None:
        self.outcomes[outcome.job.index] = outcome
        while self.next in self.outcomes:
            self._print(self.outcomes[self.next])
            self.next += 1

    def _print(self, o: CopyOutcome) -> None:
        item = o.job.item
        if id(item) not in self.headed:
            self.headed.add(id(item))
            self.echo(f"restoring {item.kind} {item.name} ({item.vm_id}) from {item.provider}, "
                      f"generation {item.generation}")
            for note in self.item_notes.get(id(item), ()):
                self.echo(f"  note: {note}")
        for line in outcome_lines(o):
            self.echo(line)


def outcome_lines(o: CopyOutcome) -> List[str]:
    where = f" in cluster {o.cluster}" if o.cluster else ""
    ids = " with new ids" if o.job.new_ids else ""
    if o.status == ALREADY:
        lines = [f"  already restored {o.name} (VM {o.vm_id}) by an earlier run of this "
                 "restore: skipped"]
    elif o.status in (RESTORED, WARNED, LOCKED):
        head = f"  restored {o.name} as VM {o.vm_id}{where}{ids}"
        if o.status == LOCKED:
            head += ", still image_locked: the engine is still importing it"
        elif o.status == WARNED:
            head += " with warnings"
        lines = [head]
        lines += [f"    warning: {w}" for w in o.warnings]
    elif o.status == SKIPPED:
        lines = [f"  SKIPPED {o.name}: {o.error}"]
    else:
        lines = [f"  FAILED {o.name}: {o.error}"]
    lines += [f"  note: {n}" for n in o.notes]
    return lines


def restore_many(items: Sequence[Restorable], handles: Dict[str, ProviderHandle],
                 engine: Engine, settings: RestoreSettings = RestoreSettings(), *,
                 echo: Callable[[str], None] = print,
                 sleep: Callable[[float], None] = time.sleep,
                 progress: Progress = NO_PROGRESS) -> BatchReport:
    """Restore ``items`` as ``settings`` says; every copy's outcome, in plan order;
    ``progress`` is told of each copy done."""
    jobs = plan_jobs(items, settings, engine.url)
    report = BatchReport(engine.url)
    if not jobs:
        return report
    task = progress.task("restore", total=len(jobs), unit="copy")
    echo = progress.wrap(echo)
    item_notes: Dict[int, List[str]] = {}
    printer = _Printer(jobs, echo, item_notes)
    sequential = [j for j in jobs if j.item.registers or j.item.kind == "template"]
    parallel = [j for j in jobs if j not in sequential]
    ctx = _Context(settings, ExistingVms(), 0, {}, sleep,
                   max(0.0, float(engine.settings.retry_delay)))
    if any(not j.item.registers for j in jobs):
        engine.prefetch("networks", "vnic_profiles")
        ctx.existing = ExistingVms.lookup(engine, [(None if j.new_ids else j.item.vm_id, j.name)
                                                   for j in jobs if not j.item.registers])
        ctx.baseline = engine.newest_event_index()
        networks = {n.id: n.name for n in engine.networks()}
        ctx.profiles = {p.id: (p.name, networks.get(p.network_id, "")) for p in engine.vnic_profiles()}
    reader = _OvfReader(handles, engine, settings, item_notes)
    templates = TemplateCheck(engine)
    outcomes: Dict[int, CopyOutcome] = {}

    def done(outcome: CopyOutcome) -> None:
        outcomes[outcome.job.index] = outcome
        task.advance()
        if outcome.status in (RESTORED, WARNED, ALREADY, LOCKED):
            templates.restored_ok(outcome.job.item)
        printer.add(outcome)

    for job in sequential:
        if job.item.registers:
            done(_register(job, handles, engine, settings, templates))
            continue
        prepared = reader.prepare(job)
        if isinstance(prepared, CopyOutcome):
            done(prepared)
            continue
        done(_import(job, prepared, engine, ctx))
    if parallel:
        workers = _Workers(engine.settings)
        limit = max(1, settings.parallel)
        pool = ThreadPoolExecutor(max_workers=limit, thread_name_prefix="restore")
        try:
            running: Dict[Future, Job] = {}
            for job in parallel:
                prepared = reader.prepare(job)
                if isinstance(prepared, CopyOutcome):
                    done(prepared)
                    continue
                while len(running) >= 2 * limit:
                    _collect(running, done)
                running[pool.submit(_in_worker, job, prepared, workers, ctx)] = job
            while running:
                _collect(running, done)
        except BaseException:       # Ctrl-C: the queued imports are not started (a rerun resumes)
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        finally:
            pool.shutdown(wait=True)
            workers.close()
    task.close()
    report.outcomes = [outcomes[j.index] for j in jobs]
    return report


def _in_worker(job: Job, prepared: "_Prepared", workers: _Workers, ctx: _Context) -> CopyOutcome:
    return _import(job, prepared, workers.engine(), ctx)


def _collect(running: Dict[Future, Job], done: Callable[[CopyOutcome], None]) -> None:
    finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
    for future in finished:
        job = running.pop(future)
        try:
            done(future.result())
        except Exception as e:            # a bug must not lose the other outcomes
            log.exception("restoring %s failed", job.name)
            done(CopyOutcome(job, FAILED, error=f"{type(e).__name__}: {e}"))


# --------------------------------------------------------------------------------------
# Preparing one copy: its checked OVF, mapped for the target
# --------------------------------------------------------------------------------------
@dataclass
class _Prepared:
    text: str
    cluster: str
    expected: Expected
    changes: Tuple[str, ...] = ()


class _OvfReader:
    """Reads and checks each item's OVF once (copies of an item follow each other)."""

    def __init__(self, handles: Dict[str, ProviderHandle], engine: Engine,
                 settings: RestoreSettings, item_notes: Dict[int, List[str]]):
        self.handles, self.engine, self.settings = handles, engine, settings
        self.item_notes = item_notes
        self._item: Optional[Restorable] = None
        self._checked: Optional[CheckedOvf] = None
        self._error = ""
        self._same_engine: Dict[str, bool] = {}

    def _read(self, item: Restorable) -> None:
        if self._item is item:
            return
        self._item, self._checked, self._error = item, None, ""
        handle = self.handles.get(item.provider)
        try:
            if handle is None:
                raise BackupError(f"provider {item.provider!r} is not enabled here")
            self._checked = handle.read_checked(item)
        except BackupError as e:
            self._error = f"{e}; nothing was sent to the engine"
            return
        disks = self._checked.identity.disks
        if disks and not item.registers:
            aliases = ", ".join(d.alias or d.id for d in disks)
            self.item_notes.setdefault(id(item), []).append(
                f"its OVF references {len(disks)} disk(s) ({aliases}); the engine re-attaches "
                "only disks that still exist on its storage, it never creates or copies disks")

    def same_engine(self, provider: str) -> bool:
        """Whether the provider's store was written for this engine (unknown: yes)."""
        if provider not in self._same_engine:
            self._same_engine[provider] = from_this_engine(self.handles.get(provider), self.engine)
        return self._same_engine[provider]

    def unplug(self, job: Job) -> bool:
        if self.settings.nics_unplugged is not None:
            return self.settings.nics_unplugged
        return job.new_ids and self.same_engine(job.item.provider)

    def prepare(self, job: Job) -> "_Prepared | CopyOutcome":
        self._read(job.item)
        if self._checked is None:
            return CopyOutcome(job, FAILED, error=f"not restored: {self._error}")
        checked = self._checked
        cluster = self.settings.cluster or self.settings.mapping.cluster(
            target_cluster(job.item, None, checked))
        job.cluster = cluster
        mapping = self.settings.mapping
        try:
            rewritten: Rewritten = rewrite_ovf(checked.text, networks=mapping.networks,
                                               profiles=mapping.profiles, cluster=cluster or None,
                                               unplug_nics=self.unplug(job))
        except BackupError as e:
            return CopyOutcome(job, FAILED, cluster=cluster,
                               error=f"not restored: its OVF cannot be mapped: {e}")
        expected = Expected(tuple(ExpectedNic(n.name, n.network, n.profile)
                                  for n in rewritten.nics), checked.identity.disks)
        return _Prepared(rewritten.text, cluster, expected, rewritten.changes)


# --------------------------------------------------------------------------------------
# One import (a worker's job)
# --------------------------------------------------------------------------------------
def _import(job: Job, prepared: _Prepared, engine: Engine, ctx: _Context) -> CopyOutcome:
    out = CopyOutcome(job, FAILED, cluster=prepared.cluster)
    if prepared.changes:
        out.notes.append("sent with " + "; ".join(prepared.changes))
    found = _ours_already(job, engine, ctx)
    if found is not None:
        out.status, out.vm_id = ALREADY, found
        return out
    state: Optional[VmState] = None
    delay = ctx.retry_delay
    refused: List[str] = []
    for attempt in range(1, ctx.settings.attempts + 1):
        out.attempts = attempt
        try:
            state = engine.add_vm(prepared.text, name=job.name, cluster=prepared.cluster or None,
                                  regenerate_ids=job.new_ids, correlation_id=job.correlation_id)
            break
        except EngineError as e:
            if _ambiguous(e):
                created = _created_meanwhile(job, engine, ctx)
                if created is not None:
                    state = created
                    out.notes.append(f"the engine answered {e.code or 'nothing'} but had "
                                     "created the VM")
                    break
            if not transient_refusal(e) and not (e.transient and e.code is None):
                out.error = str(e)
                return out
            if attempt == ctx.settings.attempts:
                out.error = (f"{e} (refused {attempt} times on a transient condition; "
                             "run the same restore again later)")
                return out
            refused.append("an engine lock" if e.code == 409 else
                           f"{e.code} from the engine" if e.code else "no answer")
            wait_s = min(delay, 30.0) * random.uniform(0.75, 1.25)
            log.info("import of %s refused (%s); retry %d in %.2fs", job.name, e, attempt, wait_s)
            ctx.sleep(wait_s)
            delay *= 2
    if state is None:                     # pragma: no cover - the loop returns or breaks
        out.error = "not restored"
        return out
    if refused:
        out.notes.append(f"refused {len(refused)} time(s) first ({', '.join(refused)}); retried")
    out.vm_id = state.id
    if state.locked:
        out.accepted = True
        state = _follow(state, engine, ctx)
        if state is None:
            out.status = FAILED
            out.error = (f"the engine accepted the import (202) but VM {out.vm_id} is gone: "
                         f"the import failed; see the engine's events of correlation id "
                         f"{job.correlation_id}")
            _add_event_words(out, engine, job, ctx)
            return out
        if state.locked:
            out.status = LOCKED
            out.warnings.append(f"still image_locked {ctx.settings.wait_locked:g} s after the "
                                "engine accepted it (202); its final state is not known yet")
            return out
        out.notes.append(f"the engine answered 202 and finished the import later "
                         f"(now {state.status})")
    return _truth(out, job, prepared, engine, ctx)


def _truth(out: CopyOutcome, job: Job, prepared: _Prepared, engine: Engine,
           ctx: _Context) -> CopyOutcome:
    try:
        state = engine.vm_state(out.vm_id, follow=True)
        events = engine.events_of(job.correlation_id, after=ctx.baseline)
    except EngineError as e:
        out.status = WARNED
        out.warnings.append(f"created, but what the engine did could not be checked: {e}")
        return out
    if state is None:
        out.status = FAILED
        out.error = f"the engine answered the import with VM {out.vm_id}, which is gone now"
        return out
    found = findings(state, prepared.expected, events, cluster=prepared.cluster,
                     profiles=ctx.profiles, correlation=job.correlation_id)
    out.warnings += found.warnings
    out.notes += found.notes
    out.status = WARNED if out.warnings else RESTORED
    return out


def _add_event_words(out: CopyOutcome, engine: Engine, job: Job, ctx: _Context) -> None:
    try:
        events = engine.events_of(job.correlation_id, after=ctx.baseline)
    except EngineError:
        return
    for e in sorted(events, key=lambda e: e.index):
        out.notes.append(f"engine event {e.code}: {e.description}")


def _follow(state: VmState, engine: Engine, ctx: _Context) -> Optional[VmState]:
    """Poll ``GET /vms/{id}`` while the VM is image_locked, at most ``wait_locked`` s. An
    engine error on the way (a 503 while it restarts) is waited out like the lock: the VM
    exists, so its last known state is what the report says when the wait ends."""
    deadline = time.monotonic() + ctx.settings.wait_locked
    interval = max(0.05, ctx.retry_delay)
    current: Optional[VmState] = state
    while current is not None and current.locked and time.monotonic() < deadline:
        ctx.sleep(min(interval, max(0.0, deadline - time.monotonic())))
        interval = min(interval * 2, 10.0)
        try:
            current = engine.vm_state(state.id)
        except EngineError as e:
            log.warning("VM %s: its state could not be read while it was imported: %s",
                        state.id, e)
    return current


def _ours_already(job: Job, engine: Engine, ctx: _Context) -> Optional[str]:
    """The id of a VM an earlier attempt of this restore created for ``job``, or None."""
    candidates = [ref for ref in ctx.existing.named(job.name)
                  if job.new_ids or ref.id == job.item.vm_id]
    if not candidates:
        return None
    try:
        events = engine.events_of(job.correlation_id)
    except EngineError as e:
        log.warning("cannot read the events of %s: %s", job.correlation_id, e)
        return None
    for ref in candidates:
        if is_ours(events, ref.id):
            return ref.id
    return None


def _created_meanwhile(job: Job, engine: Engine, ctx: _Context) -> Optional[VmState]:
    """After an ambiguous answer: the VM this import created, if it did."""
    try:
        refs = [r for r in engine.find_vms((), (job.name,))
                if job.new_ids or r.id == job.item.vm_id]
        if not refs:
            return None
        events = engine.events_of(job.correlation_id, after=ctx.baseline)
        for ref in refs:
            if is_ours(events, ref.id):
                return engine.vm_state(ref.id)
    except EngineError as e:
        log.info("cannot tell whether %s was created: %s", job.name, e)
    return None


# --------------------------------------------------------------------------------------
# What a provider restores itself (msd registers)
# --------------------------------------------------------------------------------------
def _register(job: Job, handles: Dict[str, ProviderHandle], engine: Engine,
              settings: RestoreSettings, templates: TemplateCheck) -> CopyOutcome:
    item = job.item
    handle = handles.get(item.provider)
    cluster = settings.cluster or (settings.mapping.cluster(item.cluster) if item.cluster else "")
    out = CopyOutcome(job, FAILED, cluster=cluster)
    try:
        if handle is None:
            raise BackupError(f"provider {item.provider!r} is not enabled here")
        missing = templates.missing(item)
        if missing:
            out.status, out.error = SKIPPED, missing
            return out
        options = settings.options
        mappings = tuple(options.vnic_profile_mappings) + _profile_mappings(settings.mapping, engine)
        request = RestoreRequest(item=item, name=job.name, cluster=cluster or None,
                                 regenerate_ids=job.new_ids,
                                 allow_partial_import=options.allow_partial_import,
                                 reassign_bad_macs=options.reassign_bad_macs,
                                 vnic_profile_mappings=mappings,
                                 cluster_mappings=settings.mapping.cluster_mappings())
        result = handle.restore_vm(request, engine)
    except BackupError as e:
        out.error = str(e)
        return out
    out.status, out.vm_id = RESTORED, result.vm_id
    out.notes += list(result.notes)
    return out


def _profile_mappings(mapping: TargetMapping, engine: Engine) -> Tuple[VnicProfileMapping, ...]:
    """``--map-vnic-profile`` / ``--map-network`` as register mappings: the source's
    ``network/profile`` to the target profile's id (a network mapping maps the network's
    default profile, named like it)."""
    if not mapping.profiles and not mapping.networks:
        return ()
    networks = {n.id: n.name for n in engine.networks()}
    ids: Dict[Tuple[str, str], str] = {}
    for p in engine.vnic_profiles():
        ids.setdefault((networks.get(p.network_id, ""), p.name), p.id)
        ids.setdefault(("", p.name), p.id)
    pairs = list(mapping.profiles.items()) + [((a, a), (b, b)) for a, b in mapping.networks.items()]
    out = []
    for (src_net, src_prof), (dst_net, dst_prof) in pairs:
        target = ids.get((dst_net, dst_prof))
        if target is None:
            raise BackupError(f"no vNIC profile {dst_net + '/' if dst_net else ''}{dst_prof} on "
                              "the engine to map to")
        if not src_net:
            raise BackupError(f"registering needs the source network of vNIC profile {src_prof} "
                              "(use NETWORK/PROFILE)")
        out.append(VnicProfileMapping(f"{src_net}/{src_prof}", target))
    return tuple(out)

