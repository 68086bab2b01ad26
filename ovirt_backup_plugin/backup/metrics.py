"""Prometheus metrics: each run writes a node_exporter textfile-collector file.

``[backup] metrics_file = /var/lib/node_exporter/textfile/ovirt-backup-<system>.prom``
(the name must end in ``.prom``, the collector reads nothing else). The file is replaced
atomically (a temporary file in the same directory, renamed over it), so the collector
never reads half a file; its mode is 0644 whatever the umask, because node_exporter runs as
another user and the file holds nothing secret: counts, sizes and times, the system's and
the providers' names.

Every series has the labels ``system`` (and ``provider`` where it is per provider):

=================================================  ======  ===============================
ovirt_backup_last_run_timestamp_seconds            gauge   when the last run ended
ovirt_backup_last_run_duration_seconds             gauge   how long it took
ovirt_backup_last_run_success                      gauge   1 ok, 0 partial or failed
ovirt_backup_last_run_exit_code                    gauge   0 ok, 1 partial, 2 failed
ovirt_backup_last_run_vms_seen                     gauge   VMs the engine listed
ovirt_backup_last_run_vms_backed_up                gauge   VMs stored by a provider
ovirt_backup_last_run_vms_skipped                  gauge   VMs not backed up (OVF withheld)
ovirt_backup_vms_skipped_consecutively             gauge   VMs skipped in N runs in a row,
                                                           the most runs of one VM
ovirt_backup_provider_up{provider}                 gauge   1 when it took the last run
ovirt_backup_last_success_timestamp_seconds{...}   gauge   when it last took a run
ovirt_backup_last_run_new_blobs{provider}          gauge   distinct OVFs newly stored
ovirt_backup_last_run_written_bytes{provider}      gauge   their bytes (sealed)
ovirt_backup_runs_total{result}                    counter runs by result (ok, partial,
                                                           failed), since the state began
ovirt_backup_written_bytes_total{provider}         counter bytes of new blobs, ever
ovirt_backup_new_blobs_total{provider}             counter new blobs, ever
=================================================  ======  ===============================

The counters live in the system's state file (:mod:`.health`), so they survive the file
being rewritten; they restart at zero if that file is removed, which Prometheus' ``rate``
and ``increase`` handle as a counter reset.

The exposition text is prometheus_client's (``generate_latest`` over a registry of this
run's values): escaping, HELP/TYPE lines and the counter's ``_total`` come from the
library that defines the format. Its own ``write_to_textfile`` is not used: it leaves the
file's mode to the umask (the systemd units' ``UMask=0027`` would give 0640, unreadable to
node_exporter), which the atomic write here sets before the rename.
"""
from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

from ..errors import ConfigError
from ..host import Config
from ..model import utcnow
from .health import RESULTS, Health, write_atomically
from .run import EXIT_OK, BackupReport

log = logging.getLogger(__name__)

MODE = 0o644
PREFIX = "ovirt_backup_"


def metrics_path(config: Config) -> Optional[Path]:
    """``[backup] metrics_file``, checked; None when not set."""
    value = str(config.backup_options.get("metrics_file") or "").strip()
    if not value:
        return None
    path = Path(value).expanduser()
    if path.suffix != ".prom":
        raise ConfigError(f"[backup] metrics_file = {value}: node_exporter's textfile "
                          "collector reads only files ending in .prom")
    return path


Sample = Tuple[Dict[str, str], float]


