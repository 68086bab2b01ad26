"""Measuring one subprocess (wall time, CPU time, peak RSS) and running the replay server.

Peak RSS is ``ru_maxrss`` of the measured process, read by a small *wrapper* process
(``python -I -S -c``, about 10 MB) that starts the command and collects it with
``os.wait4()`` (or, without ``wait4``, ``getrusage(RUSAGE_CHILDREN)`` of its only child).

Why the wrapper: on Linux, a child's ``ru_maxrss`` is at least the RSS of the process
that spawned it (``exec`` folds the high-water mark of the old address space into the
child's, and CPython spawns with ``vfork``). Spawned straight from the benchmark, whose
RSS grows with what it has done, the figure would be the benchmark's, not the command's.
The wrapper is small, so its floor (about 10 MB) is well below anything measured here.
The wrapper also keeps measurements apart from each other and from the replay server.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

# argv: REPORT_PATH COMMAND... ; writes {"rc", "wall", "maxrss_kb", "utime", "stime"}.
_WRAPPER = r"""
import json, os, resource, subprocess, sys, time
report, argv = sys.argv[1], sys.argv[2:]
t = time.perf_counter()
p = subprocess.Popen(argv)
if hasattr(os, "wait4"):
    _, status, u = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    p.returncode = rc = os.waitstatus_to_exitcode(status)
else:
    rc = p.wait()
    wall = time.perf_counter() - t
    u = resource.getrusage(resource.RUSAGE_CHILDREN)
with open(report, "w") as f:
    json.dump({"rc": rc, "wall": wall, "maxrss_kb": u.ru_maxrss, "utime": u.ru_utime,
               "stime": u.ru_stime, "inblock": u.ru_inblock, "oublock": u.ru_oublock,
               "nvcsw": u.ru_nvcsw, "nivcsw": u.ru_nivcsw}, f)
sys.exit(rc if rc >= 0 else 128 - rc)
"""


@dataclass
class Measurement:
    label: str
    argv: List[str]
    rc: int
    wall_s: float
    cpu_user_s: float
    cpu_sys_s: float
    peak_rss_mb: float
    loadavg_before: List[float]
    server_cpu_s: Optional[float] = None      # replay server CPU during the run
    blocks_out: Optional[int] = None          # ru_oublock: 512-byte blocks written (fs)
    vol_ctx_switches: Optional[int] = None    # ru_nvcsw: waits (network, disk, sleep)
    invol_ctx_switches: Optional[int] = None  # ru_nivcsw: preemptions (CPU contention)
    stdout_path: str = ""
    stderr_path: str = ""
    extra: Dict[str, object] = field(default_factory=dict)

    @property
    def cpu_s(self) -> float:
        return self.cpu_user_s + self.cpu_sys_s

    def to_dict(self) -> dict:
        d = asdict(self)
        d["cpu_s"] = round(self.cpu_s, 3)
        return d


def byte_compile(*trees: Path) -> None:
    """Byte-compile the Python sources under ``trees``, as an installed package has them
    (pip compiles at install). A checkout run with ``PYTHONDONTWRITEBYTECODE=1`` (this
    machine sets it) would otherwise compile every module on every start: about 70 ms of
    each command, which no installed system pays. Idempotent and quick when up to date."""
    import compileall
    for tree in trees:
        compileall.compile_dir(str(tree), quiet=1, workers=1)


def proc_cpu_seconds(pid: int) -> Optional[float]:
    """utime + stime of a live process (Linux /proc), or None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def run_measured(label: str, argv: Sequence[str], *, log_dir: Path, env=None,
                 server_pid: Optional[int] = None, cwd=None) -> Measurement:
    """Run ``argv`` to completion under the wrapper; stdout/stderr go to
    ``log_dir/<label>.out`` and ``.err``; the wrapper's report to ``<label>.rusage.json``."""
    log_dir.mkdir(parents=True, exist_ok=True)
    out_path, err_path = log_dir / f"{label}.out", log_dir / f"{label}.err"
    report = log_dir / f"{label}.rusage.json"
    report.unlink(missing_ok=True)
    load = [round(x, 2) for x in os.getloadavg()]
    server_cpu0 = proc_cpu_seconds(server_pid) if server_pid else None
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        wrapper_rc = subprocess.call([sys.executable, "-I", "-S", "-c", _WRAPPER, str(report),
                                      *argv], stdout=out, stderr=err, env=env, cwd=cwd)
    if not report.is_file():
        raise RuntimeError(f"{label}: the measuring wrapper failed (rc {wrapper_rc}, see {err_path})")
    info = json.loads(report.read_text())
    server_cpu = None
    if server_pid and server_cpu0 is not None:
        now = proc_cpu_seconds(server_pid)
        server_cpu = round(now - server_cpu0, 3) if now is not None else None
    return Measurement(label=label, argv=list(argv), rc=info["rc"], wall_s=round(info["wall"], 3),
                       cpu_user_s=round(info["utime"], 3), cpu_sys_s=round(info["stime"], 3),
                       peak_rss_mb=round(info["maxrss_kb"] / 1024, 1), loadavg_before=load,
                       server_cpu_s=server_cpu, blocks_out=info.get("oublock"),
                       vol_ctx_switches=info.get("nvcsw"), invol_ctx_switches=info.get("nivcsw"),
                       stdout_path=str(out_path), stderr_path=str(err_path))


class ReplayServer:
    """``python -m ovirt_backup_plugin.testing.replay CASSETTE --delay D`` in its own process."""

    def __init__(self, cassette: Path, *, delay: float, log_path: Path,
                 password: str = "replay-secret", startup_timeout: float = 600,
                 extra_args: Sequence[str] = ()):
        self.cassette, self.delay, self.log_path = cassette, delay, log_path
        self.extra_args = list(extra_args)
        self.password, self.startup_timeout = password, startup_timeout
        self.proc: Optional[subprocess.Popen] = None
        self.url = ""
        self.startup_s = 0.0
        self.rss_mb: Optional[float] = None

    def start(self) -> "ReplayServer":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "wb")
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ovirt_backup_plugin.testing.replay", str(self.cassette),
             "--port", "0", "--delay", str(self.delay), "--password", self.password,
             *self.extra_args],
            stdout=subprocess.PIPE, stderr=self._log)
        line: List[bytes] = []
        reader = threading.Thread(target=lambda: line.append(self.proc.stdout.readline()),
                                  daemon=True)
        reader.start()
        reader.join(self.startup_timeout)
        if not line or not line[0].strip():
            self.stop()
            raise RuntimeError(f"the replay server did not start (see {self.log_path})")
        self.url = line[0].decode().strip()
        self.startup_s = time.perf_counter() - t0
        self.rss_mb = self.current_rss_mb()
        return self

    @property
    def pid(self) -> Optional[int]:
        return self.proc.pid if self.proc else None

    def current_rss_mb(self) -> Optional[float]:
        try:
            for row in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if row.startswith("VmRSS:"):
                    return round(int(row.split()[1]) / 1024, 1)
        except (OSError, ValueError):
            pass
        return None

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)       # the server stops cleanly on SIGTERM
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout:
            proc.stdout.close()
        self._log.close()

    def __enter__(self) -> "ReplayServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
