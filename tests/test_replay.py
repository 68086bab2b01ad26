"""The replay server, exercised through the real ovirtsdk4 over loopback HTTP."""
import logging
import subprocess
import sys
import time
from pathlib import Path

import ovirtsdk4 as sdk
import pytest
from ovirtsdk4 import types

from ovirt_backup_plugin.testing import synth
from ovirt_backup_plugin.testing.replay import ReplayEngine
from ovirt_backup_plugin.testing.scrub import scrub_form, scrub_headers, scrub_json

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CASSETTES = PROJECT_ROOT / "cassettes"
PASSWORD = "replay-secret"
TOKEN = "replay-token"
DEMO = CASSETTES / "demo-engine.yaml"
SSO = CASSETTES / "sso.yaml"
REAL = "cassettes/miq_v4__refresher_reconfigure_with_no_restart_needed_recording.yaml"
RHEL7S = "17a94da8-3d02-430e-9b83-5e39f92907e8"


@pytest.fixture(scope="module")
def demo():
    return synth.demo_engine()


@pytest.fixture
def engine():
    with ReplayEngine([DEMO]) as eng:
        yield eng


def connect(eng, password=PASSWORD):
    return sdk.Connection(url=eng.url, username=eng.username, password=password)


def vm_id(demo, name):
    return next(vm.id for vm in demo.vms if vm.name == name)


def restore(conn, name, ovf="<ovf/>"):
    return conn.system_service().vms_service().add(types.Vm(
        name=name, cluster=types.Cluster(name="prod-a"),
        initialization=types.Initialization(configuration=types.Configuration(
            type=types.ConfigurationType.OVF, data=ovf))))


# -- the SDK session ----------------------------------------------------------------------
def test_token_is_served_and_a_page_lists_vms_with_their_ovf(engine):
    conn = connect(engine)
    vms = conn.system_service().vms_service().list(all_content=True, max=100, search="page 1")

    assert engine.username == "admin@internal"
    assert [r.path for r in engine.received[:2]] == ["/ovirt-engine/sso/oauth/token",
                                                   "/ovirt-engine/api/vms"]
    assert engine.received[1].query == {"all_content": "true", "max": "100", "search": "page 1"}
    assert [vm.name for vm in vms] == ["web01", "db01", "app01", "win-ad01", "lab-build01",
                                       "lab-db01"]
    web01 = vms[0]
    ovf = web01.initialization.configuration.data
    assert isinstance(ovf, str) and "<Name>web01</Name>" in ovf
    assert web01.initialization.configuration.type == types.ConfigurationType.OVF
    assert vms[-1].status == types.VmStatus.IMAGE_LOCKED and vms[-1].initialization is None
    conn.close()


def test_single_get_returns_the_ovf_the_list_left_out(engine, demo):
    conn = connect(engine)
    vm = conn.system_service().vms_service().vm_service(vm_id(demo, "lab-db01")).get(
        all_content=True)
    assert "<Name>lab-db01</Name>" in vm.initialization.configuration.data
    assert engine.received[-1].query == {"all_content": "true"}
    conn.close()


def test_close_sends_the_logout(engine):
    conn = connect(engine)
    conn.system_service().data_centers_service().list()
    conn.close()
    last = engine.received[-1]
    assert (last.method, last.path) == ("POST", "/ovirt-engine/services/sso-logout")
    assert last.body == "scope=ovirt-app-api&token=***"
    assert engine.unmatched == []


def test_recorded_gets_repeat(engine):
    conn = connect(engine)
    dcs = conn.system_service().data_centers_service()
    assert [d.name for d in dcs.list()] == [d.name for d in dcs.list()] == ["Production", "Lab"]
    conn.close()


def test_unknown_entity_is_not_found_like_an_engine(engine, caplog):
    conn = connect(engine)
    with caplog.at_level(logging.WARNING, logger="ovirt_backup_plugin.testing.replay"):
        with pytest.raises(sdk.NotFoundError) as err:
            conn.system_service().vms_service().vm_service("no-such-vm").get()
    assert err.value.code == 404
    assert err.value.fault.reason == "Operation Failed"
    assert err.value.fault.detail == ("replay: no recorded interaction for "
                                      "GET /ovirt-engine/api/vms/no-such-vm")
    assert engine.unmatched == ["GET /ovirt-engine/api/vms/no-such-vm"]
    assert "no recorded interaction" in caplog.text
    conn.close()


def test_wrong_password_is_an_auth_error(engine):
    conn = connect(engine, password="not-the-password")
    with pytest.raises(sdk.AuthError, match="username or password is incorrect"):
        conn.system_service().vms_service().list()
    token_request = engine.received[0]
    assert token_request.body.endswith("password=***rejected***")
    assert all("not-the-password" not in repr(r) for r in engine.received)
    # the API was never reached without a token
    assert [r.path for r in engine.received] == ["/ovirt-engine/sso/oauth/token"]


