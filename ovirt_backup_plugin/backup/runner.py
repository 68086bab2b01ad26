"""The runner: ``ovirt-backup run``, backups in the foreground at a fixed interval.

``ovirt-backup run --every 15m`` backs up at once, then every interval, until SIGTERM or
SIGINT; ``ovirt-backup run --once`` is one run (for a systemd timer or cron).

Interval
    ``30s``, ``15m``, ``2h``, ``1d``, combinations (``1h30m``) or plain seconds (``90``).
    Anything from one second is accepted (tests use ``1s``); below one minute a warning
    says so, because every run reads every VM's OVF from the engine. Runs never overlap:
    the next run starts one interval after the previous one *started*, or at once when
    the previous one took longer than the interval (missed ticks are not made up).

Signals (SIGTERM, SIGINT)
    Between runs: the runner exits at once. During a run: the run stops at the next VM
    boundary and is abandoned (every provider is told the run failed, so no half
    generation is kept; previous generations are untouched), then the runner exits. A
    second signal interrupts at once (exit 130). A stopped run posts no engine event.

Exit code
    The worst exit code of the runs that finished (0 ok, 1 partial, 2 failed); a run
    abandoned because of a signal does not count. Settings errors, or another runner of
    the same system, exit 2 at once.

Locking
    Every run (``backup`` too) holds ``<state_dir>/<system>.lock`` (see :mod:`.lock`);
    ``run --every`` also holds ``<system>@runner.lock`` for its whole life, so a second
    runner of the same system refuses to start. When a run is due and another backup
    holds the lock: the first run fails (exit 2) like ``backup`` does, a later run is
    skipped with a warning; with ``--wait`` the run waits for the lock (``--wait-timeout``,
    default 1h; a run that times out counts as failed).

Audit events
    ``[backup] events = yes`` posts one event per finished run to the engine's audit log
    (Events tab; ``POST /events``, origin ``ovirt-backup``): the run's summary, severity
    normal/warning/error for ok/partial/failed. It carries no URL, user, password, token
    or provider error text. A failure to post is a warning and never changes the exit code.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import logging
import signal
import socket
import threading
import time
from typing import Callable, List, Optional

from ..engine import Engine
from ..errors import BackupError, ConfigError
from ..host import Config, Session
from ..progress import NO_PROGRESS, Progress
from . import health
from .arguments import DEFAULT_WAIT_TIMEOUT
from .incremental import CaptureSettings, plan_capture
from .lock import LockBusy, LockStopped, RunLock, format_seconds
from .metrics import metrics_path, write_metrics
from .run import EXIT_FAILED, EXIT_OK, EXIT_PARTIAL, BackupReport, run_backup

log = logging.getLogger(__name__)

SHORT_INTERVAL = 60.0                      # below this the runner warns
EVENT_MAX = 800                            # characters of an event description
SEVERITY = {EXIT_OK: "normal", EXIT_PARTIAL: "warning", EXIT_FAILED: "error"}


# -- audit events ------------------------------------------------------------------------
def events_enabled(config: Config) -> bool:
    value = str(config.backup_options.get("events", "no")).strip().lower()
    if value in ("1", "yes", "true", "on"):
        return True
    if value in ("", "0", "no", "false", "off"):
        return False
    raise ConfigError(f"[backup] events = {value!r}: use yes or no")


def event_description(system: str, report: BackupReport) -> str:
    """What the engine's Events tab shows: the summary, nothing secret, no ``$``
    (the engine would read ``${...}`` as one of its own variables)."""
    text = (f"ovirt-backup of {system}: {report.summary()}. Details in the ovirt-backup "
            f"log on {socket.gethostname()}.")
    text = text.replace("$", "")
    return text if len(text) <= EVENT_MAX else text[:EVENT_MAX - 3] + "..."


def post_event(engine: Engine, config: Config, report: BackupReport) -> bool:
    """Post the run's summary to the engine's audit log; a failure is only a warning."""
    severity = SEVERITY[report.exit_code]
    if engine.down:
        log.warning("not posting the run's event: the engine is not answering")
        return False
    try:
        engine.add_event(event_description(config.system, report), severity=severity)
    except Exception as e:     # never let the audit trail change the run's result
        log.warning("could not post the run's event to the engine: %s", e)
        return False
    log.info("posted the run's event to the engine (severity %s)", severity)
    return True


# -- one guarded run -----------------------------------------------------------------------
def guarded_backup(session: Session, *, datacenter: Optional[str] = None, wait: bool = False,
                   wait_timeout: float = DEFAULT_WAIT_TIMEOUT,
                   echo: Callable[[str], None] = lambda s: None,
                   stop: Optional[threading.Event] = None,
                   should_stop: Optional[Callable[[], bool]] = None,
                   on_report: Optional[Callable[[BackupReport], None]] = None,
                   progress: Progress = NO_PROGRESS,
                   full: bool = False) -> BackupReport:
    """One backup run under the system's lock, then ``on_report(report)``, then its
    audit event (if enabled), the system's state file, alerts and metrics file (see
    :mod:`.health`, :mod:`.metrics`); none of these for a run stopped by a signal. The
    run is incremental when ``[backup] mode = auto`` and it is safe
    (:mod:`.incremental`); ``full`` forces a sweep.

    Raises
    :class:`LockBusy` when another backup runs (and ``wait`` is false or timed out),
    :class:`LockStopped` when ``stop`` is set while waiting.
    """
    config: Config = session.config
    send_event = events_enabled(config)
    health.alerts_enabled(config), health.alert_after_skips(config)   # bad settings: now
    metrics_path(config)
    settings = CaptureSettings(mode=config.mode, full_every=config.full_every,
                               force_full=full, workers=config.workers)
    lock = RunLock(config.state_dir, config.system)
    lock.acquire(wait=wait, timeout=wait_timeout, stop=stop,
                 on_wait=lambda m: log.warning("%s", m))
    started = time.monotonic()
    try:
        # under the lock: the state file as the last run left it
        settings = dataclasses.replace(settings, retry=health.skipped_ids(config))
        report = run_backup(session.engine, session.handles, system=config.system,
                            datacenter=datacenter, echo=echo, should_stop=should_stop,
                            workers=config.workers, progress=progress,
                            planner=lambda engine, handles, scope: plan_capture(
                                engine, handles, scope, settings, echo))
        duration = time.monotonic() - started
        if not report.stopped:         # under the lock: one writer of the state file
            state = health.after_run(session.engine, config, report, duration=duration)
            if state is not None:
                write_metrics(config, report, state, duration)
    finally:
        lock.release()
    if on_report is not None:
        on_report(report)
    if send_event and not report.stopped:
        post_event(session.engine, config, report)
    return report


# -- signals -------------------------------------------------------------------------------
class Stopper:
    """SIGTERM/SIGINT as the runner and ``backup`` take them: the first one asks the run to
    stop at the next VM (``should_stop``; ``stop`` is set for waits), a second one interrupts
    at once (``KeyboardInterrupt``: exit 130)."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.signal: Optional[int] = None

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signal).name if self.signal else "request"

    def on_signal(self, signum: int, frame: object = None) -> None:
        if self.signal is not None:
            raise KeyboardInterrupt            # a second signal: stop now
        self.signal = signum
        # Event.set() takes the Event's lock, which this (main) thread may hold inside
        # Event.wait() right now; setting it from another thread cannot deadlock.
        threading.Thread(target=self.stop.set, name="runner-stop", daemon=True).start()

    def should_stop(self) -> bool:
        return self.signal is not None or self.stop.is_set()

    def install_signals(self) -> dict:
        """Take SIGTERM and SIGINT (main thread only); the previous handlers, to restore."""
        if threading.current_thread() is not threading.main_thread():
            return {}
        return {sig: signal.signal(sig, self.on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}

    @staticmethod
    def restore_signals(previous: dict) -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# -- the runner ----------------------------------------------------------------------------
class Runner(Stopper):
    """Runs backups now and then every ``every`` seconds (or once) until stopped."""

    def __init__(self, config: Config, open_session: Callable[[], Session], *,
                 every: Optional[float] = None, datacenter: Optional[str] = None,
                 wait: bool = False, wait_timeout: float = DEFAULT_WAIT_TIMEOUT,
                 max_runs: Optional[int] = None, echo: Callable[[str], None] = lambda s: None):
        self.config = config
        self.max_runs = max_runs
        self.open_session = open_session
        self.every = every
        self.datacenter = datacenter
        self.wait = wait
        self.wait_timeout = wait_timeout
        self.echo = echo
        Stopper.__init__(self)
        self.codes: List[int] = []
        self.runs = 0

    @property
    def once(self) -> bool:
        return self.every is None

    # -- the loop ------------------------------------------------------------------------
    def run(self) -> int:
        events_enabled(self.config)            # a bad setting fails before the first run
        _ = (self.config.mode, self.config.full_every)   # so do these
        every = self.every or 0.0
        if not self.once and every < SHORT_INTERVAL:
            log.warning("runs every %s: an interval under 1m is meant for tests (a sweep "
                        "reads every VM's OVF)", format_seconds(every))
        runner_lock = None
        if not self.once:
            runner_lock = RunLock(self.config.state_dir, self.config.system, kind="runner")
            runner_lock.acquire()              # LockBusy: another runner; exit 2
        try:
            due = time.monotonic()
            while not (self.stop.wait(max(0.0, due - time.monotonic()))
                       or self.should_stop()):
                started = time.monotonic()
                self._one_run()
                if self.once or self.should_stop() or (self.max_runs and
                                                       self.runs >= self.max_runs):
                    break
                due = started + every
                if due <= time.monotonic():
                    log.warning("run %d took longer than the interval (%s); the next one "
                                "starts now", self.runs, format_seconds(every))
                    due = time.monotonic()
                else:
                    at = dt.datetime.now().astimezone() + dt.timedelta(
                        seconds=due - time.monotonic())
                    log.info("next run at %s", at.strftime("%Y-%m-%d %H:%M:%S %Z"))
        finally:
            if runner_lock is not None:
                runner_lock.release()
        worst = max(self.codes, default=EXIT_OK)
        if self.should_stop():
            message = (f"stopped by {self.signal_name} after {self.runs} run(s) "
                       f"({len(self.codes)} finished); exit code {worst}")
            self.echo(message)
            log.info("%s", message)
        return worst

    def _one_run(self) -> None:
        self.runs += 1
        n, system = self.runs, self.config.system
        started = time.monotonic()
        session = None

        def finished(report: BackupReport) -> None:
            self._log_report(n, report, time.monotonic() - started)

        try:
            session = self.open_session()
            guarded_backup(session, datacenter=self.datacenter, wait=self.wait,
                           wait_timeout=self.wait_timeout, echo=self.echo, stop=self.stop,
                           should_stop=self.should_stop, on_report=finished)
        except LockStopped as e:
            log.info("run %d of %s: %s", n, system, e)
            return
        except LockBusy as e:
            if self.once or (n == 1 and not self.wait):
                raise                          # like `backup`: say who holds it, exit 2
            if not self.wait:
                log.warning("run %d of %s skipped: %s", n, system, e)
                return
            log.error("run %d of %s failed: %s", n, system, e)
            self.codes.append(EXIT_FAILED)
            return
        except ConfigError:
            raise                              # settings do not get better by waiting
        except BackupError as e:
            log.error("run %d of %s failed: %s", n, system, e)
            self.codes.append(EXIT_FAILED)
            return
        finally:
            if session is not None:
                session.close()

    def _log_report(self, n: int, report: BackupReport, seconds: float) -> None:
        system = self.config.system
        if report.stopped:
            log.info("run %d of %s: %s (%.1fs)", n, system, report.summary(), seconds)
            return
        self.codes.append(report.exit_code)
        log.info("run %d of %s: %s (exit %d, %.1fs)", n, system, report.summary(),
                 report.exit_code, seconds)
        if report.error:
            log.error("run %d of %s failed: %s", n, system, report.error)
        for line in report.skipped:
            log.warning("  skipped %s", line)
        for line in report.warnings:
            log.warning("  %s", line)
        for p in report.providers.values():
            if p.ok:
                log.info("  provider %s: ok, %d written, %d new", p.name, p.written, p.new_blobs)
            else:
                log.warning("  provider %s: FAILED: %s", p.name, p.reason)
            for message in p.messages:          # e.g. msd: what happened in each data center
                log.info("  provider %s: %s", p.name, message)


# -- commands (their arguments: .arguments) -----------------------------------------------
def cmd_backup(args: argparse.Namespace, session: Session, *,
               echo: Callable[[str], None] = lambda s: None,
               warn: Callable[[str], None] = lambda s: None,
               progress: Progress = NO_PROGRESS) -> int:
    """``ovirt-backup backup``: one guarded run that takes SIGTERM/SIGINT as the runner does:
    the run stops at the next VM and is abandoned (no half generation; the worker processes
    end with it); a second signal interrupts at once (130). Unlike ``run`` (where a run a
    signal stopped does not count), the one run asked for did not happen: exit 2, so that a
    timer or a script sees it."""
    stopper = Stopper()
    previous = stopper.install_signals()
    try:
        report = guarded_backup(session, datacenter=args.datacenter, wait=args.wait,
                                wait_timeout=args.wait_timeout, echo=echo, stop=stopper.stop,
                                should_stop=stopper.should_stop, progress=progress,
                                full=getattr(args, "full", False))
    except LockStopped:
        echo(f"stopped by {stopper.signal_name} while waiting for the lock: nothing was done; "
             f"exit code {EXIT_FAILED}")
        return EXIT_FAILED
    finally:
        stopper.restore_signals(previous)
    for line in report.skipped:
        warn(f"warning: skipped {line}")
    if report.stopped:
        echo(f"stopped by {stopper.signal_name}: the run was abandoned, nothing of it is kept "
             f"and the previous generations are unchanged; exit code {EXIT_FAILED}")
        return EXIT_FAILED
    return report.exit_code


def cmd_run(args: argparse.Namespace, config: Config, open_session: Callable[[], Session],
            echo: Callable[[str], None] = lambda s: None) -> int:
    logging.getLogger(__name__).setLevel(min(logging.INFO,
                                             logging.getLogger(__name__).getEffectiveLevel()))
    runner = Runner(config, open_session, every=None if args.once else args.every,
                    datacenter=args.datacenter, wait=args.wait,
                    wait_timeout=args.wait_timeout, max_runs=args.runs, echo=echo)
    previous = runner.install_signals()
    try:
        return runner.run()
    finally:
        runner.restore_signals(previous)
