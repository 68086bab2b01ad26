"""What runs leave behind for the operator: a small state file, and engine alerts, once.

Every backup run (``backup``, ``run``) updates ``<state_dir>/<system>.health.json``
(mode 0600, replaced atomically): when each provider last succeeded, which VMs the engine
listed but the run could not back up and for how many runs in a row, running totals for
the metrics file, and which alerts were posted. It holds counts, times, VM names and ids
and provider names: no OVF, no URL, user, password or provider error text.

Alerts (``[backup] alerts = yes``, the default; ``alert_after_skips = N``, default 3)
post a *warning* event to the engine's audit log, as engine-backup does when no backup
was taken:

* when a run fails (nothing was stored), and when a provider fails (unless ``[backup]
  events = yes``, which already posts every run's summary, a failed run as an error);
* when a VM has been skipped (the engine withheld its OVF, or it did not parse) in more
  than N runs in a row.

Each condition is posted once, when it starts, not on every run; when it clears a
*normal* event says so, and a later failure alerts again. An alert that could not be
posted (engine unreachable) is tried again after the next run.
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from ..engine import Engine
from ..errors import ConfigError
from ..host import Config
from ..model import utcnow
from .lock import lock_path
from .run import EXIT_FAILED, EXIT_OK, EXIT_PARTIAL, BackupReport

log = logging.getLogger(__name__)

FORMAT = 1
DEFAULT_ALERT_AFTER_SKIPS = 3
EVENT_MAX = 800
RESULTS = {EXIT_OK: "ok", EXIT_PARTIAL: "partial", EXIT_FAILED: "failed"}


def health_path(state_dir: str, system: str) -> Path:
    """``<state_dir>/<system>.health.json`` (the system's name made safe as for its lock)."""
    return lock_path(state_dir, system).with_suffix(".health.json")


@dataclass
class Skip:
    """A VM the engine lists but the runs could not back up, ``runs`` times in a row."""

    name: str
    runs: int
    since: str                                   # ISO time of the first skipped run
    reason: str = ""

    def to_dict(self) -> Dict[str, Any]:
        return {"name": self.name, "runs": self.runs, "since": self.since,
                "reason": self.reason}


@dataclass
class Health:
    """The state file's content."""

    last_success: Dict[str, str] = field(default_factory=dict)     # provider -> ISO time
    skips: Dict[str, Skip] = field(default_factory=dict)           # vm id -> Skip
    alerted: Dict[str, Dict[str, str]] = field(default_factory=dict)   # alert key ->
                                                                # {"since": ISO, "about": name}
    totals: Dict[str, float] = field(default_factory=dict)         # counter -> value
    last_run: Dict[str, Any] = field(default_factory=dict)         # id, time, result

    @classmethod
    def load(cls, path: Path) -> "Health":
        """The state in ``path``; an empty one when it is missing or unreadable (the
        next run rewrites it), never an error that stops a backup."""
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError) as e:
            log.warning("%s is unreadable (%s); starting a new one", path, e)
            return cls()
        if not isinstance(doc, dict) or int(doc.get("format", 0)) > FORMAT:
            log.warning("%s was written by a newer ovirt-backup; starting a new one", path)
            return cls()
        try:
            return cls(last_success=dict(doc.get("last_success", {})),
                       skips={k: Skip(**v) for k, v in doc.get("skips", {}).items()},
                       alerted={k: dict(v) for k, v in doc.get("alerted", {}).items()},
                       totals=dict(doc.get("totals", {})),
                       last_run=dict(doc.get("last_run", {})))
        except (TypeError, ValueError, AttributeError) as e:
            log.warning("%s is unreadable (%s); starting a new one", path, e)
            return cls()

    def save(self, path: Path) -> None:
        """Write atomically (temporary file in the same directory, then rename), 0600."""
        doc = {"format": FORMAT, "last_success": self.last_success,
               "skips": {k: v.to_dict() for k, v in sorted(self.skips.items())},
               "alerted": self.alerted, "totals": self.totals, "last_run": self.last_run}
        write_atomically(path, (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode(),
                         0o600)

    def record(self, report: BackupReport, *, duration: float) -> None:
        """Fold one finished run in: successes, skip streaks, totals."""
        now = utcnow().isoformat()
        result = RESULTS[report.exit_code]
        self.last_run = {"id": report.run.id, "finished_at": now, "result": result,
                         "duration_seconds": round(duration, 3)}
        for name, p in report.providers.items():
            if p.ok and not report.error:
                self.last_success[name] = now
            self.totals[f"written_bytes:{name}"] = self.totals.get(
                f"written_bytes:{name}", 0) + p.bytes_written
            self.totals[f"new_blobs:{name}"] = self.totals.get(f"new_blobs:{name}", 0) \
                + p.new_blobs
        self.totals[f"runs:{result}"] = self.totals.get(f"runs:{result}", 0) + 1
        if report.error:          # the engine was not read to the end: streaks unchanged
            return
        skipped = {s.vm_id: s for s in report.skipped_vms}
        for vm_id, s in skipped.items():
            old = self.skips.get(vm_id)
            self.skips[vm_id] = Skip(name=s.name, runs=(old.runs if old else 0) + 1,
                                     since=old.since if old else report.run.started_at.isoformat(),
                                     reason=s.reason)
        for vm_id in set(self.skips) - set(skipped):
            del self.skips[vm_id]     # backed up again, or gone from the engine


def skipped_ids(config: Config) -> Tuple[str, ...]:
    """The VMs the last run listed but could not back up (the state file's skip streaks):
    an incremental run reads them again, whether an event names them or not."""
    return tuple(sorted(Health.load(health_path(config.state_dir, config.system)).skips))


def write_atomically(path: Path, data: bytes, mode: int) -> None:
    """``data`` into ``path`` with ``mode``: a temporary file in the same directory,
    chmod-ed and synced before it is renamed over ``path``, so a reader sees the old
    file or the new one, never a part, and never a file with another mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# -- settings ------------------------------------------------------------------------------
def alerts_enabled(config: Config) -> bool:
    value = str(config.backup_options.get("alerts", "yes")).strip().lower()
    if value in ("", "1", "yes", "true", "on"):
        return True
    if value in ("0", "no", "false", "off"):
        return False
    raise ConfigError(f"[backup] alerts = {value!r}: use yes or no")


def alert_after_skips(config: Config) -> int:
    value = config.backup_options.get("alert_after_skips")
    if value in (None, ""):
        return DEFAULT_ALERT_AFTER_SKIPS
    try:
        count = int(str(value))
    except ValueError:
        raise ConfigError(f"[backup] alert_after_skips = {value!r}: give a number of runs "
                          "(0: alert at the first skip)") from None
    if count < 0:
        raise ConfigError("[backup] alert_after_skips must be 0 or more")
    return count


# -- alerts ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Alert:
    key: str                                     # what it is about: run, provider:X, vm:ID
    text: str
    about: str = ""                              # the VM's or provider's name


def due_alerts(health: Health, report: BackupReport, *, after_skips: int,
               run_events: bool = False) -> "tuple[List[Alert], List[Alert]]":
    """``(raised, cleared)``: conditions that hold after this run and were not alerted
    yet, and alerted conditions that no longer hold. With ``run_events`` (``[backup]
    events = yes``: every run posts its summary, a failed one as an error) run and
    provider failures are told by that event, not twice."""
    holding: Dict[str, str] = {}
    if report.exit_code == EXIT_FAILED and not run_events:
        reason = report.error or "every provider failed"
        holding["run"] = f"backup run {report.run.id} failed, nothing was stored: {reason}"
    about: Dict[str, str] = {}
    for name, p in report.providers.items():
        if not p.ok and not report.error and not run_events:
            holding[f"provider:{name}"] = f"provider {name} failed in run {report.run.id}"
            about[f"provider:{name}"] = name
    for vm_id, skip in health.skips.items():
        if skip.runs > after_skips:
            holding[f"vm:{vm_id}"] = (f"VM {skip.name} ({vm_id}) was not backed up in the last "
                                      f"{skip.runs} runs (since {skip.since[:16]}): "
                                      f"{skip.reason}")
            about[f"vm:{vm_id}"] = skip.name
    if report.error:   # the engine was not read: VM streaks are unknown, keep their state
        holding.update({k: "" for k in health.alerted if k.startswith("vm:")
                        and k not in holding})
    raised = [Alert(k, t, about.get(k, "")) for k, t in holding.items()
              if k not in health.alerted]
    cleared = [Alert(k, _cleared_text(k, v.get("about", ""), report))
               for k, v in health.alerted.items() if k not in holding]
    return raised, cleared


def _cleared_text(key: str, about: str, report: BackupReport) -> str:
    if key == "run":
        return f"backups work again: run {report.run.id} stored"
    kind, _, ident = key.partition(":")
    if kind == "provider":
        return f"provider {ident} works again (run {report.run.id})"
    return f"VM {about} ({ident}) is backed up again, or gone from the engine"


def event_text(system: str, alerts: List[Alert]) -> str:
    text = f"ovirt-backup of {system}: " + "; ".join(a.text for a in alerts)
    text = text.replace("$", "")          # the engine would read ${...} as its own variable
    return text if len(text) <= EVENT_MAX else text[:EVENT_MAX - 3] + "..."


def post_alerts(engine: Engine, config: Config, health: Health, report: BackupReport) -> int:
    """Post what is due (one warning event for what started, one normal event for what
    cleared) and remember it in ``health``; returns the number of events posted."""
    if not alerts_enabled(config):
        return 0
    run_events = str(config.backup_options.get("events", "no")).strip().lower() in (
        "1", "yes", "true", "on")
    raised, cleared = due_alerts(health, report, after_skips=alert_after_skips(config),
                                 run_events=run_events)
    posted = 0
    if (raised or cleared) and engine.down:
        log.warning("not posting alerts: the engine is not answering (they are posted after "
                    "the next run that reaches it)")
        return 0
    for alerts, severity in ((raised, "warning"), (cleared, "normal")):
        if not alerts:
            continue
        try:
            engine.add_event(event_text(config.system, alerts), severity=severity)
        except Exception as e:     # never let an alert change the run's result
            log.warning("could not post an alert to the engine (tried again after the next "
                        "run): %s", e)
            continue
        posted += 1
        now = utcnow().isoformat()
        for alert in alerts:
            if severity == "warning":
                health.alerted[alert.key] = {"since": now, "about": alert.about}
                log.warning("alert posted to the engine: %s", alert.text)
            else:
                health.alerted.pop(alert.key, None)
    return posted


def after_run(engine: Engine, config: Config, report: BackupReport, *,
              duration: float) -> Optional[Health]:
    """Update the state file with ``report``, post the alerts that are due; the state
    (None when it could not be written: a warning, never a failed run)."""
    path = health_path(config.state_dir, config.system)
    health = Health.load(path)
    health.record(report, duration=duration)
    post_alerts(engine, config, health, report)
    try:
        health.save(path)
    except OSError as e:
        log.warning("cannot write %s: %s", path, e.strerror or e)
        return None
    return health
