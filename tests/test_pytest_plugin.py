"""The pytest plugin (entry point ``pytest11``: ``ovirt_backup``), as a test author uses it.

The ``pytester`` runs start a fresh pytest session in a temporary directory: the fixtures
come from the installed entry point, not from this project's conftest.
"""
import textwrap

import pytest

from ovirt_backup_plugin.backup.run import run_backup
from ovirt_backup_plugin.hooks import localdb
from ovirt_backup_plugin.host import make_handles
from ovirt_backup_plugin.host.config import Config
from ovirt_backup_plugin.model import Query
from ovirt_backup_plugin.restore.listing import gather
from ovirt_backup_plugin.testing import synth

pytest_plugins = ["pytester"]

DEMO_VMS = ["web01", "db01", "app01", "win-ad01", "lab-build01", "lab-db01"]


def small_engine() -> synth.SyntheticEngine:
    eng = synth.SyntheticEngine(seed=3)
    dc = eng.add_datacenter("Branch")
    eng.add_cluster("branch-1", dc)
    eng.add_storage_domain("branch-data", dc, master=True)
    eng.add_vm("kiosk", "branch-1")
    return eng


@pytest.fixture
def user_tests(pytester):
    """A user's test directory: a test file in ``suite/`` and its cassette in ``suite/data/``.

    The cassette has no SSO exchange (like a real recording), so the login only works if
    the plugin adds ``cassettes/sso.yaml``.
    """
    small_engine().write_cassette(pytester.path / "suite" / "data" / "branch.yaml", sso=False)
    pytester.makepyfile(**{"suite/test_user": textwrap.dedent("""
        import pytest

        servers = []

        def test_demo_engine_by_default(ovirt_replay):
            assert ovirt_replay.url.startswith("http://127.0.0.1:")
            assert ovirt_replay.url == ovirt_replay.server.url
            assert (ovirt_replay.username, ovirt_replay.password) == (
                "admin@internal", "replay-secret")
            # connected before the test's first call: the token was asked for already
            assert [r.path for r in ovirt_replay.server.received] == [
                "/ovirt-engine/sso/oauth/token"]
            dcs = ovirt_replay.connection.system_service().data_centers_service().list()
            assert [dc.name for dc in dcs] == ["Production", "Lab"]
            assert [vm.name for vm in ovirt_replay.engine.iter_vms()] == %r
            servers.append(ovirt_replay.server)

        def test_teardown_logged_out_and_stopped_the_server():
            last = servers[0].received[-1]
            assert (last.method, last.path) == ("POST", "/ovirt-engine/services/sso-logout")
            with pytest.raises(RuntimeError, match="not started"):
                servers[0].url

        @pytest.mark.ovirt_cassette("data/branch.yaml")
        def test_marker_selects_a_cassette_beside_the_test(ovirt_replay):
            assert [vm.name for vm in ovirt_replay.engine.iter_vms()] == ["kiosk"]
            assert [dc.name for dc in ovirt_replay.engine.datacenters()] == ["Branch"]

        @pytest.mark.ovirt_cassette(["data/branch.yaml"], fallback="path")
        def test_fallback_is_passed_to_the_server(ovirt_replay):
            vms = ovirt_replay.connection.system_service().vms_service()
            # (a search of ids and names the replay evaluates over a synthesized engine's
            # VMs; this one it does not)
            assert [vm.name for vm in vms.list(search="status=up")] == ["kiosk"]
            assert ovirt_replay.server.fallbacks == [
                "GET /ovirt-engine/api/vms?search=status%%3Dup"]

        @pytest.mark.ovirt_cassette("data/branch.yaml")
        def test_without_fallback_an_unrecorded_request_is_404(ovirt_replay):
            import ovirtsdk4
            vms = ovirt_replay.connection.system_service().vms_service()
            with pytest.raises(ovirtsdk4.NotFoundError):
                vms.list(search="status=up")

        def test_a_fresh_plugin_manager(backup_plugin_manager):
            pm = backup_plugin_manager(["localdb"])
            assert [name for name, _ in pm.list_name_plugin()] == ["localdb"]
            assert backup_plugin_manager(["localdb"]) is not pm
            from ovirt_backup_plugin import hookimpl

            class Mine:
                @hookimpl
                def before_backup(self, note):
                    note("here")
            mine = Mine()
            pm = backup_plugin_manager(extra=[("mine", mine)])
            assert pm.get_plugin("mine") is mine and pm.get_plugin("localdb") is None
    """ % (DEMO_VMS,))})
    return pytester


def test_a_user_test_file_uses_the_fixtures(user_tests):
    result = user_tests.runpytest("--strict-markers", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=6)


def test_the_plugin_is_the_ovirt_backup_entry_point(user_tests):
    result = user_tests.runpytest("-p", "no:ovirt_backup", "-p", "no:cacheprovider",
                                  "-k", "demo_engine_by_default")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'ovirt_replay' not found*"])


def test_a_missing_cassette_is_an_error_naming_it(pytester):
    pytester.makepyfile(test_missing="""
        import pytest

        @pytest.mark.ovirt_cassette("no-such.yaml")
        def test_it(ovirt_replay):
            pass
    """)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*ovirt_cassette: no such cassette: *no-such.yaml*"])


def test_the_contract_is_importable_from_the_plugin():
    from ovirt_backup_plugin.testing import contract, pytest_plugin

    assert pytest_plugin.ProviderContract is contract.ProviderContract
    assert pytest_plugin.ProviderHarness is contract.ProviderHarness


# -- the fixtures used directly in this module --------------------------------------------
def test_a_backup_through_the_fixtures(ovirt_replay, backup_plugin_manager, tmp_path):
    pm = backup_plugin_manager(["localdb"])
    config = Config(engine=None, system="demo", providers=["localdb"], state_dir=str(tmp_path),
                    provider_options={"localdb": {"path": str(tmp_path / "catalog.sqlite")}})
    (handle,) = make_handles(pm, config)
    report = run_backup(ovirt_replay.engine, [handle], system="demo")
    assert report.exit_code == 0, report.summary()
    assert sorted(i.name for i in gather([handle], ovirt_replay.engine, Query()).items) == sorted(
        DEMO_VMS)
    assert pm.get_plugin("localdb") is localdb
    assert ovirt_replay.server.unmatched == []


@pytest.mark.ovirt_cassette("../cassettes/demo-engine.yaml")
def test_marker_in_this_module(ovirt_replay):
    assert ovirt_replay.server.received[0].path == "/ovirt-engine/sso/oauth/token"
    clusters = ovirt_replay.connection.system_service().clusters_service().list()
    assert [c.name for c in clusters] == ["prod-a", "prod-b", "lab"]
