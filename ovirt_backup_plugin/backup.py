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
from typing import Callable, Dict, List, Optional

from .engine import Engine
from .errors import BackupError
from .host import ProviderHandle, as_messages
from .model import BackupOutcome, Run, VmBackup, utcnow
from .capture import Captured, captured
from .stores import ensure_owned

log = logging.getLogger(__name__)

EXIT_OK, EXIT_PARTIAL, EXIT_FAILED = 0, 1, 2


@dataclass
class ProviderReport:
    name: str
    ok: bool = True
    reason: str = ""
    written: int = 0
    new_blobs: int = 0
    messages: List[str] = field(default_factory=list)


@dataclass
class BackupReport:
    run: Run
    vms_seen: int = 0
    vms_backed_up: int = 0
    skipped: List[str] = field(default_factory=list)      # "name (id): reason"
    providers: Dict[str, ProviderReport] = field(default_factory=dict)
    error: str = ""                                       # the run as a whole failed
    stopped: bool = False                                 # abandoned: should_stop() said so

    @property
    def exit_code(self) -> int:
        if self.error or (self.providers and not any(p.ok for p in self.providers.values())):
            return EXIT_FAILED
        if self.skipped or not all(p.ok for p in self.providers.values()):
            return EXIT_PARTIAL
        return EXIT_OK

    def summary(self) -> str:
        status = {EXIT_OK: "ok", EXIT_PARTIAL: "partial", EXIT_FAILED: "failed"}[self.exit_code]
        status = "stopped by signal, abandoned" if self.stopped else status
        parts = [f"run {self.run.id}: {status}", f"{self.vms_backed_up}/{self.vms_seen} VMs"]
        for p in self.providers.values():
            parts.append(f"{p.name} {'ok' if p.ok else 'FAILED'} ({p.written} written, "
                         f"{p.new_blobs} new)")
        if self.skipped:
            parts.append(f"{len(self.skipped)} skipped")
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


def run_backup(engine: Engine, handles: List[ProviderHandle], *, system: str,
               datacenter: Optional[str] = None,
               echo: Callable[[str], None] = lambda s: None,
               should_stop: Optional[Callable[[], bool]] = None,
               workers: Optional[int] = None) -> BackupReport:
    """``should_stop`` is asked after each VM; when true the run is abandoned like a
    failed one (no provider keeps it) and the report is marked ``stopped``. ``workers``:
    processes that read pages and parse OVFs (None: one per core; 0: none)."""
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

    active: List[ProviderHandle] = []
    for h in handles:
        rep = report.providers[h.name] = ProviderReport(h.name)
        try:
            if run.engine is not None:
                rep.messages += ensure_owned(h, run.engine)
            rep.messages += as_messages(h.call("before_backup", run=run, engine=engine))
            active.append(h)
        except BackupError as e:
            _fail(rep, str(e), echo)
        for m in rep.messages:
            echo(f"  {h.name}: {m}")

    writers = [h for h in active if h.implements("write_ovf")]
    try:
        if writers:
            for vm, capture in _until_stopped(captured(engine, scope, workers=workers),
                                              should_stop, report, echo):
                report.vms_seen += 1
                backup = _backup_of(vm, capture, report, echo)
                if backup is None:
                    continue
                wrote = False
                for h in writers:
                    rep = report.providers[h.name]
                    if not rep.ok or (h.settings.datacenter and
                                      h.settings.datacenter != backup.datacenter):
                        continue
                    try:
                        new = h.call("write_ovf", run=run, vm=backup)
                        rep.written += 1
                        rep.new_blobs += 1 if new else 0
                        wrote = True
                    except BackupError as e:
                        _fail(rep, f"while writing VM {vm.name}: {e}", echo)
                report.vms_backed_up += 1 if wrote else 0
    except BackupError as e:
        report.error = str(e)
        echo(f"  run failed: {e}")

    for h in active:
        rep = report.providers[h.name]
        outcome = BackupOutcome(ok=rep.ok and not report.error, written=rep.written,
                                new_blobs=rep.new_blobs, reason=rep.reason or report.error)
        try:
            for m in as_messages(h.call("after_backup", run=run, engine=engine, outcome=outcome)):
                rep.messages.append(m)
                echo(f"  {h.name}: {m}")
        except BackupError as e:
            _fail(rep, f"while finishing the run: {e}", echo)
        if report.error:
            rep.ok = False
            rep.reason = rep.reason or "run abandoned: " + report.error
    echo(report.summary())
    log.info("%s", report.summary())
    return report


def _until_stopped(vms, should_stop, report: BackupReport, echo):
    """``vms``, until ``should_stop()`` is true after a VM: nothing more is written, and
    the pages being read ahead are abandoned."""
    for vm in vms:
        yield vm
        if should_stop is not None and should_stop():
            report.stopped, report.error = True, "stopped by signal"
            echo("  stopped by signal: the run is abandoned, previous generations are kept")
            vms.close()
            return


def _backup_of(vm, capture: Captured, report: BackupReport, echo) -> Optional[VmBackup]:
    identity, digest, packed, error = capture
    if identity is None:
        report.skipped.append(f"{vm.name} ({vm.id}): {error}")
        echo(f"  skipped VM {vm.name} ({vm.id}): {error}; its previous backup is kept")
        return None
    return VmBackup(identity=identity, ovf=vm.ovf, ovf_hash=digest, datacenter=vm.datacenter,
                    ovf_zlib=packed)


def _fail(rep: ProviderReport, reason: str, echo) -> None:
    rep.ok = False
    rep.reason = rep.reason or reason
    echo(f"  provider {rep.name} failed: {reason}")
    log.info("provider %s failed: %s", rep.name, reason)   # echo shows it; the runner logs it
