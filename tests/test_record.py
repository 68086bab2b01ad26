"""``ovirt-backup record``: recording through a loopback proxy, then replaying the recording.

A :class:`ReplayEngine` serving the demo inventory stands in for a live engine (plain http,
or https behind a TLS wrapper with a test CA). The real SDK, in the real CLI, talks to it
through :class:`RecordingProxy`; the cassette it writes is then replayed with no engine.
"""
import json
import shutil
import ssl
import subprocess
from contextlib import contextmanager
from pathlib import Path

import ovirtsdk4 as sdk
import pytest
from vcr.persisters.filesystem import FilesystemPersister
from vcr.serializers import jsonserializer, yamlserializer

from ovirt_backup_plugin import cli
from ovirt_backup_plugin.errors import EngineError
from ovirt_backup_plugin.testing import record as record_module
from ovirt_backup_plugin.testing import synth
from ovirt_backup_plugin.testing.record import RecordingProxy, record_command
from ovirt_backup_plugin.testing.replay import ReplayEngine

PASSWORD = "rec-Pa55w0rd-2026"
PASSWORD_ENV = "OVIRT_BACKUP_TEST_RECORD_PASSWORD"
TOKEN = "replay-token"                      # what synth.sso_interactions() hands out
VM_NAMES = {"web01", "db01", "app01", "win-ad01", "lab-build01", "lab-db01"}


# -- helpers -----------------------------------------------------------------------------
@pytest.fixture
def demo_cassette(tmp_path):
    return synth.demo_engine().write_cassette(tmp_path / "demo-engine.yaml")


@pytest.fixture
def password_env(monkeypatch):
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    monkeypatch.delenv("OVIRT_BACKUP_CONFIG", raising=False)
    monkeypatch.delenv("OVIRT_ENGINE_URL", raising=False)
    return PASSWORD_ENV