def test_unknown_user_is_denied_without_inventing_a_token(engine):
    conn = sdk.Connection(url=engine.url, username="nobody@internal", password=PASSWORD)
    with pytest.raises(sdk.AuthError, match="access_denied"):
        conn.system_service().vms_service().list()
    assert engine.unmatched == ["POST /ovirt-engine/sso/oauth/token"]


# -- fallback and strict mode ---------------------------------------------------------------
def test_strict_mode_answers_404_for_a_query_the_cassette_lacks(engine):
    conn = connect(engine)
    with pytest.raises(sdk.NotFoundError):
        conn.system_service().vms_service().list(all_content=True, max=100, search="page 7")
    assert engine.unmatched == ["GET /ovirt-engine/api/vms?all_content=true&max=100"
                                "&search=page+7"]
    assert engine.fallbacks == []
    conn.close()


def test_path_fallback_serves_a_query_the_cassette_lacks_and_says_so(caplog):
    with ReplayEngine([DEMO], fallback="path") as eng:
        conn = connect(eng)
        with caplog.at_level(logging.WARNING, logger="ovirt_backup_plugin.testing.replay"):
            vms = conn.system_service().vms_service().list(all_content=True, max=100,
                                                           search="page 7")
        conn.close()
    assert [vm.name for vm in vms][:1] == ["web01"]
    assert eng.fallbacks == ["GET /ovirt-engine/api/vms?all_content=true&max=100"
                             "&search=page+7"]
    assert eng.unmatched == []
    assert any(r.levelno == logging.WARNING and "fallback" in r.getMessage()
               for r in caplog.records)


def test_fallback_must_be_known():
    with pytest.raises(ValueError):
        ReplayEngine([DEMO], fallback="anything")


# -- POST /vms --------------------------------------------------------------------------------
def test_post_vms_is_answered_by_the_name_it_asks_for_then_the_last_answer_again(engine):
    """A recorded ``POST /vms`` marked ``X-Replay-Body: subset`` answers the request whose
    body has its ``<name>``, whatever OVF it carries and in whatever order requests come."""
    conn = connect(engine)
    second = restore(conn, "web01-2")
    first = restore(conn, "web01-1", ovf="<ovf>another</ovf>")
    again = restore(conn, "web01-1")
    assert (first.name, second.name, again.name) == ("web01-1", "web01-2", "web01-1")
    assert again.id == first.id != second.id
    with pytest.raises(sdk.NotFoundError):
        restore(conn, "copy0")                        # no answer recorded for that name
    conn.close()


def test_a_conflict_after_a_success(tmp_path):
    eng = synth.SyntheticEngine(seed=3)
    dc = eng.add_datacenter("DC")
    eng.add_cluster("prod-a", dc)
    eng.add_restore("again", status=201)
    eng.add_restore("again", status=409)
    cassette = eng.write_cassette(tmp_path / "restore.yaml")
    with ReplayEngine([cassette]) as server:
        conn = connect(server)
        assert restore(conn, "again").name == "again"
        with pytest.raises(sdk.Error) as err:
            restore(conn, "again")
        conn.close()
    assert err.value.code == 409
    assert err.value.fault.detail == synth.CONFLICT_ID


def test_a_body_over_one_mebibyte_is_received(engine):
    """libcurl sends ``Expect: 100-continue`` for such bodies; the server must cope."""
    conn = connect(engine)
    big = "<ovf>" + "x" * (1100 * 1024) + "</ovf>"
    assert restore(conn, "web01-1", ovf=big).name == "web01-1"
    assert len(engine.received[-1].body) > 1024 * 1024
    conn.close()


# -- cassettes, secrets, timing, CLI ------------------------------------------------------------
def test_a_json_cassette_loads(tmp_path, demo):
    cassette = demo.write_cassette(tmp_path / "demo.json")
    with ReplayEngine([cassette]) as eng:
        conn = connect(eng)
        assert [c.name for c in conn.system_service().clusters_service().list()] == [
            "prod-a", "prod-b", "lab"]
        conn.close()


def test_later_cassettes_are_searched_after_earlier_ones(tmp_path):
    first = synth.SyntheticEngine(seed=1)
    first.add_datacenter("First")
    second = synth.SyntheticEngine(seed=2)
    second.add_datacenter("Second")
    a = first.write_cassette(tmp_path / "a.yaml", sso=False)
    b = second.write_cassette(tmp_path / "b.yaml")
    with ReplayEngine([a, b]) as eng:
        conn = connect(eng)
        dcs = conn.system_service().data_centers_service()
        assert [[d.name for d in dcs.list()] for _ in range(3)] == [["First"], ["Second"],
                                                                   ["Second"]]
        conn.close()


