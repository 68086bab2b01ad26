"""The operator's view: ``status``, the metrics file, engine alerts, progress bars.

Through the CLI, the real SDK over HTTP to replay engines, and the localdb provider (a real
SQLite catalog). Old generations are made by rewriting their start time in the catalog
(the test owns the store), as tests/test_history_prune.py does.
"""
import dataclasses
import datetime as dt
import fcntl
import json
import os
import pty
import re
import select
import shutil
import sqlite3
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ovirt_backup_plugin.backup.health import health_path
from ovirt_backup_plugin.testing import synth

EVENTS = "/ovirt-engine/api/events"
SYSTEM = "test-engine"


def engine(*, skip=(), drop=(), summary=False):
    """The demo engine; VMs named in ``skip`` have their OVF withheld always (the run
    skips them), those in ``drop`` are gone."""
    eng = synth.demo_engine()
    eng.vms[:] = [dataclasses.replace(vm, ovf_missing_in_list=vm.name in skip,
                                      ovf_missing_always=vm.name in skip)
                  for vm in eng.vms if vm.name not in drop]
    eng.add_api_summary(filtered=not summary)      # without it: a user session, no counts
    body = (synth.XML_DECL + '<event href="/ovirt-engine/api/events/4242" id="4242">'
            "<description>x</description><origin>ovirt-backup</origin>"
            "<severity>warning</severity></event>\n")
    eng._extra.append((synth.interaction("POST", EVENTS, status=201, body=body), "append"))
    return eng


def failing_engine():
    eng = engine()
    eng.add_error("GET", synth.with_query(f"{synth.API}/vms", all_content="true", max="100",
                                         search="page 1"), 500, times=None)
    return eng


def events(server):
    return [r for r in server.received if r.method == "POST" and r.path == EVENTS]


def backdate(tmp_path, hours):
    """Every committed run of the catalog, ``hours`` older."""
    db = sqlite3.connect(tmp_path / "state" / "catalog.sqlite")
    with db:
        for run_id, started in db.execute("SELECT id, started_at FROM runs").fetchall():
            when = dt.datetime.fromisoformat(started) - dt.timedelta(hours=hours)
            db.execute("UPDATE runs SET started_at = ? WHERE id = ?", (when.isoformat(), run_id))
    db.close()


@pytest.fixture
def system(tmp_path, cli, write_config, serve):
    """``system.backup(eng, extra="")`` (exit code, stdout, stderr, replay server) and
    ``system.cli(*argv)`` with the settings file of this test's system."""
    class System:
        config = None

        def backup(self, eng, extra="", command=("backup",)):
            # Sweeps: each run swaps in another engine without the events a real one
            # would log for the change (tests/test_incremental.py covers incremental runs).
            with serve(tmp_path, eng) as server:
                self.config = write_config(tmp_path, server.url,
                                           backup_extra="mode = full\n" + extra)
                code, out, err = cli("--config", self.config, *command)
            return code, out, err, server

        def cli(self, *argv):
            return cli("--config", self.config, *argv)
    return System()


# -- status -----------------------------------------------------------------------------------
def test_status_fresh_then_stale(system, tmp_path):
    code, *_ = system.backup(engine())
    assert code == 0
    code, out, err = system.cli("status", "--max-age", "2h")
    assert code == 0, out + err
    assert out.startswith(f"{SYSTEM}: fresh (maximum age 2h)")
    (row,) = [line.split() for line in out.splitlines() if line.startswith("localdb")]
    vms = len(synth.demo_engine().vms)
    assert row[1] == "ok" and row[-2:] == [str(vms), str(vms)]

    backdate(tmp_path, 3)
    code, out, err = system.cli("status", "--json", "--max-age", "2h")
    doc = json.loads(out)
    assert code == 1 and doc["stale"] is True
    (localdb,) = doc["providers"]
    assert localdb["state"] == "STALE" and 3 * 3600 <= localdb["age_seconds"] < 4 * 3600
    assert system.cli("status", "--max-age", "4h")[0] == 0


def test_status_names_a_vm_skipped_run_after_run_and_counts_gone_ones_apart(system, tmp_path):
    assert system.backup(engine())[0] == 0
    backdate(tmp_path, 3)
    code, *_ = system.backup(engine(skip=("web01",), drop=("db01",)))
    assert code == 1                                  # partial: web01 skipped
    code, out, err = system.cli("status", "--max-age", "2h")
    assert code == 1
    assert re.search(r"VM web01 \(\S+\): newest backup \S+ \S+ in localdb; skipped in the "
                     r"last 1 run\(s\)", err), err
    assert "db01" not in err and "1 VM(s) only in older generations" in out
    doc = json.loads(system.cli("status", "--json", "--max-age", "2h")[1])
    assert [v["name"] for v in doc["stale_vms"]] == ["web01"]
    assert doc["providers"][0]["state"] == "ok" and doc["vms_gone_from_engine"] == 1
    assert system.cli("status", "--max-age", "4h")[0] == 0