def write_config(path: Path, url: str, state_dir: Path, *, ca_file=None) -> Path:
    lines = ["[engine]", f"url = {url}", "username = admin@internal",
             f"password_env = {PASSWORD_ENV}", "retries = 0"]
    if ca_file:
        lines.append(f"ca_file = {ca_file}")
    lines += ["", "[backup]", "system = demo-engine", "providers = localdb",
              f"state_dir = {state_dir}", ""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def load(cassette: Path):
    serializer = jsonserializer if cassette.suffix == ".json" else yamlserializer
    loaded = FilesystemPersister.load_cassette(cassette, serializer)
    return list(zip(loaded[0], loaded[1]))


def names_and_hashes(listing_json: str):
    return sorted((item["name"], item["ovf_hash"]) for item in json.loads(listing_json))


def assert_no_secrets(cassette: Path):
    text = cassette.read_text(encoding="utf-8")
    for secret in (PASSWORD, TOKEN, "Bearer"):
        assert secret not in text
    for request, response in load(cassette):
        names = {n.lower() for n in request.headers} | {n.lower() for n in response["headers"]}
        assert not names & {"authorization", "cookie", "set-cookie"}


# -- record, then replay, through the CLI -------------------------------------------------------
def test_record_backup_and_list_then_replay_them_without_an_engine(
        tmp_path, demo_cassette, password_env, capfd):
    backup_cassette = tmp_path / "rec" / "backup.yaml"
    list_cassette = tmp_path / "rec" / "list.json"
    with ReplayEngine([demo_cassette], password=PASSWORD) as live:
        config = write_config(tmp_path / "live.conf", live.url, tmp_path / "state-live")
        assert cli.main(["--config", str(config), "record", "--cassette", str(backup_cassette),
                         "--", "backup"]) == 0
        out = capfd.readouterr()
        assert cli.main(["--config", str(config), "record", "--cassette", str(list_cassette),
                         "--", "list", "--json"]) == 0
        recorded_listing = capfd.readouterr()
        assert live.unmatched == [] and live.fallbacks == []
        exchanges = len(live.received)
        live_origin = live.url.split("/ovirt-engine")[0]
    assert "recorded" in out.err and "backup.yaml" in out.err
    assert names_and_hashes(recorded_listing.out) and {
        n for n, _ in names_and_hashes(recorded_listing.out)} == VM_NAMES

    # the recording: vcrpy loads it, it holds every exchange, the VM pages among them
    assert backup_cassette.read_text().startswith("# recorded by ovirt-backup record from ")
    interactions = load(backup_cassette)
    assert len(interactions) == exchanges
    first = interactions[0][0]
    assert (first.method, first.path) == ("POST", "/ovirt-engine/sso/oauth/token")
    assert first.body.decode().endswith("password=***")
    assert first.uri.startswith(live_origin + "/")                       # the upstream host
    pages = [(req, resp) for req, resp in interactions
             if req.path == "/ovirt-engine/api/vms" and ("search", "page 1") in req.query]
    assert pages and pages[0][1]["status"]["code"] == 200
    assert b"<name>web01</name>" in pages[0][1]["body"]["string"]
    last = interactions[-1][0]
    assert (last.path, last.body) == ("/ovirt-engine/services/sso-logout",
                                      b"scope=ovirt-app-api&token=***")
    assert_no_secrets(backup_cassette)
    assert_no_secrets(list_cassette)
    assert "metadata" in json.loads(list_cassette.read_text())       # provenance, JSON form

    # the replay: no engine, strict, the same command, the same result
    with ReplayEngine([backup_cassette], password=PASSWORD) as replay:
        config = write_config(tmp_path / "replay.conf", replay.url, tmp_path / "state-replay")
        assert cli.main(["--config", str(config), "backup"]) == 0
        capfd.readouterr()
        assert replay.unmatched == [] and replay.fallbacks == []
    with ReplayEngine([list_cassette], password=PASSWORD) as replay:
        config = write_config(tmp_path / "replay.conf", replay.url, tmp_path / "state-replay")
        assert cli.main(["--config", str(config), "list", "--json"]) == 0
        replayed_listing = capfd.readouterr()
        assert replay.unmatched == []
    assert names_and_hashes(replayed_listing.out) == names_and_hashes(recorded_listing.out)


def test_replayed_recording_still_rejects_another_password(tmp_path, demo_cassette,
                                                            password_env, capfd):
    cassette = tmp_path / "backup.yaml"
    with ReplayEngine([demo_cassette], password=PASSWORD) as live:
        config = write_config(tmp_path / "live.conf", live.url, tmp_path / "state")
        assert cli.main(["--config", str(config), "record", "--cassette", str(cassette),
                         "--", "backup"]) == 0
    with ReplayEngine([cassette], password="another-password") as replay:
        conn = sdk.Connection(url=replay.url, username="admin@internal", password=PASSWORD)
        with pytest.raises(sdk.AuthError):
            conn.system_service().vms_service().list()
    capfd.readouterr()


def test_the_temporary_settings_point_at_the_proxy_and_hold_no_password(
        tmp_path, demo_cassette, password_env, monkeypatch):
    seen = {}

    def fake_call(command, env):
        seen["command"] = command
        seen["settings"] = Path(command[command.index("--config") + 1]).read_text()
        seen["env"] = env
        return 3

    monkeypatch.setattr(record_module.subprocess, "call", fake_call)
    with ReplayEngine([demo_cassette], password=PASSWORD) as live:
        config = write_config(tmp_path / "live.conf", live.url, tmp_path / "state")
        code = record_command(str(config), tmp_path / "c.yaml", ["--", "list", "--json"])
        live_url = live.url
    assert code == 3
    assert seen["command"][-2:] == ["list", "--json"]
    assert seen["command"][1:3] == ["-m", "ovirt_backup_plugin.cli"]
    settings = seen["settings"]
    assert PASSWORD not in settings
    assert f"password_env = {PASSWORD_ENV}" in settings
    assert "url = http://127.0.0.1:" in settings and live_url not in settings
    assert "127.0.0.1" in seen["env"]["no_proxy"]
    assert not Path(seen["command"][seen["command"].index("--config") + 1]).exists()
    assert load(tmp_path / "c.yaml") == []            # nothing was exchanged, still written


def test_the_recorded_command_may_not_bring_its_own_settings(tmp_path, password_env, capsys):
    config = write_config(tmp_path / "c.conf", "http://127.0.0.1:9/ovirt-engine/api",
                          tmp_path / "state")
    assert cli.main(["--config", str(config), "record", "--cassette", str(tmp_path / "x.yaml"),
                     "--", "--config", str(config), "backup"]) == 2
    assert "give --config before 'record'" in capsys.readouterr().err
    assert cli.main(["--config", str(config), "record", "--cassette",
                     str(tmp_path / "x.yaml")]) == 2
    assert "give the command to record after '--'" in capsys.readouterr().err


def test_an_unreachable_engine_is_a_clear_error_and_the_cassette_is_written(
        tmp_path, password_env, capfd):
    with socket_on_a_closed_port() as port:
        url = f"http://127.0.0.1:{port}/ovirt-engine/api"
        config = write_config(tmp_path / "c.conf", url, tmp_path / "state")
        cassette = tmp_path / "down.yaml"
        assert cli.main(["--config", str(config), "record", "--cassette", str(cassette),
                         "--", "backup"]) == 2
    err = capfd.readouterr().err
    assert f"error: cannot reach the engine at http://127.0.0.1:{port}: " in err
    assert "refused" in err.lower()
    assert load(cassette) == []


@contextmanager
def socket_on_a_closed_port():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    yield port


# -- the proxy itself ---------------------------------------------------------------------------
def test_proxy_scrubs_headers_cookies_and_token_replies(tmp_path, demo_cassette):
    with ReplayEngine([demo_cassette], password=PASSWORD) as live:
        with RecordingProxy(live.url, secrets=[PASSWORD]) as proxy:
            assert proxy.url.endswith("/ovirt-engine/api")
            assert proxy.url.startswith("http://127.0.0.1:")
            conn = sdk.Connection(url=proxy.url, username="admin@internal", password=PASSWORD)
            assert {vm.name for vm in conn.system_service().vms_service().list()} == VM_NAMES
            conn.close()
            # a client with cookies and a bearer token, and a JSON body with a password
            proxy.record("POST", "/ovirt-engine/api/vms?password=pw-in-query",
                         [("Authorization", "Bearer tok-xyz-123"), ("Cookie", "JSESSIONID=c00kie"),
                          ("Content-Type", "application/json")],
                         b'{"password": "json-secret"}', 200, "OK",
                         [("Set-Cookie", "JSESSIONID=c00kie; Path=/"),
                          ("Content-Type", "application/xml"), ("Content-Length", "3"),
                          ("Transfer-Encoding", "chunked"), ("Connection", "keep-alive")],
                         b"<vm><comment>tok-xyz-123</comment></vm>")
    path = proxy.write(tmp_path / "p.yaml")
    text = path.read_text()
    for secret in (PASSWORD, TOKEN, "tok-xyz-123", "c00kie", "json-secret", "pw-in-query",
                   "Bearer"):
        assert secret not in text
    request, response = load(path)[-1]
    assert request.query == [("password", "***")]
    assert set(response["headers"]) == {"Content-Type"}
    assert response["body"]["string"] == b"<vm><comment>***</comment></vm>"
    token_reply = load(path)[0][1]
    assert json.loads(token_reply["body"]["string"])["access_token"] == "***"
    assert_no_secrets(path)


def test_proxy_gets_identity_bodies_and_drops_accept_encoding(tmp_path, demo_cassette):
    with ReplayEngine([demo_cassette], password=PASSWORD) as live:
        with RecordingProxy(live.url) as proxy:
            conn = sdk.Connection(url=proxy.url, username="admin@internal", password=PASSWORD,
                                  compress=True)
            conn.system_service().data_centers_service().list()
            conn.close()
    for request, response in proxy.interactions:
        assert "Accept-Encoding" not in request.headers
        assert "content-encoding" not in {h.lower() for h in response["headers"]}
    assert b"<name>Production</name>" in proxy.interactions[1][1]["body"]["string"]


# -- TLS to the engine ---------------------------------------------------------------------------
def _make_ca_with_cryptography(directory: Path, name: str):
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                       False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                         critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    (directory / "ca.pem").write_bytes(ca.public_bytes(pem))
    (directory / "server.pem").write_bytes(cert.public_bytes(pem))
    (directory / "server.key").write_bytes(key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


def _make_ca_with_openssl(directory: Path, name: str):
    def run(*args):
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", f"/CN={name} test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (directory / "server.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\n"
        "extendedKeyUsage=serverAuth\nsubjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "server.ext")


def make_ca(directory: Path, name: str) -> Path:
    """A CA and a server certificate for 127.0.0.1 signed by it, in ``directory``."""
    directory.mkdir(parents=True)
    try:
        import cryptography  # noqa: F401
    except ImportError:
        if shutil.which("openssl") is None:
            pytest.skip("neither the cryptography package nor the openssl CLI is available")
        _make_ca_with_openssl(directory, name)
    else:
        _make_ca_with_cryptography(directory, name)
    return directory


@contextmanager
def tls_engine(cassette: Path, certs: Path):
    """The replay server behind TLS: its listening socket wrapped with the test certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certs / "server.pem", certs / "server.key")
    with ReplayEngine([cassette], password=PASSWORD) as engine:
        server = engine._server
        server.socket = context.wrap_socket(server.socket, server_side=True,
                                            do_handshake_on_connect=False)
        port = server.server_address[1]
        yield engine, f"https://127.0.0.1:{port}/ovirt-engine/api"


@pytest.fixture
def certs(tmp_path):
    return make_ca(tmp_path / "right", "right"), make_ca(tmp_path / "wrong", "wrong")


def test_tls_upstream_is_verified_with_the_configured_ca(tmp_path, demo_cassette, certs):
    right, _ = certs
    with tls_engine(demo_cassette, right) as (engine, url):
        with RecordingProxy(url, ca_file=str(right / "ca.pem")) as proxy:
            proxy.check()
            assert proxy.url.startswith("http://127.0.0.1:")
            conn = sdk.Connection(url=proxy.url, username="admin@internal", password=PASSWORD)
            dcs = conn.system_service().data_centers_service().list()
            conn.close()
        assert engine.unmatched == []
    assert [d.name for d in dcs] == ["Production", "Lab"]
    assert proxy.errors == []
    assert all(req.uri.startswith(url.split("/ovirt-engine")[0] + "/")
               for req, _ in proxy.interactions)
    path = proxy.write(tmp_path / "tls.yaml")
    assert [req.path for req, _ in load(path)] == [
        "/ovirt-engine/sso/oauth/token", "/ovirt-engine/api/datacenters",
        "/ovirt-engine/services/sso-logout"]


def test_tls_upstream_with_a_wrong_ca_fails_clearly(tmp_path, demo_cassette, certs):
    right, wrong = certs
    with tls_engine(demo_cassette, right) as (engine, url):
        with RecordingProxy(url, ca_file=str(wrong / "ca.pem")) as proxy:
            with pytest.raises(EngineError, match="TLS certificate verification failed") as err:
                proxy.check()
            assert str(wrong / "ca.pem") in str(err.value)
            conn = sdk.Connection(url=proxy.url, username="admin@internal", password=PASSWORD)
            with pytest.raises(sdk.Error, match="certificate verification failed"):
                conn.system_service().data_centers_service().list()
            conn.close(logout=False)
        assert engine.received == []                 # nothing got through
    assert proxy.interactions == []
    assert len(proxy.errors) == 1 and "TLS certificate verification failed" in proxy.errors[0]


def test_record_command_over_tls_wrong_ca_then_insecure(tmp_path, demo_cassette, certs,
                                                       password_env, capfd):
    right, wrong = certs
    with tls_engine(demo_cassette, right) as (engine, url):
        config = write_config(tmp_path / "c.conf", url, tmp_path / "state",
                              ca_file=wrong / "ca.pem")
        cassette = tmp_path / "tls.yaml"
        assert cli.main(["--config", str(config), "record", "--cassette", str(cassette),
                         "--", "backup"]) == 2
        err = capfd.readouterr().err
        assert "error: cannot reach the engine at https://127.0.0.1:" in err
        assert "TLS certificate verification failed" in err
        assert load(cassette) == []

        # --insecure only when given, and it says so
        assert cli.main(["--config", str(config), "--insecure", "record", "--cassette",
                         str(cassette), "--", "backup"]) == 0
        err = capfd.readouterr().err
        assert "NOT verified" in err
        assert engine.unmatched == []
    assert any(req.path == "/ovirt-engine/api/vms" for req, _ in load(cassette))
    assert_no_secrets(cassette)
