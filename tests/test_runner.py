"""The runner (`ovirt-backup run`), the per-system lock, audit events and exit codes.

Everything goes through the CLI, the real SDK over HTTP to a replay engine, and the localdb
provider (a real SQLite catalog). Long-running commands run as subprocesses and are
stopped with real signals; waits are bounded by deadlines, never asserted on.
"""
import multiprocessing
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time

import pytest
from lxml import etree

from ovirt_backup_plugin.backup.arguments import parse_duration
from ovirt_backup_plugin.backup.capture import AHEAD
from ovirt_backup_plugin.backup.lock import RunLock, lock_path
from ovirt_backup_plugin.cli import main
from ovirt_backup_plugin.testing import synth
from ovirt_backup_plugin.testing.replay import GatedEngine
from ovirt_backup_plugin.testing.silent import FallsSilentEngine, SilentServer

PASSWORD = "replay-secret"
SYSTEM = "test-engine"
DEADLINE = 60            # seconds: the most any wait in these tests may take (hang guard)
EVENTS = "/ovirt-engine/api/events"


# -- helpers -------------------------------------------------------------------------------
def gated(tmp_path, eng, page, page_size=100):
    def holds(method_, path, query):
        return path.endswith("/vms") and query.get("search") == f"page {page}"

    return GatedEngine([eng.write_cassette(tmp_path / "gated.yaml", page_size=page_size)],
                       holds=holds, deadline=DEADLINE)


def wait_for(event, proc, what):
    until(lambda: event.is_set() or proc.p.poll() is not None, what)
    assert proc.p.poll() is None, proc.text()


def answer_events(eng, status=201):
    """The engine's answer to ``POST /events``: the event it created."""
    body = (synth.XML_DECL + '<event href="/ovirt-engine/api/events/4242" id="4242">'
            "<custom_id>1</custom_id><description>x</description>"
            "<origin>ovirt-backup</origin><severity>normal</severity></event>\n")
    eng._extra.append((synth.interaction("POST", EVENTS, status=status, body=body), "append"))


def catalog(tmp_path):
    """{run id: (vm_count recorded, VM rows)} of the committed generations; {} if none."""
    path = tmp_path / "state" / "catalog.sqlite"
    if not path.exists():
        return {}
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        runs = dict(db.execute("SELECT id, vm_count FROM runs").fetchall())
        rows = dict(db.execute("SELECT run_id, count(*) FROM vms GROUP BY run_id").fetchall())
    except sqlite3.OperationalError:       # the schema is not created yet
        return {}
    finally:
        db.close()
    assert set(rows) <= set(runs), f"VM rows of uncommitted runs: {set(rows) - set(runs)}"
    return {run: (count, rows.get(run, 0)) for run, count in runs.items()}


def events_posted(server):
    return [etree.fromstring(r.body.encode()) for r in server.received
            if r.method == "POST" and r.path == EVENTS]


def until(predicate, what):
    """Poll ``predicate`` until it is true; fail after DEADLINE seconds (a hang guard)."""
    deadline = time.monotonic() + DEADLINE
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.05)


