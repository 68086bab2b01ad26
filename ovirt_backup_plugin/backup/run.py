"""One backup run: read every VM's OVF from the engine once, hand it to every provider.

The run streams: the engine is read page by page (by worker processes, see
:mod:`.capture`) and each page's VMs are written to the providers while the next pages are
read, with a bounded number of pages in flight, so memory stays flat however many VMs the
engine has.

Failure policy (the host's, not the providers'):
- a VM whose OVF the engine withholds or that does not parse is reported and skipped; its
  previous backups stay the newest ones;
- a provider that fails (after retries) is dropped for the rest of the run and its
  generation is abandoned; the other providers carry on; the next run catches it up,
  because every run hands every VM to every provider;
- an engine that fails mid-run abandons the run everywhere: no half generation is kept.
"""
from __future__ import annotations

import dataclasses
import logging
import secrets
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterator, List, Optional

from ..engine import Engine, EngineVm, ReadStats
from ..errors import EXIT_FAILED, EXIT_OK, EXIT_PARTIAL, BackupError
from ..host import ProviderHandle
from ..model import FLAG_ID_MISMATCH, MODE_INCREMENTAL, BackupOutcome, Run, VmBackup, utcnow
from ..ovf import seal
from ..progress import NO_PROGRESS, NO_TASK, Progress
from ..stores.ownership import ensure_owned
from .capture import Captured, CapturedVm
from .incremental import Capture, carry_unchanged, keep_unread, sweep

log = logging.getLogger(__name__)



@dataclass
class ProviderReport:
    name: str
    ok: bool = True
    reason: str = ""
    written: int = 0
    new_blobs: int = 0
    bytes_written: int = 0                 # bytes of the new blobs it stored
    messages: List[str] = field(default_factory=list)
    partial: bool = False                  # failed after doing part of its work
    carried: int = 0                      # of the written: unchanged, recorded by reference


@dataclass(frozen=True)
class SkippedVm:
    """A VM the engine listed that the run could not back up."""

    vm_id: str
    name: str
    reason: str


@dataclass
class BackupReport:
    run: Run
    vms_seen: int = 0
    vms_backed_up: int = 0
    skipped: List[str] = field(default_factory=list)      # "name (id): reason"
    skipped_vms: List[SkippedVm] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)     # stored, but worth a look
    removed: List[str] = field(default_factory=list)      # "name (id)": gone during the run
    notes: List[str] = field(default_factory=list)        # worth knowing, nothing wrong
    providers: Dict[str, ProviderReport] = field(default_factory=dict)
    error: str = ""                                       # the run as a whole failed
    stopped: bool = False                                 # abandoned: should_stop() said so

    @property
    def exit_code(self) -> int:
        if self.error or (self.providers and not any(p.ok or p.partial
                                                     for p in self.providers.values())):
            return EXIT_FAILED
        if self.skipped or self.warnings or not all(p.ok for p in self.providers.values()):
            return EXIT_PARTIAL
        return EXIT_OK

    def summary(self) -> str:
        status = {EXIT_OK: "ok", EXIT_PARTIAL: "partial", EXIT_FAILED: "failed"}[self.exit_code]
        status = "stopped by signal, abandoned" if self.stopped else status
        parts = [f"run {self.run.id}: {status}", f"{self.vms_backed_up}/{self.vms_seen} VMs"]
        for p in self.providers.values():
            state = "ok" if p.ok else "PARTIAL" if p.partial else "FAILED"
            parts.append(f"{p.name} {state} ({p.written} written, "
                         f"{p.new_blobs} new)")
        if self.skipped:
            parts.append(f"{len(self.skipped)} skipped")
        if self.warnings:
            parts.append(f"{len(self.warnings)} warning(s)")
        if self.removed:
            parts.append(f"{len(self.removed)} removed during the run")
        mode = "incremental" if self.run.mode == MODE_INCREMENTAL else "full sweep"
        parts.append(f"{mode}: {self.run.reason}" if self.run.reason else mode)
        return "; ".join(parts)


def new_run(system: str, engine_url: str, datacenter: Optional[str]) -> Run:
    started = utcnow()
    run_id = started.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(4)
    return Run(id=run_id, started_at=started, system=system, engine_url=engine_url,
               datacenter=datacenter)


def fetch_scope(handles: List[ProviderHandle], datacenter: Optional[str]) -> Optional[str]:
    """The data center to read from the engine: the asked one, or the one every provider
    is scoped to, or None (all) when scopes differ."""
    if datacenter:
        return datacenter
    scopes = {h.settings.datacenter for h in handles}
    return scopes.pop() if len(scopes) == 1 else None


