"""Conformance with what real engines sent: the engine adapter and a backup run on the
recordings in ../shared/real-engine (read in place, with cassettes/sso.yaml for the login,
which those recordings lack).

The recordings were made by another client (the Ruby SDK, ManageIQ), so they hold
``GET /vms`` without ``all_content`` and no paged search: the replay answers those
requests by method and path (``fallback="path"``, each use logged), which is exactly the
"engine lists VMs without their OVF" case. VMs whose single ``GET /vms/{id}?all_content=true``
was recorded are backed up; the others are reported and the run still finishes.
"""
import pytest

from ovirt_backup_plugin.backup.run import run_backup
from ovirt_backup_plugin.engine import Engine, EngineSettings
from ovirt_backup_plugin.errors import EngineError
from ovirt_backup_plugin.model import Query
from ovirt_backup_plugin.ovf import ovf_hash
from ovirt_backup_plugin.restore.listing import gather
from ovirt_backup_plugin.testing.replay import ReplayEngine

RECORDINGS = {
    "miq_v4__refresher_reconfigure_with_no_restart_needed_recording.yaml": {
        "datacenters": 1, "vms": 2, "with_ovf": {"17a94da8-3d02-430e-9b83-5e39f92907e8"}},
    "miq_v4__ovirt_lans_refresh_recording.yaml": {"datacenters": 2, "vms": 5, "with_ovf": set()},
    "miq_v4__ovirt_sdk_refresh_recording.yaml": {"datacenters": None, "vms": None,
                                                 "with_ovf": set()},
}
RHEL7S = "17a94da8-3d02-430e-9b83-5e39f92907e8"


@pytest.fixture
def replay(real_engine, cassettes_dir):
    def serve(name):
        return ReplayEngine([real_engine / "cassettes" / name, cassettes_dir / "sso.yaml"],
                            fallback="path")
    return serve


def engine_for(server):
    return Engine(EngineSettings(url=server.url, password="replay-secret", retries=0))


@pytest.mark.parametrize("name", sorted(RECORDINGS))
def test_the_adapter_enumerates_a_real_inventory(replay, name):
    expected = RECORDINGS[name]
    with replay(name) as server, engine_for(server) as engine:
        datacenters = engine.datacenters()
        clusters = engine.clusters()
        assert datacenters and clusters
        if expected["datacenters"] is not None:
            assert len(datacenters) == expected["datacenters"]
        dc_ids = {dc.id for dc in datacenters}
        assert all(c.datacenter_id in dc_ids or c.datacenter_id == "" for c in clusters)
        masters = []
        for dc in datacenters:
            try:
                domains = engine.storage_domains(dc.name)
            except EngineError as e:        # a data center whose domains were not recorded
                assert e.code == 404 and "not found" in str(e), e
                continue
            assert all(sd.id and sd.name for sd in domains)
            masters += [sd for sd in domains if sd.master]
        assert masters, "every recording has at least one data center with a master domain"
        vms = list(engine.iter_vms())
        if expected["vms"] is not None:
            assert len(vms) == expected["vms"]
        assert {vm.id for vm in vms if vm.ovf} == expected["with_ovf"]
        assert all(vm.name for vm in vms)
    assert server.unmatched == [] or all("/vms/" in u for u in server.unmatched)


def test_a_backup_of_the_real_engine_keeps_rhel7s_and_reports_the_rest(real_engine, replay,
                                                                       session_of, tmp_path):
    name = "miq_v4__refresher_reconfigure_with_no_restart_needed_recording.yaml"
    handle = session_of(["localdb"], {"localdb": {"path": str(tmp_path / "c.sqlite")}}).handles[0]
    with replay(name) as server, engine_for(server) as engine:
        report = run_backup(engine, [handle], system="real")
    assert report.exit_code == 1                      # partial: one VM without an OVF
    assert report.vms_seen == 2 and report.vms_backed_up == 1
    (skipped,) = report.skipped
    assert "022ce494-f739-40a3-a29a-d26ce125f696" in skipped and "no OVF" in skipped
    assert report.providers["localdb"].ok

    (item,) = gather([handle], Engine(None), Query()).items
    ovf = (real_engine / "ovf" / "rhel7s_17a94da8.ovf").read_text()
    assert (item.vm_id, item.name, item.cluster) == (RHEL7S, "rhel7s", "depot_cl")
    assert item.ovf_hash == ovf_hash(ovf)
    checked = handle.read_checked(item)
    identity = checked.identity
    assert (identity.os, identity.memory_mb, identity.cpus, identity.cluster_version) == (
        "rhel_7x64", 3072, 2, "4.3")
    assert [d.alias for d in identity.disks] == ["rhel7s_Disk1"]
    assert checked.text == ovf
    assert any("fallback" in f or "/vms" in f for f in server.fallbacks)
