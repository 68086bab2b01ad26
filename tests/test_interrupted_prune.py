"""A ``prune`` of the swift store killed mid-way leaves unreferenced OVF objects; ``check``
reports them and the next ``prune`` collects every one (issue 13: 18,001 objects were left
and the next prune removed none of them).

The store is filled through the provider's handle (the host's write path); the prune runs
as a real ``ovirt-backup`` process talking to the loopback Swift through a TCP forwarder,
which is made to hang once deletions have started, and the process is then killed
(``SIGKILL``, as the OOM killer would).
"""
import datetime as dt
import os
import signal
import subprocess
import sys
import time
import uuid

from ovirt_backup_plugin.host import Session
from ovirt_backup_plugin.model import BackupOutcome, Run, VmBackup
from ovirt_backup_plugin.ovf import ovf_hash, pack, seal
from ovirt_backup_plugin.testing import synth

pytest_plugins = ["tests.swift_service"]

VMS = 150


def fill(handle, generations=3):
    """``generations`` runs of VMS VMs, every VM changed in every run; their run ids."""
    runs = []
    start = dt.datetime(2026, 11, 26, 7, 0, tzinfo=dt.timezone.utc)
    for g in range(generations):
        started = start + dt.timedelta(hours=g)
        run = Run(id=f"{started:%Y%m%dT%H%M%SZ}-{g:08x}", started_at=started, system="t",
                  engine_url="http://engine")
        state = handle.before_backup(run, None)
        for n in range(VMS):
            vm_id = str(uuid.uuid5(uuid.NAMESPACE_DNS, f"vm{n}"))
            text = synth.make_ovf(vm_id, f"vm{n:03d}", memory_mb=1024 * (g + 1))
            handle.write_ovf(run, state, VmBackup(
                vm_id=vm_id, name=f"vm{n:03d}", kind="vm", datacenter="DC", cluster="c",
                ovf_hash=ovf_hash(text), blob=seal(pack(text)), ovf=text))
        handle.after_backup(run, state, None, BackupOutcome(ok=True, written=VMS))
        runs.append(run.id)
    return runs


def test_a_prune_killed_mid_way_is_finished_by_the_next_one(
        tmp_path, swift_service, swift_container, swift_netcut, write_config, cli):
    options = swift_service.options(container=swift_container, retries="0")
    handle = Session.for_engine(None, system="test-engine", providers=["swift"],
                                state_dir=str(tmp_path / "state"),
                                provider_options={"swift": options}).handles[0]
    runs = fill(handle)
    assert len(swift_service.names(swift_container, "ovf/")) == 3 * VMS

    def section(**extra):
        return "[provider:swift]\n" + "".join(f"{k} = {v}\n" for k, v in {
            **options, **extra}.items())

    url = "http://127.0.0.1:9/ovirt-engine/api"          # never contacted
    cut = write_config(tmp_path, url, providers="swift",
                       extra=section(**swift_service.via(swift_netcut)))
    proc = subprocess.Popen([sys.executable, "-m", "ovirt_backup_plugin.cli", "--config", cut,
                             "prune", "--keep-last", "1"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=dict(os.environ))
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            left = len(swift_service.names(swift_container, "ovf/"))
            if left < 3 * VMS - 10:
                swift_netcut.hang()                 # no request of it gets through any more
                break
            assert proc.poll() is None, proc.stdout.read().decode()
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
        swift_netcut.restore()
    left = len(swift_service.names(swift_container, "ovf/"))
    assert VMS < left < 3 * VMS - 10 + 5              # killed mid-way
    assert swift_service.names(swift_container, "runs/") == [f"runs/{runs[-1]}.json"]

    direct = write_config(tmp_path, url, providers="swift", extra=section())
    code, out, err = cli("--config", direct, "check")
    assert code == 0, out + err                         # left-overs are not damage
    assert f"{left - VMS} stored OVF(s) no generation references" in out
    assert "1 generation(s)" in out and "clean" in out

    code, out, err = cli("--config", direct, "prune", "--keep-last", "1")
    assert code == 0, out + err
    assert f"swift: removed 0 generation(s) and {left - VMS} stored OVF(s)" in out
    assert len(swift_service.names(swift_container, "ovf/")) == VMS
    code, out, err = cli("--config", direct, "check", "--read-data")
    assert code == 0 and "no generation references" not in out, out + err
    assert f"read {VMS} stored OVF(s) once each" in out