def backup_of(vm: EngineVm, capture: Captured) -> VmBackup:
    """What providers store for one captured VM: keyed by the engine's VM id, with the
    data center and cluster the engine reported (the OVF's cluster when it named none)."""
    identity = capture.identity
    if identity is None:
        raise ValueError("backup_of needs a captured OVF")
    flags = tuple(identity.flags)
    if identity.id.lower() != vm.id.lower():
        flags += (FLAG_ID_MISMATCH,)
    return VmBackup(vm_id=vm.id, name=vm.name or identity.name, kind=identity.kind,
                    datacenter=vm.datacenter, cluster=vm.cluster or identity.cluster,
                    ovf_hash=capture.digest, blob=seal(capture.packed), ovf=vm.ovf or "",
                    identity=identity, flags=flags)


@dataclass
class _Open:
    """A provider taking part in the run, and the state its before_backup returned."""

    handle: ProviderHandle
    state: object
    report: ProviderReport


#: Decides how a run captures (backup.incremental.plan_capture): given the engine, the
#: providers and the run's scope, what to read and what to record by reference.
Planner = Callable[[Engine, List[ProviderHandle], Optional[str]], Capture]


def run_backup(engine: Engine, handles: List[ProviderHandle], *, system: str,
               datacenter: Optional[str] = None,
               echo: Callable[[str], None] = lambda s: None,
               should_stop: Optional[Callable[[], bool]] = None,
               workers: Optional[int] = None,
               progress: Progress = NO_PROGRESS,
               planner: Optional[Planner] = None) -> BackupReport:
    """``should_stop`` is asked after each VM; when true the run is abandoned like a
    failed one (no provider keeps it) and the report is marked ``stopped``. ``workers``:
    processes that read pages and parse OVFs (None: one per core; 0: none). ``progress``
    is told of each VM read (see :mod:`..progress`; default: nothing shown). ``planner``
    decides between a sweep and an incremental run (none: a sweep that records no event
    cursor, as before incremental capture)."""
    scope = fetch_scope(handles, datacenter)
    run = new_run(system, engine.url, scope)
    report = BackupReport(run=run)
    echo(f"backup run {run.id} of {system} ({'data center ' + scope if scope else 'all data centers'})")
    if any(h.implements("describe_store") for h in handles):
        try:
            run = report.run = dataclasses.replace(run, engine=engine.identity(system))
        except BackupError as e:
            handles, report.error = [], str(e)
            echo(f"  run failed: {e}")

    capture = sweep(engine, scope, workers=workers)
    if planner is not None and handles and any(h.implements("write_ovf") for h in handles):
        try:
            capture = planner(engine, handles, scope)
        except BackupError as e:
            handles, report.error = [], str(e)
            echo(f"  run failed: {e}")
        run = report.run = capture.stamp(run)
        echo(f"  {capture.describe()}")

    opened: List[_Open] = []
    for h in handles:
        rep = report.providers[h.name] = ProviderReport(h.name)
        note = _noter(rep, echo)
        try:
            h.check_sealing(engine, note)       # a missing or wrong key: nothing is written
            if run.engine is not None:
                ensure_owned(h, run.engine, note)
            opened.append(_Open(h, h.before_backup(run, engine, note), rep))
        except BackupError as e:
            _fail(rep, str(e), echo)

    writers = [o for o in opened if o.handle.implements("write_ovf")]

    def fail(o: _Open, reason: str) -> None:
        _fail(o.report, reason, echo)

    total = capture.to_read if capture.incremental else _vm_total(engine, scope, progress,
                                                                   capture)
    task = progress.task("backup", total=total, unit="VM") if writers else NO_TASK
    echo = progress.wrap(echo)           # lines printed meanwhile do not tear the bar
    try:
        if writers:
            carried = carry_unchanged(capture, run, writers, backup_of, fail, echo)
            report.vms_seen += carried
            report.vms_backed_up += carried
            for vm, got in _until_stopped(capture.vms(), should_stop, report, echo):
                report.vms_seen += 1
                task.advance()
                if not got.ok:
                    report.skipped.append(f"{vm.name} ({vm.id}): {got.error}")
                    report.skipped_vms.append(SkippedVm(vm.id, vm.name, got.error))
                    echo(f"  skipped VM {vm.name} ({vm.id}): {got.error}; its previous "
                         "backup is kept")
                    capture.unread.append(vm)
                    continue
                backup = backup_of(vm, got)
                if FLAG_ID_MISMATCH in backup.flags:
                    assert backup.identity is not None
                    warning = (f"VM {vm.name} ({vm.id}): its OVF carries another id "
                               f"({backup.identity.id}); stored under the engine's id, "
                               "marked; a restore gives it new ids")
                    report.warnings.append(warning)
                    echo(f"  warning: {warning}")
                if _write(writers, run, backup, echo):
                    report.vms_backed_up += 1
            if not report.stopped:
                _read_notes(capture.stats, report, echo)
                keep_unread(capture, run, writers, backup_of, fail, echo)
    except BackupError as e:
        report.error = str(e)
        echo(f"  run failed: {e}")
    finally:
        task.close()

    for o in opened:
        rep = o.report
        outcome = BackupOutcome(ok=rep.ok and not report.error, written=rep.written,
                                new_blobs=rep.new_blobs, reason=rep.reason or report.error,
                                carried=rep.carried)
        try:
            o.handle.after_backup(run, o.state, engine, outcome, _noter(rep, echo))
        except BackupError as e:
            _fail(rep, f"while finishing the run: {e}", echo)
            rep.partial = bool(getattr(e, "partial", False)) and not report.error
        if report.error:
            rep.ok = False
            rep.reason = rep.reason or "run abandoned: " + report.error
    echo(report.summary())
    log.info("%s", report.summary())
    return report


