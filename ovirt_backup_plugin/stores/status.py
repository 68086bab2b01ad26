"""``ovirt-backup status``: are the backups fresh? One look per provider, cheap at any size.

Per provider that keeps generations (``list_generations``): its newest committed
generation and its age, how many VMs it covers (its newest listing, ``Query()``: the
latest table of ``localdb``, the one index object of ``swift`` and ``s3``), and whether it
could be read at all. Across providers: the VMs the engine still lists whose newest backup
is older than ``--max-age`` -- VMs skipped run after run (their OVF withheld, or one that
does not parse), as the system's state file (:mod:`..backup.health`) remembers from the
runs. VMs found only in older generations that the last run did not see are counted apart:
gone from the engine (or out of scope); ``prune`` removes them in time.

Exit code: 0 everything is fresh; 1 something is stale: a provider's newest generation is
older than the maximum age, a provider has no generation or could not be read, or a VM
the engine lists has no backup younger than the maximum age. (2: settings errors.)
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence

from ..backup.health import Health, health_path
from ..engine import Engine
from ..errors import BackupError
from ..host import Config, ProviderHandle
from ..model import EPOCH, FLAG_UNREAD, Query, Restorable, utcnow
from ..output import table
from .arguments import DEFAULT_MAX_AGE


@dataclass(frozen=True)
class ProviderStatus:
    name: str
    error: str = ""                           # could not be read
    generation: str = ""                      # the newest committed generation
    taken_at: Optional[dt.datetime] = None
    age_seconds: Optional[float] = None
    generations: int = 0
    vms: int = 0                              # VMs in the newest generation
    covered: int = 0                          # VMs restorable from it (newest of each)
    stale: bool = False

    @property
    def state(self) -> str:
        if self.error:
            return "FAILING"
        if not self.generation:
            return "NO BACKUP"
        return "STALE" if self.stale else "ok"

    def to_dict(self) -> Dict[str, Any]:
        return {"provider": self.name, "state": self.state, "error": self.error or None,
                "generation": self.generation or None,
                "taken_at": self.taken_at.isoformat() if self.taken_at else None,
                "age_seconds": None if self.age_seconds is None else round(self.age_seconds),
                "generations": self.generations, "vms": self.vms, "covered": self.covered,
                "stale": self.stale}


@dataclass(frozen=True)
class StaleVm:
    """A VM the engine lists whose newest backup anywhere is older than the maximum age."""

    vm_id: str
    name: str
    taken_at: Optional[dt.datetime]           # its newest backup (None: never backed up)
    provider: str                             # where that backup is
    skipped_runs: int
    reason: str

    def to_dict(self) -> Dict[str, Any]:
        return {"vm_id": self.vm_id, "name": self.name, "provider": self.provider or None,
                "newest_backup": self.taken_at.isoformat() if self.taken_at else None,
                "skipped_runs": self.skipped_runs, "reason": self.reason}


@dataclass
class StatusReport:
    system: str
    max_age: dt.timedelta
    checked_at: dt.datetime
    providers: List[ProviderStatus] = field(default_factory=list)
    stale_vms: List[StaleVm] = field(default_factory=list)
    gone: int = 0                             # VMs only in older generations, not listed
    last_run: Dict[str, Any] = field(default_factory=dict)

    @property
    def stale(self) -> bool:
        return bool(self.stale_vms) or any(p.state != "ok" for p in self.providers)

    @property
    def exit_code(self) -> int:
        return 1 if self.stale else 0

    def to_dict(self) -> Dict[str, Any]:
        return {"system": self.system, "checked_at": self.checked_at.isoformat(),
                "max_age_seconds": int(self.max_age.total_seconds()), "stale": self.stale,
                "providers": [p.to_dict() for p in self.providers],
                "stale_vms": [v.to_dict() for v in self.stale_vms],
                "vms_gone_from_engine": self.gone, "last_run": self.last_run or None}


def check(handles: Sequence[ProviderHandle], engine: Engine, config: Config, *,
          max_age: dt.timedelta = DEFAULT_MAX_AGE,
          now: Optional[dt.datetime] = None) -> StatusReport:
    """The status of every provider that keeps generations (see the module doc)."""
    now = now or utcnow()
    cutoff = now - max_age
    health = Health.load(health_path(config.state_dir, config.system))
    report = StatusReport(config.system, max_age, now, last_run=dict(health.last_run))
    newest: Dict[str, Restorable] = {}                # vm id -> its newest item anywhere
    for h in handles:
        if not h.implements("list_generations"):
            continue
        try:
            generations = h.list_generations()
            items = h.list_restorable(Query(datacenter=h.settings.datacenter), engine) \
                if generations else []
        except BackupError as e:
            report.providers.append(ProviderStatus(h.name, error=str(e)))
            continue
        top = max(generations, key=lambda g: (g.taken_at or EPOCH, g.id), default=None)
        when = top.taken_at if top is not None else None
        age = (now - when).total_seconds() if when is not None else None
        report.providers.append(ProviderStatus(
            h.name, generation=top.id if top else "", taken_at=when, age_seconds=age,
            generations=len(generations), vms=top.vms if top else 0,
            covered=len({i.vm_id for i in items}),
            stale=top is not None and (when is None or when < cutoff)))
        for item in items:
            best = newest.get(item.vm_id)
            if best is None or (item.taken_at or EPOCH) > (best.taken_at or EPOCH):
                newest[item.vm_id] = item
    for vm_id, skip in sorted(health.skips.items(), key=lambda kv: kv[1].name):
        found = newest.get(vm_id)
        if found is not None and FLAG_UNREAD in found.flags:
            found = _last_read(handles, engine, vm_id)
        taken = found.taken_at if found is not None else None
        if taken is None or taken < cutoff:
            report.stale_vms.append(StaleVm(vm_id, skip.name, taken,
                                            found.provider if found is not None else "",
                                            skip.runs, skip.reason))
    report.gone = sum(1 for vm_id, item in newest.items() if vm_id not in health.skips
                      and (item.taken_at or EPOCH) < cutoff)
    return report


def _last_read(handles: Sequence[ProviderHandle], engine: Engine,
               vm_id: str) -> Optional[Restorable]:
    """The newest backup of a VM that was read from the engine: a generation that kept
    the VM's previous backup because its OVF was withheld (flag ``unread``) carries an
    older read, so its time is not the VM's."""
    best: Optional[Restorable] = None
    for h in handles:
        try:
            items = h.list_restorable(Query(vms=(vm_id,), every=True), engine)
        except BackupError:
            continue
        for item in items:
            if item.vm_id == vm_id and FLAG_UNREAD not in item.flags and \
                    (best is None or (item.taken_at or EPOCH) > (best.taken_at or EPOCH)):
                best = item
    return best


