"""Pages read and OVFs parsed by worker processes give exactly what one process gives."""
import multiprocessing
import os
import signal
import time
import zlib

import pytest

from ovirt_backup_plugin.backup.capture import capture_one, captured
from ovirt_backup_plugin.backup.run import run_backup
from ovirt_backup_plugin.engine import Engine, EngineSettings
from ovirt_backup_plugin.model import Query
from ovirt_backup_plugin.ovf import ovf_hash
from ovirt_backup_plugin.restore.listing import gather
from ovirt_backup_plugin.testing import synth
from ovirt_backup_plugin.testing.replay import ReplayEngine

PAGE = 40


def big_engine(count=130):
    eng = synth.SyntheticEngine(seed=11)
    dc = eng.add_datacenter("DC")
    eng.add_cluster("c1", dc)
    eng.add_storage_domain("sd", dc, master=True)
    for n in range(count):
        eng.add_vm(f"vm{n:03d}", "c1", memory_mb=1024 * (1 + n % 8), cpus=1 + n % 4,
                   ovf_missing_always=(n == 77), ovf_missing_in_list=(n == 50))
    eng.vms[101].ovf = eng.vms[101].ovf.replace("<Name>", "<Name><broken>", 1)
    return eng


@pytest.fixture
def server(tmp_path):
    eng = big_engine()
    with ReplayEngine([eng.write_cassette(tmp_path / "e.json", page_size=PAGE)]) as s:
        s.synthetic = eng
        yield s


def engine_of(server):
    return Engine(EngineSettings(url=server.url, password="replay-secret", page_size=PAGE))


def test_workers_read_and_capture_exactly_what_one_process_does(server):
    with engine_of(server) as engine:
        inline = [(vm, c) for vm, c in captured(engine, workers=0)]
    with engine_of(server) as engine:
        pooled = [(vm, c) for vm, c in captured(engine, workers=2)]
    assert [vm.name for vm, _ in pooled] == [vm.name for vm in server.synthetic.vms]
    assert pooled == inline
    failed = {vm.name: c.error for vm, c in pooled if not c.ok}
    assert set(failed) == {"vm077", "vm101"}
    assert "no OVF" in failed["vm077"] and "malformed OVF XML" in failed["vm101"]
    vm050 = next(c for vm, c in pooled if vm.name == "vm050")     # locked: fetched again
    assert vm050.identity is not None and vm050.identity.name == "vm050"
    # the workers read with the main process's session: one login and one logout per run
    logins = [r for r in server.received if r.path.endswith("/sso/oauth/token")]
    logouts = [r for r in server.received if r.path.endswith("/sso-logout")]
    assert len(logins) == len(logouts) == 2


@pytest.mark.parametrize("workers", [0, 1])
def test_a_large_backup_is_the_same_with_and_without_workers(server, tmp_path, workers,
                                                            session_of):
    handle = session_of(["localdb"], {"localdb": {"path": str(tmp_path / f"w{workers}.sqlite")}}
                        ).handles[0]
    with engine_of(server) as engine:
        report = run_backup(engine, [handle], system="big", workers=workers)
    assert report.vms_seen == 130 and report.vms_backed_up == 128
    assert len(report.skipped) == 2
    by_name = {i.name: i.ovf_hash for i in gather([handle], Engine(None), Query()).items}
    assert len(by_name) == 128 and "vm077" not in by_name and "vm101" not in by_name
    assert by_name["vm100"] == ovf_hash(server.synthetic.vms[100].ovf)


@pytest.mark.parametrize("noticed", [False, True], ids=["at-once", "noticed-first"])
def test_workers_that_die_leave_the_rest_to_the_main_process(server, tmp_path, caplog,
                                                            session_of, noticed):
    """``noticed``: the pool has seen its workers die before the run asks for the next page
    (it then refuses new work, not only results)."""
    session = session_of(["localdb"], {"localdb": {"path": str(tmp_path / "c.sqlite")}})
    pm, handle = session.pm, session.handles[0]
    killed = []

    def after(outcome, hook_name, impls, kwargs):
        if hook_name == "write_ovf" and not killed:
            for child in multiprocessing.active_children():   # a real crash of the workers
                os.kill(child.pid, signal.SIGKILL)
                killed.append(child.pid)
            if noticed:
                time.sleep(1.0)          # the pool's manager thread marks the pool broken

    pm.add_hookcall_monitoring(lambda *a: None, after)
    with engine_of(server) as engine:
        report = run_backup(engine, [handle], system="big", workers=1)
    assert killed
    assert report.exit_code == 1 and report.vms_backed_up == 128     # partial: 2 skipped
    assert "reading on in this process" in caplog.text
    assert len({i.name for i in gather([handle], Engine(None), Query()).items}) == 128


def test_the_compressed_ovf_is_the_ovf():
    ovf = big_engine().vms[0].ovf
    capture = capture_one(ovf)
    assert capture.ok and capture.error == "" and capture.identity.name == "vm000"
    assert capture.digest == ovf_hash(ovf)
    assert zlib.decompress(capture.packed).decode("utf-8") == ovf
