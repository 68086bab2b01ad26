"""Several providers per system, noop, debug, and `ovirt-backup providers`."""
import json

import pytest

from ovirt_backup_plugin.testing import synth
from ovirt_backup_plugin.testing.replay import ReplayEngine

pytest_plugins = ["tests.swift_service"]


@pytest.fixture
def server(tmp_path):
    with ReplayEngine([synth.demo_engine().write_cassette(tmp_path / "e.yaml")]) as s:
        yield s


def swift_section(service, container, netcut):
    options = service.options(container=container, retries="0", **service.via(netcut))
    return "[provider:swift]\n" + "".join(f"{k} = {v}\n" for k, v in options.items())


@pytest.fixture
def names(cli):
    def run(cfg, provider):
        code, out, _ = cli("--config", cfg, "list", "--json")
        return sorted(i["name"] for i in json.loads(out) if provider in i["providers"])
    return run


def test_one_provider_down_does_not_stop_the_others_and_is_caught_up(
        tmp_path, server, swift_service, swift_container, swift_netcut, cli, write_config,
        names):
    cfg = write_config(tmp_path, server.url, providers="localdb, swift, debug",
                       extra=swift_section(swift_service, swift_container, swift_netcut))
    swift_netcut.cut()
    code, out, _ = cli("--config", cfg, "backup")
    assert code == 1                                     # partial
    assert "swift FAILED" in out and "localdb ok (6 written, 6 new)" in out
    assert "provider swift failed: swift:" in out
    assert "debug ok (6 written" in out
    code, out, err = cli("--config", cfg, "list")
    assert code == 1 and "provider swift could not list" in err      # still down
    assert "web01" in out                                            # localdb answers

    swift_netcut.restore()
    code, out, _ = cli("--config", cfg, "backup")
    assert code == 0, out
    assert "swift ok (6 written, 6 new)" in out and "localdb ok (6 written, 0 new)" in out
    assert names(cfg, "swift") == names(cfg, "localdb") == sorted(
        vm.name for vm in synth.demo_engine().vms)


def test_noop_only_does_nothing_and_says_so(tmp_path, cli, write_config):
    cfg = write_config(tmp_path, "http://127.0.0.1:9/ovirt-engine/api", providers="")
    code, out, _ = cli("--config", cfg, "backup")
    assert code == 0
    assert "no backup provider is configured, so nothing is stored" in out
    assert "0/0 VMs" in out
    assert not (tmp_path / "state" / "catalog.sqlite").exists()


def test_debug_records_every_call_and_ovf(tmp_path, server, cli, write_config):
    cfg = write_config(tmp_path, server.url, providers="debug")
    assert cli("--config", cfg, "backup")[0] == 0
    debug = tmp_path / "state" / "debug"
    log = (debug / "calls.log").read_text()
    assert log.count(" write_ovf ") == 6
    assert " before_backup " in log and " after_backup run=" in log and "ok=True" in log
    (run_dir,) = [p for p in debug.iterdir() if p.is_dir()]
    web01 = next(vm for vm in synth.demo_engine().vms if vm.name == "web01")
    assert (run_dir / f"web01_{web01.id}.ovf").read_text() == web01.ovf


def test_providers_lists_built_ins_and_hides_debug(tmp_path, cli, write_config):
    cfg = write_config(tmp_path, "http://127.0.0.1:9/ovirt-engine/api", providers="localdb, msd")
    code, out, _ = cli("--config", cfg, "providers")
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
    assert code == 0
    assert {"localdb", "msd", "swift", "noop"} <= set(rows) and "debug" not in rows
    assert rows["localdb"][1:4] == ["ovirt-backup-plugin", rows["localdb"][2], "yes"]
    assert rows["swift"][3] == "no"
    code, out, _ = cli("--config", cfg, "providers", "--all")
    assert "debug" in out


def test_unknown_provider_is_a_clear_error(tmp_path, cli, write_config):
    cfg = write_config(tmp_path, "http://127.0.0.1:9/ovirt-engine/api", providers="localdb, s4")
    code, _, err = cli("--config", cfg, "backup")
    assert code == 2 and "unknown provider(s): s4" in err and "localdb" in err


def test_a_misspelt_hook_fails_at_start_up():
    from ovirt_backup_plugin import hookimpl
    from ovirt_backup_plugin.errors import ConfigError
    from ovirt_backup_plugin.host.plugins import get_plugin_manager

    class Typo:
        @hookimpl
        def write_ovfs(self, run, vm, settings):
            pass

    with pytest.raises(ConfigError, match="'typo' implements a hook that does not exist.*write_ovfs"):
        get_plugin_manager([], extra=[("typo", Typo())])