def age_text(seconds: Optional[float]) -> str:
    """``3d4h``, ``2h5m``, ``40s``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    seconds = max(0, int(seconds))
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
        if len(parts) == 2:
            break
    return "".join(parts) or f"{seconds}s"


def print_status(report: StatusReport, *, as_json: bool, echo: Callable[[str], None],
                 warn: Callable[[str], None],
                 echo_json: Callable[[object], None] = lambda data: print(
                     json.dumps(data, indent=2))) -> None:
    """``echo`` prints one human line (made terminal-safe), ``echo_json`` a document."""
    if as_json:
        echo_json(report.to_dict())
        return
    limit = age_text(report.max_age.total_seconds())
    echo(f"{report.system}: {'STALE' if report.stale else 'fresh'} (maximum age {limit})")
    rows = [("PROVIDER", "STATE", "NEWEST GENERATION", "TAKEN (UTC)", "AGE", "VMS", "COVERED")]
    for p in report.providers:
        rows.append((p.name, p.state, p.generation or "-",
                     p.taken_at.strftime("%Y-%m-%d %H:%M") if p.taken_at else "-",
                     age_text(p.age_seconds), str(p.vms), str(p.covered)))
    for line in table(rows):
        echo(line)
    if not report.providers:
        echo("no enabled provider keeps generations (nothing to check)")
    for p in report.providers:
        if p.error:
            warn(f"provider {p.name} could not be read: {p.error}")
    for v in report.stale_vms:
        newest = f"newest backup {v.taken_at:%Y-%m-%d %H:%M} in {v.provider}" if v.taken_at \
            else "never backed up"
        warn(f"VM {v.name} ({v.vm_id}): {newest}; skipped in the last {v.skipped_runs} "
             f"run(s): {v.reason}")
    if report.gone:
        echo(f"{report.gone} VM(s) only in older generations, not seen by the last run "
             "(gone from the engine or out of scope; prune removes them in time)")
    if report.last_run:
        r = report.last_run
        echo(f"last run: {r.get('id', '?')} {r.get('result', '?')}, ended "
             f"{str(r.get('finished_at', '?'))[:16].replace('T', ' ')}")
