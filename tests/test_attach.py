"""Attaching an engine to an existing store, and refusing two engines in one store."""
import json
import sqlite3

import pytest

from ovirt_backup_plugin import synth
from ovirt_backup_plugin.host import ProviderHandle
from ovirt_backup_plugin.model import EngineIdentity, ProviderSettings
from ovirt_backup_plugin.plugins import get_plugin_manager
from ovirt_backup_plugin.replay import ReplayEngine
from ovirt_backup_plugin.stores import attach
from tests.test_spine import cli, write_config


@pytest.fixture(autouse=True)
def engine_password(monkeypatch):
    monkeypatch.setenv("TEST_ENGINE_PASSWORD", "replay-secret")


def other_engine():
    """Another engine (its own data center ids) whose VMs have other names."""
    eng = synth.SyntheticEngine(seed=99)
    dc = eng.add_datacenter("Rebuilt")
    eng.add_cluster("new", dc)
    eng.add_storage_domain("new-data", dc, master=True)
    eng.add_vm("mail01", "new")
    return eng


def names(capsys, cfg):
    code, out, _ = cli(capsys, "--config", cfg, "list", "--json")
    return sorted(i["name"] for i in json.loads(out))


def backup_with(tmp_path, capsys, eng, label):
    with ReplayEngine([eng.write_cassette(tmp_path / f"{label}.yaml")]) as server:
        cfg = write_config(tmp_path, server.url)
        code, out, err = cli(capsys, "--config", cfg, "backup")
    return cfg, code, out


def test_first_run_claims_the_store(tmp_path, capsys):
    cfg, code, out = backup_with(tmp_path, capsys, synth.demo_engine(), "demo")
    assert code == 0 and "now serves test-engine" in out
    owner = sqlite3.connect(tmp_path / "state" / "catalog.sqlite").execute(
        "SELECT value FROM meta WHERE key='owner'").fetchone()[0]
    assert sorted(json.loads(owner)["datacenter_ids"]) == sorted(
        dc.id for dc in synth.demo_engine().datacenters)


def test_a_second_engine_is_refused_then_attached_with_history(tmp_path, capsys):
    backup_with(tmp_path, capsys, synth.demo_engine(), "demo")
    before = names(capsys, str(tmp_path / "ovirt-backup.conf"))

    cfg, code, out = backup_with(tmp_path, capsys, other_engine(), "other")
    assert code == 2
    assert "serves another engine" in out and "ovirt-backup attach localdb" in out
    assert names(capsys, cfg) == before                       # nothing written

    with ReplayEngine([other_engine().write_cassette(tmp_path / "o.yaml")]) as server:
        cfg = write_config(tmp_path, server.url)
        code, out, err = cli(capsys, "--config", cfg, "attach", "localdb")
        assert code == 2 and "--continue" in err and "--fresh" in err
        code, out, _ = cli(capsys, "--config", cfg, "attach", "localdb", "--continue")
        assert code == 0
        assert "1 generation(s)" in out and "written by test-engine" in out
        code, out, _ = cli(capsys, "--config", cfg, "backup")
        assert code == 0, out
    assert names(capsys, cfg) == sorted(before + ["mail01"])


def test_attach_fresh_sets_the_old_catalog_aside(tmp_path, capsys):
    backup_with(tmp_path, capsys, synth.demo_engine(), "demo")
    with ReplayEngine([other_engine().write_cassette(tmp_path / "o.yaml")]) as server:
        cfg = write_config(tmp_path, server.url)
        code, out, _ = cli(capsys, "--config", cfg, "attach", "localdb", "--fresh")
        assert code == 0 and "set aside as" in out
        assert names(capsys, cfg) == []
        (aside,) = (tmp_path / "state").glob("catalog.set-aside-*.sqlite")
        rows = sqlite3.connect(aside).execute("SELECT count(*) FROM vms").fetchone()[0]
        assert rows == len(synth.demo_engine().vms)            # kept, not deleted
        assert cli(capsys, "--config", cfg, "backup")[0] == 0
        assert names(capsys, cfg) == ["mail01"]
        code, out, _ = cli(capsys, "--config", cfg, "attach", "localdb")
        assert "already serves this engine" in out and "set aside earlier" in out


def test_interactive_answer_is_used(tmp_path):
    settings = ProviderSettings(name="localdb", options={"path": str(tmp_path / "c.sqlite")})
    handle = ProviderHandle(get_plugin_manager(["localdb"]), "localdb", settings)
    old = EngineIdentity("old", "https://old/ovirt-engine/api", ("dc-1",))
    new = EngineIdentity("new", "https://new/ovirt-engine/api", ("dc-2",))
    handle.call("claim_store", owner=old, fresh=False)
    lines = []
    assert attach(handle, new, mode=None, echo=lines.append, ask=lambda prompt: "q") == 0
    assert "nothing changed" in lines
    assert handle.call("describe_store").owner == old
    assert attach(handle, new, mode=None, echo=lines.append, ask=lambda prompt: "c") == 0
    assert handle.call("describe_store").owner == new