def test_status_reports_a_provider_that_cannot_be_read(system, tmp_path, monkeypatch):
    monkeypatch.setenv("S3_TEST_DUMMY", "dummy")
    system.backup(engine())
    text = open(system.config).read().replace("providers = localdb", "providers = localdb, s3")
    open(system.config, "w").write(text + "\n[provider:s3]\nendpoint_url = http://127.0.0.1:9\n"
                                   "access_key_id_env = S3_TEST_DUMMY\n"
                                   "secret_access_key_env = S3_TEST_DUMMY\nretries = 0\n")
    code, out, err = system.cli("status")
    assert code == 1
    assert re.search(r"^s3\s+FAILING", out, re.M) and re.search(r"^localdb\s+ok", out, re.M)
    assert "provider s3 could not be read" in err and "unreachable" in err
    assert "dummy" not in out + err


# -- metrics ------------------------------------------------------------------------------------
def metrics(path):
    """{name: {frozenset(labels): value}} of a textfile (parsed by prometheus_client)."""
    found = {}
    for family in text_string_to_metric_families(path.read_text()):
        for sample in family.samples:
            labels = dict(sample.labels)
            assert labels.pop("system") == SYSTEM
            found.setdefault(sample.name, {})[frozenset(labels.items())] = sample.value
    return found


def one(found, name, **labels):
    return found[name][frozenset(labels.items())]


def test_the_metrics_file_after_a_good_a_partial_and_a_failed_run(system, tmp_path):
    prom = tmp_path / "textfile" / "ovirt-backup.prom"
    extra = f"metrics_file = {prom}"
    vms = len(synth.demo_engine().vms)
    before = time.time()
    previous = os.umask(0o077)          # the mode does not depend on the umask
    try:
        assert system.backup(engine(), extra)[0] == 0
    finally:
        os.umask(previous)
    assert prom.stat().st_mode & 0o777 == 0o644
    good = metrics(prom)
    assert one(good, "ovirt_backup_last_run_exit_code") == 0
    assert one(good, "ovirt_backup_last_run_success") == 1
    assert one(good, "ovirt_backup_last_run_vms_seen") == vms
    assert one(good, "ovirt_backup_last_run_vms_backed_up") == vms
    assert one(good, "ovirt_backup_last_run_vms_skipped") == 0
    assert one(good, "ovirt_backup_last_run_new_blobs", provider="localdb") == vms
    assert one(good, "ovirt_backup_last_run_written_bytes", provider="localdb") > 1000
    written = one(good, "ovirt_backup_written_bytes_total", provider="localdb")
    assert written == one(good, "ovirt_backup_last_run_written_bytes", provider="localdb")
    assert one(good, "ovirt_backup_provider_up", provider="localdb") == 1
    success = one(good, "ovirt_backup_last_success_timestamp_seconds", provider="localdb")
    assert before <= success <= time.time()
    assert one(good, "ovirt_backup_last_run_duration_seconds") > 0
    assert one(good, "ovirt_backup_runs_total", result="ok") == 1

    assert system.backup(engine(skip=("web01",)), extra)[0] == 1
    partial = metrics(prom)
    assert one(partial, "ovirt_backup_last_run_exit_code") == 1
    assert one(partial, "ovirt_backup_last_run_success") == 0
    assert one(partial, "ovirt_backup_last_run_vms_seen") == vms
    assert one(partial, "ovirt_backup_last_run_vms_backed_up") == vms - 1
    assert one(partial, "ovirt_backup_last_run_vms_skipped") == 1
    assert one(partial, "ovirt_backup_vms_skipped_consecutively") == 1
    assert one(partial, "ovirt_backup_last_run_new_blobs", provider="localdb") == 0
    assert one(partial, "ovirt_backup_written_bytes_total", provider="localdb") == written
    assert one(partial, "ovirt_backup_provider_up", provider="localdb") == 1
    partial_success = one(partial, "ovirt_backup_last_success_timestamp_seconds",
                          provider="localdb")
    assert partial_success >= success

    assert system.backup(failing_engine(), extra)[0] == 2
    failed = metrics(prom)
    assert one(failed, "ovirt_backup_last_run_exit_code") == 2
    assert one(failed, "ovirt_backup_last_run_vms_seen") == 0
    assert one(failed, "ovirt_backup_provider_up", provider="localdb") == 0
    assert one(failed, "ovirt_backup_last_success_timestamp_seconds",
               provider="localdb") == partial_success        # still the last good one
    assert one(failed, "ovirt_backup_vms_skipped_consecutively") == 1   # unknown: kept
    assert {k: one(failed, "ovirt_backup_runs_total", result=k)
            for k in ("ok", "partial", "failed")} == {"ok": 1, "partial": 1, "failed": 1}
    assert sorted(p.name for p in prom.parent.iterdir()) == ["ovirt-backup.prom"]  # no temp