def _read_notes(stats: ReadStats, report: BackupReport, echo: Callable[[str], None]) -> None:
    """What the read found besides the VMs: VMs that moved between pages (read again by
    id) and VMs removed from the engine while the run read it."""
    for vm_id, name in stats.removed:
        report.removed.append(f"{name} ({vm_id})")
        echo(f"  VM {name} ({vm_id}) was removed from the engine while the run read it: it "
             "is not in this run; its previous backups are kept")
    if stats.moved:
        names = ", ".join(name for _, name in stats.moved[:10])
        more = f" and {len(stats.moved) - 10} more" if len(stats.moved) > 10 else ""
        note = (f"{len(stats.moved)} VM(s) were not in the pages (VMs were added or removed "
                f"while the pages were read, or a page failed) and were read by id: "
                f"{names}{more}")
        report.notes.append(note)
        echo(f"  {note}")


def _write(writers: List[_Open], run: Run, backup: VmBackup,
           echo: Callable[[str], None]) -> bool:
    """Hand one VM to every provider that is still ok and covers its data center."""
    wrote = False
    for o in writers:
        rep, scope = o.report, o.handle.settings.datacenter
        if not rep.ok or (scope and scope != backup.datacenter):
            continue
        try:
            new = o.handle.write_ovf(run, o.state, backup)
            rep.written += 1
            rep.new_blobs += 1 if new else 0
            rep.bytes_written += len(backup.blob) if new else 0
            wrote = True
        except BackupError as e:
            _fail(rep, f"while writing VM {backup.name}: {e}", echo)
    return wrote


def _vm_total(engine: Engine, scope: Optional[str], progress: Progress,
              capture: Capture) -> Optional[int]:
    """How many VMs a sweep will read, when progress is shown and the engine tells it
    cheaply: its summary counts every VM (not per data center), so a scoped run shows
    done and rate without a total. The plan's reading of the summary is used when it
    made one."""
    if not progress.active or scope is not None:
        return None
    if capture.status is not None:
        return capture.status.vms
    return engine.vm_count()


def _noter(rep: ProviderReport, echo: Callable[[str], None]) -> Callable[[str], None]:
    def note(text: str) -> None:
        rep.messages.append(text)
        echo(f"  {rep.name}: {text}")
    return note


def _until_stopped(vms: Iterator[CapturedVm], should_stop: Optional[Callable[[], bool]],
                   report: BackupReport, echo: Callable[[str], None]) -> Iterator[CapturedVm]:
    """``vms``, until ``should_stop()`` is true after a VM: nothing more is written, and
    the pages being read ahead are abandoned."""
    for vm in vms:
        yield vm
        if should_stop is not None and should_stop():
            report.stopped, report.error = True, "stopped by signal"
            echo("  stopped by signal: the run is abandoned, previous generations are kept")
            close = getattr(vms, "close", None)
            if close is not None:
                close()
            return


def _fail(rep: ProviderReport, reason: str, echo: Callable[[str], None]) -> None:
    rep.ok = False
    rep.reason = rep.reason or reason
    echo(f"  provider {rep.name} failed: {reason}")
    log.info("provider %s failed: %s", rep.name, reason)   # echo shows it; the runner logs it
