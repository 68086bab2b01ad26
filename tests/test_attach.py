"""Attaching an engine to an existing store, and refusing two engines in one store."""
import json
import sqlite3

import pytest

from ovirt_backup_plugin.host import Session
from ovirt_backup_plugin.model import EngineIdentity
from ovirt_backup_plugin.stores.ownership import attach
from ovirt_backup_plugin.testing import synth
from ovirt_backup_plugin.testing.replay import ReplayEngine


def other_engine():
    """Another engine (its own data center ids) whose VMs have other names."""
    eng = synth.SyntheticEngine(seed=99)
    dc = eng.add_datacenter("Rebuilt")
    eng.add_cluster("new", dc)
    eng.add_storage_domain("new-data", dc, master=True)
    eng.add_vm("mail01", "new")
    return eng


@pytest.fixture
def names(cli):
    def run(cfg):
        code, out, _ = cli("--config", cfg, "list", "--json")
        return sorted(i["name"] for i in json.loads(out))
    return run


@pytest.fixture
def backup_with(tmp_path, cli, write_config):
    def run(eng, label):
        with ReplayEngine([eng.write_cassette(tmp_path / f"{label}.yaml")]) as server:
            cfg = write_config(tmp_path, server.url)
            code, out, err = cli("--config", cfg, "backup")
        return cfg, code, out
    return run


def test_first_run_claims_the_store(tmp_path, backup_with):
    cfg, code, out = backup_with(synth.demo_engine(), "demo")
    assert code == 0 and "now serves test-engine" in out
    owner = sqlite3.connect(tmp_path / "state" / "catalog.sqlite").execute(
        "SELECT value FROM meta WHERE key='owner'").fetchone()[0]
    assert sorted(json.loads(owner)["datacenter_ids"]) == sorted(
        dc.id for dc in synth.demo_engine().datacenters)


def test_a_second_engine_is_refused_then_attached_with_history(tmp_path, cli, write_config,
                                                              backup_with, names):
    backup_with(synth.demo_engine(), "demo")
    before = names(str(tmp_path / "ovirt-backup.conf"))

    cfg, code, out = backup_with(other_engine(), "other")
    assert code == 2
    assert "serves another engine" in out and "ovirt-backup attach localdb" in out
    assert names(cfg) == before                       # nothing written

    with ReplayEngine([other_engine().write_cassette(tmp_path / "o.yaml")]) as server:
        cfg = write_config(tmp_path, server.url)
        code, out, err = cli("--config", cfg, "attach", "localdb")
        assert code == 2 and "--continue" in err and "--fresh" in err
        code, out, _ = cli("--config", cfg, "attach", "localdb", "--continue")
        assert code == 0
        assert "1 generation(s)" in out and "written by test-engine" in out
        code, out, _ = cli("--config", cfg, "backup")
        assert code == 0, out
    assert names(cfg) == sorted(before + ["mail01"])


def test_attach_fresh_sets_the_old_catalog_aside(tmp_path, cli, write_config, backup_with,
                                                 names):
    backup_with(synth.demo_engine(), "demo")
    with ReplayEngine([other_engine().write_cassette(tmp_path / "o.yaml")]) as server:
        cfg = write_config(tmp_path, server.url)
        code, out, _ = cli("--config", cfg, "attach", "localdb", "--fresh")
        assert code == 0 and "set aside as" in out
        assert names(cfg) == []
        (aside,) = (tmp_path / "state").glob("catalog.set-aside-*.sqlite")
        rows = sqlite3.connect(aside).execute("SELECT count(*) FROM vms").fetchone()[0]
        assert rows == len(synth.demo_engine().vms)            # kept, not deleted
        assert cli("--config", cfg, "backup")[0] == 0
        assert names(cfg) == ["mail01"]
        code, out, _ = cli("--config", cfg, "attach", "localdb")
        assert "already serves this engine" in out and "set aside earlier" in out


def test_interactive_answer_is_used(tmp_path):
    session = Session.for_engine(None, system="t", providers=["localdb"],
                                 state_dir=str(tmp_path),
                                 provider_options={"localdb": {"path": str(tmp_path / "c.sqlite")}})
    handle = session.handles[0]
    old = EngineIdentity("old", "https://old/ovirt-engine/api", ("dc-1",))
    new = EngineIdentity("new", "https://new/ovirt-engine/api", ("dc-2",))
    handle.claim_store(old, False)
    lines = []
    assert attach(handle, new, mode=None, echo=lines.append, ask=lambda prompt: "q") == 0
    assert "nothing changed" in lines
    assert handle.describe_store().owner == old
    assert attach(handle, new, mode=None, echo=lines.append, ask=lambda prompt: "c") == 0
    assert handle.describe_store().owner == new