def test_a_metrics_file_that_node_exporter_would_not_read_is_refused(system):
    code, out, err, _ = system.backup(engine(), "metrics_file = /tmp/ovirt-backup.txt")
    assert code == 2 and "reads only files ending in .prom" in err


# -- alerts -------------------------------------------------------------------------------------
def test_a_vm_skipped_too_often_is_alerted_once_and_its_recovery_once(system, tmp_path):
    extra = "alert_after_skips = 1"
    posted = []
    for _ in range(4):                             # skipped in 4 runs in a row
        code, out, err, server = system.backup(engine(skip=("web01",)), extra)
        assert code == 1
        posted.append(len(events(server)))
    assert posted == [0, 1, 0, 0]                  # the 2nd run is the first "more than 1"
    state = health_path(str(tmp_path / "state"), SYSTEM)
    assert state.stat().st_mode & 0o777 == 0o600
    assert json.loads(state.read_text())["skips"][next(
        vm.id for vm in synth.demo_engine().vms if vm.name == "web01")]["runs"] == 4

    code, out, err, server = system.backup(engine(), extra)
    (cleared,) = events(server)
    assert code == 0 and "<severity>normal</severity>" in cleared.body
    assert "VM web01" in cleared.body and "backed up again" in cleared.body
    assert events(system.backup(engine(), extra)[3]) == []


def test_the_alert_names_the_vm_and_says_warning(system):
    for _ in range(2):
        code, out, err, server = system.backup(engine(skip=("web01",)), "alert_after_skips = 1")
    (event,) = events(server)
    assert "<severity>warning</severity>" in event.body
    assert "VM web01" in event.body and "not backed up in the last 2 runs" in event.body
    assert "replay-secret" not in event.body and "password" not in event.body


def test_a_failed_run_is_alerted_once_not_every_run(system):
    counts = [len(events(system.backup(failing_engine())[3])) for _ in range(3)]
    assert counts == [1, 0, 0]
    code, out, err, server = system.backup(engine())
    assert code == 0 and ["<severity>normal</severity>" in e.body for e in events(server)] == [
        True]


def test_alerts_can_be_turned_off(system):
    assert [len(events(system.backup(failing_engine(), "alerts = no")[3]))
            for _ in range(2)] == [0, 0]


# -- progress -------------------------------------------------------------------------------------
def run_cli(argv, *, tty, env=None, timeout=60):
    """``ovirt-backup argv`` in a subprocess, its stdout and stderr on a pseudo-terminal
    (``tty=True``) or on pipes; (exit code, everything it wrote)."""
    cmd = [sys.executable, "-c", "import sys; from ovirt_backup_plugin.cli import main; "
                                 "sys.exit(main(sys.argv[1:]))", *argv]
    env = {**os.environ, "COLUMNS": "100", **(env or {})}
    if not tty:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout,
                              stdin=subprocess.DEVNULL)
        return proc.returncode, proc.stdout + proc.stderr
    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=secondary, stderr=secondary,
                            env=env)
    os.close(secondary)
    chunks = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([primary], [], [], 0.5)
        if ready:
            try:
                data = os.read(primary, 65536)
            except OSError:              # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    os.close(primary)
    return proc.wait(timeout=timeout), b"".join(chunks).decode("utf-8", "replace")


def test_progress_is_shown_in_a_terminal_and_not_in_a_pipe(tmp_path, serve, write_config):
    vms = len(synth.demo_engine().vms)
    with serve(tmp_path, engine(summary=True)) as server:
        cfg = write_config(tmp_path, server.url)
        code, screen = run_cli(["--config", cfg, "backup"], tty=True)
        assert code == 0, screen
        assert re.search(rf"backup: 100%.*\b{vms}/{vms}\b.*VM/s\]", screen), screen
        assert "\r" in screen                       # the bar redraws in place
        summary = [r for r in server.received if r.method == "GET"
                   and r.path == "/ovirt-engine/api"]
        # the total is the count the run's plan reads anyway (one cheap GET /api)
        assert len(summary) == 1

        code, output = run_cli(["--config", cfg, "backup"], tty=False)
        assert code == 0 and "backup run" in output
        assert "VM/s" not in output and "%|" not in output and "\r" not in output
        # without a bar the run asks the same: the bar costs no request
        assert len([r for r in server.received if r.path == "/ovirt-engine/api"]) == 2


