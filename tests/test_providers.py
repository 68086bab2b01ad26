"""Several providers per system, noop, debug, and `ovirt-backup providers`."""
import json

import pytest

from ovirt_backup_plugin import __version__, hookimpl
from ovirt_backup_plugin.errors import ConfigError
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
    assert rows["localdb"][1:6] == ["ovirt-backup-plugin", __version__, "yes", "built-in",
                                    "ovf-copies"]
    assert rows["msd"][3:6] == ["yes", "built-in", "engine-side"]
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


def test_a_typo_in_a_provider_section_is_refused_with_the_closest_key(tmp_path, cli, write_config):
    cfg = write_config(tmp_path, "http://127.0.0.1:9/ovirt-engine/api",
                       extra="[provider:localdb]\npathh = /tmp/x.sqlite\n")
    code, out, err = cli("--config", cfg, "list")
    assert code == 2
    assert "[provider:localdb] has an unknown key 'pathh'; did you mean 'path'?" in err
    assert "keep_last" in err and "retries" in err         # the host's keys are listed too


def test_host_keys_never_reach_the_provider(session_of):
    (handle,) = session_of(["localdb"], {"localdb": {"retries": "5", "keep_last": "3",
                                                     "datacenter": "Lab"}}).handles
    assert set(handle.settings.options) == {"path", "busy_timeout"}
    assert (handle.host.retries, handle.host.retention, handle.settings.datacenter) == (
        5, {"keep_last": "3"}, "Lab")


def test_a_section_for_a_provider_that_is_not_enabled_is_warned_about(tmp_path, cli,
                                                                     write_config, caplog):
    cfg = write_config(tmp_path, "http://127.0.0.1:9/ovirt-engine/api",
                       extra="[provider:locadb]\npath = /tmp/x.sqlite\n")
    code, out, err = cli("--config", cfg, "list")
    assert code == 0
    assert "[provider:locadb] name no enabled provider" in caplog.text


def test_unknown_sections_and_keys_of_the_fixed_sections_are_refused(tmp_path, cli):
    cfg = tmp_path / "c.conf"
    cfg.write_text("[engine]\nurl = https://e.example.com/ovirt-engine/api\ntimeuot = 3\n")
    code, _, err = cli("--config", str(cfg), "list")
    assert code == 2 and "[engine] has an unknown key 'timeuot'; did you mean 'timeout'?" in err
    cfg.write_text("[backups]\nproviders = localdb\n")
    code, _, err = cli("--config", str(cfg), "list")
    assert code == 2 and "unknown section [backups]; did you mean [backup]?" in err


class _Stores:
    """Stores OVFs but cannot list them: refused when registered."""

    @staticmethod
    @hookimpl
    def write_ovf(vm, settings):
        return True


def test_a_provider_that_stores_but_cannot_list_is_refused():
    from ovirt_backup_plugin.host.plugins import get_plugin_manager

    with pytest.raises(ConfigError, match="stores OVFs .write_ovf. but cannot list them"):
        get_plugin_manager([], extra=[("half", _Stores())])