def test_secrets_never_reach_received_or_the_log(engine, caplog):
    with caplog.at_level(logging.DEBUG, logger="ovirt_backup_plugin.testing.replay"):
        conn = connect(engine)
        conn.system_service().vms_service().list(all_content=True, max=100, search="page 1")
        conn.close()
        with pytest.raises(sdk.AuthError):
            connect(engine, password="wrong-" + PASSWORD).system_service().vms_service().list()
    assert len(engine.received) == 4
    for secret in (PASSWORD, TOKEN):
        assert all(secret not in repr(r) for r in engine.received)
        assert secret not in caplog.text


def test_delay_is_applied_per_request():
    with ReplayEngine([DEMO], delay=0.15) as eng:
        conn = connect(eng)
        start = time.monotonic()
        conn.system_service().data_centers_service().list()       # token + GET
        elapsed = time.monotonic() - start
        conn.close(logout=False)
    assert elapsed >= 0.3


def test_command_line_prints_the_url_first_and_serves():
    proc = subprocess.Popen(
        [sys.executable, "-m", "ovirt_backup_plugin.testing.replay", str(DEMO), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=PROJECT_ROOT)
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/ovirt-engine/api")
        conn = sdk.Connection(url=url, username="admin@internal", password=PASSWORD)
        assert [d.name for d in conn.system_service().data_centers_service().list()] == [
            "Production", "Lab"]
        conn.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.returncode == 0


def test_url_needs_a_started_server():
    eng = ReplayEngine([SSO])
    with pytest.raises(RuntimeError):
        _ = eng.url


# -- scrubbing ------------------------------------------------------------------------------
def test_scrub_form_masks_only_secret_fields():
    body = "grant_type=password&username=admin%40internal&password=s3cr%26t&scope=x"
    assert scrub_form(body) == "grant_type=password&username=admin%40internal&password=***&scope=x"
    assert scrub_form("scope=ovirt-app-api&token=abc") == "scope=ovirt-app-api&token=***"
    assert scrub_form("access_token=a&refresh_token=b&max=1") == (
        "access_token=***&refresh_token=***&max=1")
    assert scrub_form("") == ""


def test_scrub_json_masks_tokens_in_text_documents_and_broken_text():
    text = '{"access_token": "abc", "token_type": "bearer", "nested": {"id_token": "x"}}'
    assert scrub_json(text) == ('{"access_token":"***","token_type":"bearer",'
                                '"nested":{"id_token":"***"}}')
    assert scrub_json({"password": "p", "user": "u"}) == {"password": "***", "user": "u"}
    assert scrub_json(b'{"refresh_token": "r"}') == b'{"refresh_token":"***"}'
    assert "abc" not in scrub_json('{"access_token": "abc", broken')
    assert scrub_json('{"scope": "ovirt-app-api"}') == '{"scope": "ovirt-app-api"}'


def test_scrub_headers_drops_credentials_and_masks_swift_tokens():
    headers = {"Authorization": "Bearer t", "cookie": "JSESSIONID=1", "Set-Cookie": ["a=b"],
               "X-Auth-Token": "AUTH_tk", "x-storage-token": ["AUTH_tk"],
               "Content-Type": "application/xml"}
    assert scrub_headers(headers) == {"X-Auth-Token": "***", "x-storage-token": ["***"],
                                      "Content-Type": "application/xml"}


# -- a real engine's recording ------------------------------------------------------------------
def test_a_real_engine_recording_is_served_to_the_sdk(real_engine):
    with ReplayEngine([real_engine / REAL, SSO]) as eng:
        conn = connect(eng)
        system = conn.system_service()
        clusters = system.clusters_service().list()
        dcs = system.data_centers_service().list()
        domains = system.data_centers_service().data_center_service(
            dcs[0].id).storage_domains_service().list()
        vms = system.vms_service().list()
        vm = system.vms_service().vm_service(RHEL7S).get(all_content=True)
        conn.close()
    assert sorted(c.name for c in clusters) == ["Default", "depot_cl"]
    assert [d.name for d in dcs] == ["depot_dc"]
    assert [(sd.name, sd.type) for sd in domains if sd.master] == [
        ("depot_one", types.StorageDomainType.DATA)]
    assert sorted(v.name for v in vms) == ["deb10", "rhel7s"]
    ovf = vm.initialization.configuration.data
    assert ovf == (real_engine / "ovf" / "rhel7s_17a94da8.ovf").read_text()
    assert eng.unmatched == [] and eng.fallbacks == []