def test_progress_without_a_total_shows_done_and_rate(tmp_path, serve, write_config):
    """No API summary (a filtered user), or a run scoped to one data center: done and
    rate, no total."""
    with serve(tmp_path, engine()) as server:
        cfg = write_config(tmp_path, server.url)
        code, screen = run_cli(["--config", cfg, "backup"], tty=True)
    assert code == 0, screen
    vms = len(synth.demo_engine().vms)
    drawn = re.findall(r"backup: (\d+) VM \[[^\]]*VM/s\]", screen)    # done and rate
    assert drawn and all(int(n) <= vms for n in drawn), screen
    assert re.search(rf"backup: 100%.*\b{vms}/{vms}\b", screen)     # the end, when known


def test_check_read_data_shows_progress_in_a_terminal_and_not_in_a_pipe(tmp_path, serve,
                                                                       write_config):
    vms = len(synth.demo_engine().vms)
    with serve(tmp_path, engine()) as server:
        cfg = write_config(tmp_path, server.url)
        assert run_cli(["--config", cfg, "backup"], tty=False)[0] == 0
    code, screen = run_cli(["--config", cfg, "check", "--read-data"], tty=True)
    assert code == 0, screen
    assert re.search(rf"check localdb: 100%.*\b{vms}/{vms} \[.*OVF/s\]", screen), screen
    assert f"read {vms} stored OVF(s) once each" in screen
    code, output = run_cli(["--config", cfg, "check", "--read-data"], tty=False)
    assert code == 0 and "OVF/s" not in output and "\r" not in output, output


def test_restore_shows_progress_in_a_terminal(tmp_path, serve, write_config):
    eng = engine()
    eng.add_restore("web01-1")
    eng.add_restore("web01-2")
    with serve(tmp_path, eng) as server:
        cfg = write_config(tmp_path, server.url)
        assert run_cli(["--config", cfg, "backup"], tty=False)[0] == 0
        code, screen = run_cli(["--config", cfg, "restore", "web01", "--copies", "2"], tty=True)
    assert code == 0, screen
    assert re.search(r"restore: 100%.*\b2/2 \[", screen), screen    # one step per copy
    assert "restored 2, failed 0" in screen


