"""What a backup records of each VM besides its OVF: the engine's cluster (restore's default
target when the OVF names none), and names derived from VM names that are safe and bounded.

Through the CLI, the real SDK over HTTP and a replay engine.
"""
import os

from ovirt_backup_plugin.ovf import parse_ovf
from ovirt_backup_plugin.testing import synth


def test_an_ovf_naming_no_cluster_restores_into_the_cluster_recorded_at_backup(
        tmp_path, real_engine, cli, listed, write_config, serve, posted_vms):
    text = (real_engine / "ovf" / "virt-v2v_vmOvfData2.xml").read_text(encoding="utf-8")
    identity = parse_ovf(text)
    assert identity.cluster == ""                       # virt-v2v writes no ClusterName
    eng = synth.demo_engine()
    eng._extra.clear()
    vm = eng.add_vm(identity.name, "prod-b", id=identity.id)
    vm.ovf = text
    eng.add_restore(identity.name, cluster="prod-b", vm_id=identity.id)
    with serve(tmp_path, eng) as server:
        cfg = write_config(tmp_path, server.url)
        code, out, err = cli("--config", cfg, "backup")
        assert code == 0, (out, err)
        assert listed(cfg)[identity.name]["cluster"] == "prod-b"
        code, out, err = cli("--config", cfg, "restore", identity.name)
        # Restored with a warning (exit 1): this engine has no vNIC profile the
        # virt-v2v OVF names, so that NIC came back without one.
        assert code == 1, (out, err)
        assert "restored 1, failed 0 (1 with warnings)" in out
        assert "DPG_VMNetwork" in out
    (body,) = posted_vms(server)
    assert body.findtext("cluster/name") == "prod-b"
    assert body.findtext("initialization/configuration/data") == text
    assert "no target cluster" not in out + err


def test_a_600_byte_vm_name_is_stored_by_the_debug_provider_safely_and_uniquely(
        tmp_path, cli, write_config, serve):
    eng = synth.demo_engine()
    long_name = "é/" * 100 + "x" * 300                   # 600 bytes in UTF-8, with separators
    assert len(long_name.encode()) == 600
    first = eng.add_vm(long_name, "prod-a")
    second = eng.add_vm(long_name[:-1] + "y", "prod-a")  # the same first 100 characters
    with serve(tmp_path, eng) as server:
        cfg = write_config(tmp_path, server.url, providers="debug")
        code, out, err = cli("--config", cfg, "backup")
    assert code == 0, (out, err)
    assert "provider debug failed" not in out and "8/8 VMs" in out
    (run_dir,) = [p for p in (tmp_path / "state" / "debug").iterdir() if p.is_dir()]
    files = {p.name: p for p in run_dir.iterdir()}
    ours = {name: path for name, path in files.items()
            if name.endswith((f"_{first.id}.ovf", f"_{second.id}.ovf"))}
    assert len(ours) == 2                                # unique although the names clash
    for name, path in ours.items():
        assert len(name.encode()) < 255 and os.sep not in name and "\x00" not in name
        assert name.isascii() and not name.startswith(".")
        assert path.read_text() in (first.ovf, second.ovf)
