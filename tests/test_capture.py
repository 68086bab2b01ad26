"""OVFs parsed by worker processes give exactly what parsing in-process gives."""
import pytest

from ovirt_backup_plugin import synth
from ovirt_backup_plugin.backup import run_backup
from ovirt_backup_plugin.capture import CHUNK, captured
from ovirt_backup_plugin.engine import Engine, EngineSettings
from ovirt_backup_plugin.host import ProviderHandle
from ovirt_backup_plugin.model import ProviderSettings
from ovirt_backup_plugin.plugins import get_plugin_manager
from ovirt_backup_plugin.replay import ReplayEngine
from ovirt_backup_plugin.restore import gather


def big_engine(count):
    eng = synth.SyntheticEngine(seed=11)
    dc = eng.add_datacenter("DC")
    eng.add_cluster("c1", dc)
    eng.add_storage_domain("sd", dc, master=True)
    for n in range(count):
        eng.add_vm(f"vm{n:03d}", "c1", memory_mb=1024 * (1 + n % 8), cpus=1 + n % 4,
                   ovf_missing_always=(n == 77))
    eng.vms[101].ovf = eng.vms[101].ovf.replace("<Name>", "<Name><broken>", 1)
    return eng


class Vm:
    def __init__(self, ovf):
        self.ovf = ovf


def test_captured_keeps_order_and_reports_each_failure():
    eng = big_engine(3 * CHUNK + 7)
    vms = [Vm(vm.ovf) for vm in eng.vms]
    vms[77].ovf = None
    inline = list(captured(vms, workers=0))
    pooled = list(captured(vms, workers=1))
    assert [vm for vm, _ in pooled] == vms
    assert pooled == inline
    assert [n for n, (_, (identity, *_)) in enumerate(pooled) if identity is None] == [77, 101]
    assert "no OVF" in pooled[77][1][3] and "malformed OVF XML" in pooled[101][1][3]


@pytest.mark.parametrize("workers", [0, 1])
def test_a_large_backup_is_the_same_with_and_without_workers(tmp_path, workers):
    eng = big_engine(2 * CHUNK + 30)
    settings = ProviderSettings(name="localdb",
                                options={"path": str(tmp_path / f"w{workers}.sqlite")})
    handle = ProviderHandle(get_plugin_manager(["localdb"]), "localdb", settings)
    with ReplayEngine([eng.write_cassette(tmp_path / "e.json", page_size=40)]) as server:
        with Engine(EngineSettings(url=server.url, password="replay-secret",
                                   page_size=40)) as engine:
            report = run_backup(engine, [handle], system="big", workers=workers)
    assert report.vms_seen == 130 and report.vms_backed_up == 128
    assert len(report.skipped) == 2
    items = gather([handle], Engine(None)).items
    by_name = {i.name: i.ovf_hash for i in items}
    assert len(by_name) == 128 and "vm077" not in by_name and "vm101" not in by_name
    from ovirt_backup_plugin.ovf import ovf_hash
    assert by_name["vm100"] == ovf_hash(eng.vms[100].ovf)


def test_the_compressed_ovf_is_the_ovf():
    import zlib

    from ovirt_backup_plugin.capture import capture_one

    ovf = big_engine(102).vms[0].ovf
    identity, digest, packed, error = capture_one(ovf)
    assert error == "" and identity.name == "vm000"
    assert zlib.decompress(packed).decode("utf-8") == ovf