def samples(system: str, report: BackupReport, health: Health,
            duration: float) -> List[Tuple[str, str, str, List[Sample]]]:
    """``(name, type, help, [(labels, value), ...])`` of every metric, for one run."""
    base = {"system": system}
    per = [(name, p) for name, p in sorted(report.providers.items())]
    ended = utcnow().timestamp()

    def one(value: float) -> List[Sample]:
        return [(dict(base), float(value))]

    def each(attr: str) -> List[Sample]:
        return [({**base, "provider": n}, float(getattr(p, attr))) for n, p in per]

    successes = [({**base, "provider": n}, _timestamp(t))
                 for n, t in sorted(health.last_success.items())]
    streak = max((s.runs for s in health.skips.values()), default=0)
    totals = health.totals
    runs = [({**base, "result": r}, float(totals.get(f"runs:{r}", 0)))
            for r in RESULTS.values()]
    providers = sorted({k.split(":", 1)[1] for k in totals if ":" in k
                        and k.split(":", 1)[0] in ("written_bytes", "new_blobs")})
    return [
        ("last_run_timestamp_seconds", "gauge", "When the last backup run ended.", one(ended)),
        ("last_run_duration_seconds", "gauge", "How long the last backup run took.",
         one(duration)),
        ("last_run_success", "gauge", "1 when the last run was ok, 0 when partial or failed.",
         one(1 if report.exit_code == EXIT_OK else 0)),
        ("last_run_exit_code", "gauge", "Exit code of the last run: 0 ok, 1 partial, 2 failed.",
         one(report.exit_code)),
        ("last_run_vms_seen", "gauge", "VMs the engine listed in the last run.",
         one(report.vms_seen)),
        ("last_run_vms_backed_up", "gauge", "VMs stored by at least one provider in the "
         "last run.", one(report.vms_backed_up)),
        ("last_run_vms_skipped", "gauge", "VMs the last run could not back up.",
         one(len(report.skipped))),
        ("vms_skipped_consecutively", "gauge", "The most runs in a row one VM was skipped.",
         one(streak)),
        ("provider_up", "gauge", "1 when the provider took the last run.",
         [({**base, "provider": n}, 1.0 if p.ok and not report.error else 0.0)
          for n, p in per]),
        ("last_success_timestamp_seconds", "gauge", "When the provider last took a run.",
         successes),
        ("last_run_new_blobs", "gauge", "Distinct OVFs the provider newly stored in the "
         "last run.", each("new_blobs")),
        ("last_run_written_bytes", "gauge", "Bytes of the OVFs the provider newly stored in "
         "the last run.", each("bytes_written")),
        ("runs", "counter", "Backup runs by result.", runs),
        ("written_bytes", "counter", "Bytes of OVFs newly stored, by provider.",
         [({**base, "provider": n}, float(totals.get(f"written_bytes:{n}", 0)))
          for n in providers]),
        ("new_blobs", "counter", "Distinct OVFs newly stored, by provider.",
         [({**base, "provider": n}, float(totals.get(f"new_blobs:{n}", 0)))
          for n in providers]),
    ]


def render(system: str, report: BackupReport, health: Health, duration: float) -> bytes:
    """The exposition text (prometheus_client's format)."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
    from prometheus_client.registry import Collector

    families: List[Any] = []
    for name, kind, text, values in samples(system, report, health, duration):
        labels = sorted({k for labels, _ in values for k in labels}) or ["system"]
        family_type = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
        family = family_type(PREFIX + name, text, labels=labels)
        for sample_labels, value in values:
            family.add_metric([sample_labels.get(k, "") for k in labels], value)
        families.append(family)

    class _Run(Collector):
        def collect(self) -> Iterator[Any]:
            return iter(families)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Run())
    return generate_latest(registry)


def write_metrics(config: Config, report: BackupReport, health: Health,
                  duration: float) -> Optional[Path]:
    """Write the run's metrics file, if configured. A failure is a warning: metrics never
    change a run's result."""
    path = metrics_path(config)
    if path is None:
        return None
    try:
        data = render(config.system, report, health, duration)
    except ImportError:
        log.warning("[backup] metrics_file is set but prometheus_client is not installed "
                    "(pip install 'ovirt-backup-plugin[metrics]'); no metrics written")
        return None
    try:
        write_atomically(path, data, MODE)
    except OSError as e:
        log.warning("cannot write the metrics file %s: %s", path, e.strerror or e)
        return None
    return path


def _timestamp(iso: str) -> float:
    try:
        return dt.datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return 0.0