# -- shell completion -----------------------------------------------------------------------------
def complete(line, tmp_path):
    """What argcomplete offers for ``line`` (as bash asks it, through the real parser)."""
    out = tmp_path / "completions.txt"
    env = {**os.environ, "_ARGCOMPLETE": "1", "_ARGCOMPLETE_IFS": "\n", "COMP_LINE": line,
           "COMP_POINT": str(len(line)), "COMP_TYPE": "9",
           "_ARGCOMPLETE_STDOUT_FILENAME": str(out)}
    subprocess.run([sys.executable, "-c", "from ovirt_backup_plugin.cli import main; main()"],
                   env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    return [w.strip() for w in out.read_text().split("\n")] if out.exists() else []


def test_shell_completion_of_commands_providers_and_local_vm_names(system, tmp_path):
    pytest.importorskip("argcomplete")
    assert "status" in complete("ovirt-backup sta", tmp_path)
    assert {"s3", "swift"} <= set(complete("ovirt-backup list --provider s", tmp_path))
    system.backup(engine())
    offered = complete(f"ovirt-backup --config {system.config} restore we", tmp_path)
    assert "web01" in offered and all(n.startswith("we") for n in offered if n)


# -- several engines on one host ------------------------------------------------------------------
def test_template_units_give_each_engine_its_config_state_and_lock(tmp_path):
    from setuptools.config.setupcfg import read_configuration

    root = Path(__file__).resolve().parent.parent
    units = root / "packaging" / "systemd"
    service = (units / "ovirt-backup@.service").read_text()
    timer = (units / "ovirt-backup@.timer").read_text()
    assert "--config /etc/ovirt-backup/%i.conf run --once" in service
    assert "StateDirectory=ovirt-backup/%i\n" in service
    assert "Environment=OVIRT_BACKUP_STATE_DIR=/var/lib/ovirt-backup/%i\n" in service
    assert "ReadWritePaths=/var/lib/ovirt-backup/%i\n" in service
    assert "Unit=ovirt-backup@%i.service\n" in timer
    shipped = {f for _, files in read_configuration(str(root / "setup.cfg"))["options"][
        "data_files"] for f in files}
    assert {"packaging/systemd/ovirt-backup@.service",
            "packaging/systemd/ovirt-backup@.timer"} <= shipped
    analyze = shutil.which("systemd-analyze")
    if analyze:                  # systemd's own check, on instances of the templates
        for name, text in (("ovirt-backup@prod.service", service),
                           ("ovirt-backup@prod.timer", timer)):
            (tmp_path / name).write_text(text)
        proc = subprocess.run([analyze, "verify", "--man=no",
                               str(tmp_path / "ovirt-backup@prod.service"),
                               str(tmp_path / "ovirt-backup@prod.timer")],
                              capture_output=True, text=True, timeout=60)
        problems = [line for line in (proc.stdout + proc.stderr).splitlines()
                    if line.strip() and "is not executable" not in line]
        assert problems == []


def test_two_engines_in_one_state_dir_keep_apart_locks_and_state(tmp_path, serve, cli):
    state = tmp_path / "state"
    for system in ("prod", "lab"):
        with serve(tmp_path, engine(), name=f"{system}.yaml") as server:
            cfg = tmp_path / f"{system}.conf"
            cfg.write_text("\n".join([
                "[engine]", f"url = {server.url}", "password_env = TEST_ENGINE_PASSWORD",
                "[backup]", f"system = {system}", f"state_dir = {state}",
                "[provider:localdb]", f"path = {state / system / 'catalog.sqlite'}", ""]))
            assert cli("--config", str(cfg), "backup")[0] == 0
    names = sorted(p.name for p in state.iterdir())
    assert names == ["lab", "lab.health.json", "lab.lock", "prod", "prod.health.json",
                     "prod.lock"]


def test_status_before_any_backup_is_stale_and_says_so(tmp_path, cli, write_config):
    cfg = write_config(tmp_path, "http://127.0.0.1:9/ovirt-engine/api")
    code, out, err = cli("--config", cfg, "status")
    assert code == 1 and re.search(r"^localdb\s+NO BACKUP", out, re.M), out + err


@pytest.mark.parametrize("extra, text", [
    ("alerts = sometimes", "[backup] alerts = 'sometimes'"),
    ("alert_after_skips = many", "[backup] alert_after_skips = 'many'"),
    ("alert_after_skip = 3", "unknown key 'alert_after_skip'; did you mean 'alert_after_skips'"),
])
def test_bad_alert_settings_are_refused_before_the_run(system, extra, text):
    code, out, err, server = system.backup(engine(), extra)
    assert code == 2 and text in err
    assert not [r for r in server.received if r.path.endswith("/vms")]       # no VM read


# -- what a command loads ---------------------------------------------------------------------
def _run_noting_imports(*argv):
    """``ovirt-backup *argv`` as its own process, and the modules it imported."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "ovirt_backup_plugin.cli",
                           *argv], capture_output=True, text=True, env=dict(os.environ),
                          timeout=120)
    imported = {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines()
                if line.startswith("import time:")}
    return proc, imported


def _sdk(imported):
    """The SDK's and libcurl's modules among ``imported`` (ovirtsdk4.types alone is 20 ms)."""
    return {m for m in imported if m.split(".")[0] in ("ovirtsdk4", "pycurl")}


def test_commands_that_answer_from_the_stores_do_not_load_the_sdk(tmp_path, serve,
                                                                write_config):
    """``list``, ``history``, ``prune`` and ``check`` answer from the catalog: they start
    without the SDK and libcurl (a tenth of a second) and need no engine; a backup loads
    them."""
    vm = synth.demo_engine().vms[0].name
    with serve(tmp_path, engine()) as server:
        cfg = write_config(tmp_path, server.url)
        proc, imported = _run_noting_imports("--config", cfg, "backup")
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert {"ovirtsdk4.types", "ovirtsdk4.services", "pycurl._pycurl"} <= _sdk(imported)
    for argv in (["list"], ["list", "--generations", vm], ["history", vm],
                 ["prune", "--keep-last", "1", "--dry-run"], ["check"]):  # engine gone now
        proc, imported = _run_noting_imports("--config", cfg, *argv)
        assert proc.returncode == 0, (argv, proc.stdout[-2000:], proc.stderr[-3000:])
        assert vm in proc.stdout or argv[0] in ("prune", "check"), (argv, proc.stdout)
        assert _sdk(imported) == set(), argv