class Proc:
    """``python -m ovirt_backup_plugin.cli ARGS`` in a subprocess; its output collected."""

    def __init__(self, *argv):
        self.p = subprocess.Popen([sys.executable, "-m", "ovirt_backup_plugin.cli", *argv],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=dict(os.environ))
        self.out, self.err = [], []
        self._threads = [threading.Thread(target=self._read, args=(s, lines), daemon=True)
                         for s, lines in ((self.p.stdout, self.out), (self.p.stderr, self.err))]
        for t in self._threads:
            t.start()

    @staticmethod
    def _read(stream, lines):
        for line in stream:
            lines.append(line)

    @property
    def pid(self):
        return self.p.pid

    def text(self):
        return "".join(self.out), "".join(self.err)

    def saw(self, needle):
        return any(needle in line for line in self.out + self.err)

    def signal(self, sig):
        self.p.send_signal(sig)

    def finish(self):
        """Wait for the exit (bounded); return (code, stdout, stderr)."""
        try:
            code = self.p.wait(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            pytest.fail(f"the command did not exit; output: {self.text()}")
        for t in self._threads:
            t.join(timeout=DEADLINE)
        return (code, *self.text())


# -- intervals -----------------------------------------------------------------------------
@pytest.mark.parametrize("text, seconds", [("30s", 30), ("15m", 900), ("2h", 7200),
                                           ("1d", 86400), ("1h30m", 5400), ("90", 90),
                                           ("1s", 1)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0s", "0", "15x", "m", "-1m", "0.5s"])
def test_bad_durations_are_refused(text, capsys):
    with pytest.raises(SystemExit) as e:
        main(["run", "--every", text])
    assert e.value.code == 2
    assert "--every" in capsys.readouterr().err


# -- the runner: periodic runs, SIGTERM --------------------------------------------------------
def test_run_every_commits_whole_generations_until_sigterm(tmp_path, write_config, serve):
    eng = synth.demo_engine()
    with serve(tmp_path, eng) as server:
        cfg = write_config(tmp_path, server.url)
        proc = Proc("--config", cfg, "run", "--every", "1s")
        until(lambda: len(catalog(tmp_path)) >= 2 or proc.p.poll() is not None,
              "two committed generations")
        proc.signal(signal.SIGTERM)
        code, out, err = proc.finish()
    assert code == 0, (out, err)
    assert "stopped by SIGTERM" in out
    assert "Traceback" not in err
    generations = catalog(tmp_path)
    assert len(generations) >= 2
    for run, (recorded, rows) in generations.items():          # no half generation
        assert recorded == rows == len(eng.vms), (run, recorded, rows)
    # one INFO line per run, and the per-provider lines
    assert "run 1 of test-engine: run " in err and "run 2 of test-engine: run " in err
    assert "provider localdb: ok, 6 written" in err
    assert "an interval under 1m is meant for tests" in err
    assert PASSWORD not in out + err


def test_sigterm_during_a_run_abandons_that_run_and_keeps_the_previous_ones(tmp_path, cli, write_config):
    eng = synth.demo_engine()
    # one VM per page, and the answer to page 2 is held until the signal has been sent:
    # the signal certainly arrives while the run is reading VMs (VM 1 is written)
    with gated(tmp_path, eng, page=2, page_size=1) as server:
        # mode = full: the runs read pages (an incremental run would read no page)
        cfg = write_config(tmp_path, server.url, engine_extra="page_size = 1",
                           backup_extra="mode = full")
        server.gate.set()
        assert cli("--config", cfg, "backup")[0] == 0
        before = catalog(tmp_path)
        assert len(before) == 1
        server.arrived.clear()
        server.gate.clear()
        server.delay = 0.2                                 # a slow engine, too
        seen = len(server.received)
        proc = Proc("--config", cfg, "run", "--every", "1h")
        wait_for(server.arrived, proc, "the run to ask for page 2")
        proc.signal(signal.SIGTERM)
        server.gate.set()
        code, out, err = proc.finish()
        pages = [r.query.get("search") for r in server.received[seen:]
                 if r.path.endswith("/vms") and "search" in r.query]
    assert code == 0, (out, err)
    assert "stopped by signal" in out and "abandoned" in out
    assert "localdb: run abandoned; the previous generation is unchanged" in out
    assert "stopped by SIGTERM after 1 run(s) (0 finished); exit code 0" in out
    # it stopped after the VM it was reading: nothing was read past the pages the workers
    # had already asked for ahead (capture.AHEAD beyond page 1), and nothing of the run
    # was kept
    assert pages[0] == "page 1" and "page 2" in pages
    assert set(pages) <= {f"page {n}" for n in range(1, 2 + AHEAD)}
    assert catalog(tmp_path) == before                       # nothing of the stopped run


def test_sigterm_between_runs_exits_at_once(tmp_path, write_config, serve):
    with serve(tmp_path, synth.demo_engine()) as server:
        cfg = write_config(tmp_path, server.url)
        proc = Proc("--config", cfg, "run", "--every", "1d")
        until(lambda: proc.saw("next run at") or proc.p.poll() is not None,
              "the first run to finish")
        proc.signal(signal.SIGINT)
        code, out, err = proc.finish()
    assert code == 0, (out, err)
    assert "stopped by SIGINT after 1 run(s) (1 finished); exit code 0" in out
    assert len(catalog(tmp_path)) == 1


def test_run_exit_code_is_the_worst_run(tmp_path, write_config, serve):
    eng = synth.demo_engine()
    next(vm for vm in eng.vms if vm.name == "app01").ovf_missing_always = True
    with serve(tmp_path, eng) as server:
        cfg = write_config(tmp_path, server.url)
        proc = Proc("--config", cfg, "run", "--every", "1s")
        until(lambda: proc.saw("run 2 of test-engine") or proc.p.poll() is not None,
              "two runs")
        proc.signal(signal.SIGTERM)
        code, out, err = proc.finish()
    assert code == 1, (out, err)
    assert "exit code 1" in out and "skipped VM app01" in out


# -- --once: exit codes ------------------------------------------------------------------------
def test_once_ok_is_0(tmp_path, cli, write_config, serve):
    with serve(tmp_path, synth.demo_engine()) as server:
        cfg = write_config(tmp_path, server.url)
        code, out, err = cli("--config", cfg, "run", "--once")
    assert code == 0, (out, err)
    assert "6/6 VMs" in out and "stopped" not in out
    assert len(catalog(tmp_path)) == 1


def test_once_with_a_missing_ovf_is_1(tmp_path, cli, write_config, serve):
    eng = synth.demo_engine()
    next(vm for vm in eng.vms if vm.name == "app01").ovf_missing_always = True
    with serve(tmp_path, eng) as server:
        cfg = write_config(tmp_path, server.url)
        code, out, err = cli("--config", cfg, "run", "--once")
    assert code == 1, (out, err)
    assert "skipped VM app01" in out and "5/6 VMs" in out


def test_once_with_the_engine_unreachable_is_2(tmp_path, cli, write_config):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = write_config(tmp_path, f"http://127.0.0.1:{port}/ovirt-engine/api",
                       engine_extra="retries = 0", extra="events = yes")
    code, out, err = cli("--config", cfg, "run", "--once")
    assert code == 2
    assert f"cannot reach the engine at http://127.0.0.1:{port}" in out
    assert catalog(tmp_path) == {}


# -- the lock ------------------------------------------------------------------------------------
def test_a_second_backup_while_one_runs_is_refused(tmp_path, cli, write_config):
    with gated(tmp_path, synth.demo_engine(), page=1) as server:
        cfg = write_config(tmp_path, server.url)
        first = Proc("--config", cfg, "backup")
        wait_for(server.arrived, first, "the first backup to read VMs")
        code, out, err = cli("--config", cfg, "backup")
        server.gate.set()
        first_code, first_out, first_err = first.finish()
    assert code == 2
    assert (f"another backup of {SYSTEM} is running (pid {first.pid} on "
            f"{socket.gethostname()} since ") in err
    assert "--wait" in err
    assert first_code == 0, (first_out, first_err)
    assert "6/6 VMs" in first_out
    assert len(catalog(tmp_path)) == 1


def test_wait_waits_for_the_lock_and_then_backs_up(tmp_path, write_config, serve):
    with serve(tmp_path, synth.demo_engine()) as server:
        cfg = write_config(tmp_path, server.url)
        holder = RunLock(str(tmp_path / "state"), SYSTEM).acquire()
        try:
            proc = Proc("--config", cfg, "backup", "--wait")
            until(lambda: proc.saw("waiting for another backup") or proc.p.poll() is not None,
                  "the second backup to wait")
            assert server.received == []                   # it waits before the engine
            assert proc.p.poll() is None
        finally:
            holder.release()
        code, out, err = proc.finish()
    assert code == 0, (out, err)
    assert f"waiting for another backup of {SYSTEM} to finish (pid {os.getpid()} on " in err
    assert "6/6 VMs" in out
    assert len(catalog(tmp_path)) == 1


def test_sigterm_while_waiting_for_the_lock_exits_at_once(tmp_path, write_config, serve):
    with serve(tmp_path, synth.demo_engine()) as server:
        cfg = write_config(tmp_path, server.url)
        with RunLock(str(tmp_path / "state"), SYSTEM):
            proc = Proc("--config", cfg, "run", "--every", "1h", "--wait")
            until(lambda: proc.saw("waiting for another backup") or proc.p.poll() is not None,
                  "the runner to wait")
            proc.signal(signal.SIGTERM)
            code, out, err = proc.finish()
    assert code == 0, (out, err)
    assert "stopped by SIGTERM after 1 run(s) (0 finished); exit code 0" in out
    assert server.received == []


def test_wait_is_bounded_by_wait_timeout(tmp_path, cli, write_config, serve):
    with serve(tmp_path, synth.demo_engine()) as server:
        cfg = write_config(tmp_path, server.url)
        with RunLock(str(tmp_path / "state"), SYSTEM):
            code, out, err = cli("--config", cfg, "run", "--once", "--wait",
                                 "--wait-timeout", "1s")
    assert code == 2
    assert f"another backup of {SYSTEM} is still running after waiting 1s (pid {os.getpid()}" \
        in err
    assert server.received == []


def test_the_lock_dies_with_its_holder(tmp_path, cli, write_config, serve):
    state = tmp_path / "state"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\n"
         "from ovirt_backup_plugin.backup.lock import RunLock\n"
         f"RunLock({str(state)!r}, {SYSTEM!r}).acquire()\n"
         "print('locked', flush=True)\n"
         "time.sleep(600)\n"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with serve(tmp_path, synth.demo_engine()) as server:
            cfg = write_config(tmp_path, server.url)
            code, _, err = cli("--config", cfg, "backup")
            assert code == 2 and f"(pid {holder.pid} on" in err
            holder.kill()                                    # SIGKILL: no clean-up at all
            holder.wait(timeout=DEADLINE)
            code, out, err = cli("--config", cfg, "backup")
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        holder.stdout.close()
    assert code == 0, (out, err)
    assert lock_path(str(state), SYSTEM).exists()              # kept; only the flock mattered


def test_a_second_runner_of_the_same_system_is_refused(tmp_path, cli, write_config, serve):
    with serve(tmp_path, synth.demo_engine()) as server:
        cfg = write_config(tmp_path, server.url)
        with RunLock(str(tmp_path / "state"), SYSTEM, kind="runner"):
            code, out, err = cli("--config", cfg, "run", "--every", "15m")
    assert code == 2
    assert f"another runner of {SYSTEM} is running (pid {os.getpid()}" in err
    assert server.received == []


# -- audit events ----------------------------------------------------------------------------------
def _event_fields(event):
    return {f: event.findtext(f) for f in ("description", "severity", "origin", "custom_id")}


@pytest.mark.parametrize("command", [["run", "--once"], ["backup"]])
def test_an_event_carries_the_summary_of_an_ok_run(tmp_path, command, cli, write_config, serve):
    eng = synth.demo_engine()
    answer_events(eng)
    with serve(tmp_path, eng) as server:
        cfg = write_config(tmp_path, server.url, extra="events = yes")
        code, out, err = cli("--config", cfg, *command)
        (event,) = events_posted(server)
        body = next(r.body for r in server.received if r.path == EVENTS)
        url = server.url
    assert code == 0, (out, err)
    fields = _event_fields(event)
    assert fields["severity"] == "normal" and fields["origin"] == "ovirt-backup"
    assert fields["custom_id"] and int(fields["custom_id"]) >= 0
    summary = next(line for line in out.splitlines() if line.startswith("run "))
    assert fields["description"].startswith(f"ovirt-backup of {SYSTEM}: {summary}")
    assert "6/6 VMs" in fields["description"] and ": ok;" in fields["description"]
    # nothing secret: no password, token, user or engine URL
    for secret in (PASSWORD, "replay-token", "admin@internal", url, "127.0.0.1"):
        assert secret not in body


def test_an_event_of_a_partial_run_is_a_warning(tmp_path, cli, write_config, serve):
    eng = synth.demo_engine()
    next(vm for vm in eng.vms if vm.name == "app01").ovf_missing_always = True
    answer_events(eng)
    with serve(tmp_path, eng) as server:
        cfg = write_config(tmp_path, server.url, extra="events = yes")
        code, out, _ = cli("--config", cfg, "run", "--once")
        (event,) = events_posted(server)
    assert code == 1
    fields = _event_fields(event)
    assert fields["severity"] == "warning"
    assert ": partial;" in fields["description"] and "1 skipped" in fields["description"]


def test_an_event_of_a_failed_run_is_an_error(tmp_path, cli, write_config, serve):
    eng = synth.demo_engine()
    eng.add_error("GET", synth.with_query(f"{synth.API}/vms", all_content="true", max="100",
                                         search="page 1"), 500, times=None)
    answer_events(eng)
    with serve(tmp_path, eng) as server:
        cfg = write_config(tmp_path, server.url, extra="events = yes")
        code, out, _ = cli("--config", cfg, "run", "--once")
        (event,) = events_posted(server)
    assert code == 2
    fields = _event_fields(event)
    assert fields["severity"] == "error" and ": failed;" in fields["description"]
    assert "Internal server error" not in fields["description"]   # no error texts


@pytest.mark.parametrize("status", [404, 500])
def test_a_failing_events_endpoint_does_not_change_the_exit_code(tmp_path, caplog, status, cli, write_config, serve):
    eng = synth.demo_engine()
    if status != 404:                      # 404: the replay engine has no answer at all
        eng.add_error("POST", "events", status, times=None)
    with serve(tmp_path, eng) as server:
        cfg = write_config(tmp_path, server.url, extra="events = yes")
        code, out, err = cli("--config", cfg, "run", "--once")
        assert len(events_posted(server)) == 1
    assert code == 0, (out, err)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    said = "not found" if status == 404 else f"answered {status}"
    assert any("could not post the run's event" in w and said in w for w in warnings)
    assert len(catalog(tmp_path)) == 1


def test_no_event_unless_enabled(tmp_path, cli, write_config, serve):
    eng = synth.demo_engine()
    answer_events(eng)
    with serve(tmp_path, eng) as server:
        cfg = write_config(tmp_path, server.url)
        assert cli("--config", cfg, "run", "--once")[0] == 0
        assert events_posted(server) == []


def test_a_bad_events_setting_is_refused(tmp_path, cli, write_config, serve):
    with serve(tmp_path, synth.demo_engine()) as server:
        cfg = write_config(tmp_path, server.url, extra="events = maybe")
        code, _, err = cli("--config", cfg, "run", "--once")
    assert code == 2 and "[backup] events = 'maybe'" in err


def test_run_stops_by_itself_after_the_asked_number_of_runs(tmp_path, cli, write_config, serve):
    eng = synth.demo_engine()
    with serve(tmp_path, eng) as server:
        cfg = write_config(tmp_path, server.url)
        code, out, err = cli("--config", cfg, "run", "--every", "1s", "--runs", "2")
    assert code == 0, (out, err)
    generations = catalog(tmp_path)
    assert len(generations) == 2
    assert all(recorded == rows == len(eng.vms) for recorded, rows in generations.values())
    assert out.count("localdb ok (6 written, 0 new)") == 1      # the second run: unchanged


# -- processes that never outlive the run, engines that never answer ------------------------------
def live_processes_of(cfg):
    """pids of live (not zombie) processes whose command line names ``cfg``: the main
    process of a backup and its forked workers (they share its command line)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().split(b"\0")
            with open(f"/proc/{entry}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if str(cfg).encode() in cmdline and state not in ("Z", "X"):
            found.append(int(entry))
    return found


def children_of(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_kill_9_of_the_main_process_alone_ends_its_workers_and_the_next_run_starts_at_once(
        tmp_path, cli, write_config):
    eng = synth.demo_engine()
    with gated(tmp_path, eng, page=3, page_size=1) as server:
        cfg = write_config(tmp_path, server.url, engine_extra="page_size = 1",
                           backup_extra="workers = 2")
        proc = Proc("--config", cfg, "backup")
        wait_for(server.arrived, proc, "a worker to ask for page 3")
        workers = children_of(proc.pid)
        assert workers, "the backup started no worker process"
        os.kill(proc.pid, signal.SIGKILL)                  # the main process only
        proc.finish()
        until(lambda: not live_processes_of(cfg), "the workers to die with the main process")
        server.gate.set()
        code, out, err = cli("--config", cfg, "backup")    # no --wait: the lock is free
    assert code == 0, (out, err)
    assert "another backup" not in err and "6/6 VMs" in out
    assert len(catalog(tmp_path)) == 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")
def test_sigterm_to_backup_abandons_the_run_ends_the_workers_and_frees_the_lock(
        tmp_path, cli, write_config):
    eng = synth.demo_engine()
    with gated(tmp_path, eng, page=3, page_size=1) as server:
        cfg = write_config(tmp_path, server.url, engine_extra="page_size = 1",
                           backup_extra="workers = 2")
        proc = Proc("--config", cfg, "backup")
        wait_for(server.arrived, proc, "a worker to ask for page 3")
        assert children_of(proc.pid)
        proc.signal(signal.SIGTERM)
        server.gate.set()
        code, out, err = proc.finish()
        assert not live_processes_of(cfg)
        assert catalog(tmp_path) == {}                     # nothing of the stopped run
        again, out2, err2 = cli("--config", cfg, "backup")
    assert code == 2, (out, err)                   # the run asked for did not happen
    assert "stopped by signal: the run is abandoned" in out
    assert ("stopped by SIGTERM: the run was abandoned, nothing of it is kept and the previous "
            "generations are unchanged; exit code 2") in out
    assert "localdb: run abandoned; the previous generation is unchanged" in out
    assert "Traceback" not in err
    assert again == 0 and "6/6 VMs" in out2, (out2, err2)


def test_a_forked_child_never_holds_the_run_lock(tmp_path):
    state = str(tmp_path / "state")
    lock = RunLock(state, SYSTEM).acquire()
    child = multiprocessing.get_context("fork").Process(target=time.sleep, args=(DEADLINE,))
    child.start()
    try:
        lock.release()                                     # the child still lives
        other = subprocess.run(
            [sys.executable, "-c",
             "from ovirt_backup_plugin.backup.lock import RunLock\n"
             f"RunLock({state!r}, {SYSTEM!r}).acquire()\n"
             "print('locked')\n"], capture_output=True, text=True, timeout=DEADLINE)
    finally:
        child.kill()
        child.join()
    assert other.stdout.strip() == "locked", other.stderr


def test_a_silent_engine_at_login_fails_within_timeout_times_attempts(tmp_path, write_config):
    with SilentServer() as silent:
        cfg = write_config(tmp_path, silent.url, engine_extra="timeout = 1\nretries = 1")
        code, out, err = Proc("--config", cfg, "backup").finish()
        asked = list(silent.requests)
    assert code == 2, (out, err)
    assert f"logging in: the engine at {silent.url} did not answer within 1s" in out
    assert asked == ["POST /ovirt-engine/sso/oauth/token"] * 2        # retries + 1, no more
    assert catalog(tmp_path) == {}


def test_an_engine_falling_silent_with_pages_in_flight_fails_within_the_timeouts(
        tmp_path, write_config):
    eng = synth.SyntheticEngine(seed=3)
    dc = eng.add_datacenter("DC")
    eng.add_cluster("c1", dc)
    eng.add_storage_domain("sd1", dc, master=True)
    for n in range(12):
        eng.add_vm(f"vm{n:02d}", "c1")
    # silent once page 2 was answered: the workers have pages 3.. in flight
    server = FallsSilentEngine([eng.write_cassette(tmp_path / "e.yaml", page_size=2)],
                               trigger=lambda method, path, query: query.get("search") == "page 2")
    with server:
        cfg = write_config(tmp_path, server.url,
                           engine_extra="page_size = 2\ntimeout = 1\nretries = 1",
                           backup_extra="workers = 2")
        code, out, err = Proc("--config", cfg, "backup").finish()
        held = list(server.held)
        assert not live_processes_of(cfg)                 # no worker left waiting
    assert code == 2, (out, err)
    assert "did not answer within 1s" in out and "run failed" in out
    assert catalog(tmp_path) == {}
    pages = {}
    for _method, target in held:
        if "all_content=true" in target:
            pages[target] = pages.get(target, 0) + 1
    assert pages and max(pages.values()) <= 2            # each page: retries + 1 at most
    assert not any("sso-logout" in target for _, target in held)    # no logout to wait for


def test_a_runner_keeps_its_schedule_against_a_silent_engine(tmp_path, write_config):
    with SilentServer() as silent:
        cfg = write_config(tmp_path, silent.url, engine_extra="timeout = 1\nretries = 0")
        code, out, err = Proc("--config", cfg, "run", "--every", "2s", "--runs", "2").finish()
        asked = list(silent.requests)
    assert code == 2, (out, err)
    assert "run 1 of test-engine: run " in err and "run 2 of test-engine: run " in err
    for n in (1, 2):                     # each run failed on its own, the cause in the log
        assert (f"run {n} of test-engine failed: logging in: the engine at {silent.url} did "
                "not answer within 1s") in err
    assert asked == ["POST /ovirt-engine/sso/oauth/token"] * 2
