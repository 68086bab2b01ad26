"""Backups that keep their secrets (issue 13), through the real CLI, the real SDK against
replay engines, a real SQLite catalog and the loopback Swift.

Private files under umask 022; encryption at rest (no plaintext OVF in any Swift object,
restores, a flipped byte, a wrong key, rotation); ``check``; a stored hostile OVF refused
by restore and its dry run; terminal-safe output with hostile names; TLS said right;
no token or key in ``-vv`` output.
"""
import json
import os
import re
import sqlite3
import ssl
import stat
import zlib
from pathlib import Path

import pytest

from ovirt_backup_plugin.backup.run import new_run
from ovirt_backup_plugin.cli import main
from ovirt_backup_plugin.host.sealing import write_new_key
from ovirt_backup_plugin.model import BackupOutcome, VmBackup
from ovirt_backup_plugin.ovf import ovf_hash, pack, seal
from ovirt_backup_plugin.ovf.parse import MAX_OVF_BYTES
from ovirt_backup_plugin.testing import synth
from ovirt_backup_plugin.testing.replay import ReplayEngine

pytest_plugins = ["tests.swift_service"]

CANARY = "R00t-Pa55-canary-7f3a"          # a root password in the OVF's description
PASSWORD = "replay-secret"              # what the conftest fixtures give the engine
HOSTILE = "evil\u202eexe.\u009b2J\u0085x\nsecond line"


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def canary_engine(memory=4096, *, names=("web01", "db01"), locked=()) -> synth.SyntheticEngine:
    eng = synth.SyntheticEngine(seed=13)
    dc = eng.add_datacenter("DC1")
    eng.add_cluster("c1", dc)
    eng.add_storage_domain("data", dc, master=True)
    for name in names:
        eng.add_vm(name, "c1", memory_mb=memory, description=f"cloud-init root {CANARY}",
                   nics=[], disks=[])        # a dry run then asks no /networks, no /disks
    for name in locked:                  # the engine withholds its OVF: backup names it
        eng.add_vm(name, "c1", ovf_missing_always=True)
    for n in range(1, 4):
        eng.add_restore(f"restored-{n}", cluster="c1")
    return eng


def posts(server):
    return [r for r in server.received if r.method == "POST" and r.path.endswith("/api/vms")]


def swift_section(service, container, **extra):
    options = service.options(container=container, encrypt=None, retries="0", **extra)
    return "[provider:swift]\n" + "".join(f"{k} = {v}\n" for k, v in options.items())


# -- private files -------------------------------------------------------------------------
def test_everything_the_product_creates_is_private_under_umask_022(
        tmp_path, umask022, cli, write_config, serve):
    with serve(tmp_path, canary_engine()) as server:
        cfg = write_config(tmp_path, server.url, providers="localdb, debug")
        code, out, err = cli("--config", cfg, "backup")
    assert code == 0, out + err
    state = tmp_path / "state"
    catalog = state / "catalog.sqlite"
    assert mode(state) == 0o700
    assert mode(catalog) == 0o600
    db = sqlite3.connect(catalog)              # WAL mode: this opens -wal and -shm
    db.execute("SELECT count(*) FROM blobs").fetchone()
    journal = [p for p in state.iterdir() if p.name.startswith("catalog.sqlite-")]
    assert {p.name for p in journal} >= {"catalog.sqlite-wal", "catalog.sqlite-shm"}
    assert all(mode(p) == 0o600 for p in journal)
    db.close()
    lock = state / "test-engine.lock"
    assert mode(lock) == 0o600
    debug = state / "debug"
    files = [p for p in debug.rglob("*")]
    assert any(CANARY in p.read_text() for p in files if p.suffix == ".ovf")
    assert all(mode(p) == (0o700 if p.is_dir() else 0o600) for p in [debug, *files])
    assert "can be read by other users" not in err


def test_an_existing_open_state_folder_gets_one_warning_naming_it_and_the_fix(
        tmp_path, umask022, cli, write_config, serve):
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    os.chmod(state, 0o755)
    with serve(tmp_path, canary_engine()) as server:
        cfg = write_config(tmp_path, server.url)
        code, out, err = cli("--config", cfg, "backup")
    assert code == 0, out + err
    warnings = [line for line in err.splitlines() if "can be read by other users" in line]
    assert len(warnings) == 1, err
    assert str(state) in warnings[0] and f"chmod 700 {state}" in warnings[0]
    assert mode(state) == 0o755                # warned, never changed behind the admin's back


def test_record_warns_that_cassettes_hold_secrets_and_writes_them_0600(
        tmp_path, umask022, write_config, serve, capfd):
    with serve(tmp_path, canary_engine()) as server:
        cfg = write_config(tmp_path, server.url)
        cassette = tmp_path / "rec" / "list.yaml"
        code = main(["--config", cfg, "record", "--cassette", str(cassette), "--", "list"])
    err = capfd.readouterr().err
    assert code == 0
    assert "can carry secrets" in err and str(cassette) in err
    assert mode(cassette) == 0o600 and mode(cassette.parent) == 0o700


# -- encryption at rest: swift -------------------------------------------------------------
@pytest.fixture
def keys(tmp_path):
    made = {}
    for name in ("k1", "k2", "wrong"):
        path = tmp_path / f"{name}.key"
        made[name] = (path, write_new_key(str(path)).id)
    return made


def swift_config(write_config, tmp_path, url, service, container, backup_extra):
    return write_config(tmp_path, url, providers="swift", backup_extra=backup_extra,
                        extra=swift_section(service, container))


def fetch_all(service, container):
    """Every object of the container, fetched ({} when there is no container)."""
    from swiftclient.exceptions import ClientException

    conn = service.connection()
    try:
        return {o["name"]: conn.get_object(container, o["name"])[1]
                for o in conn.get_container(container, full_listing=True)[1]}
    except ClientException as e:
        if e.http_status == 404:
            return {}
        raise
    finally:
        conn.close()


def test_an_encrypted_swift_store_holds_no_plaintext_ovf_and_restores(
        tmp_path, cli, write_config, serve, swift_service, swift_container, keys, posted_vms):
    eng = canary_engine()
    key_file, key_id = keys["k1"]
    with serve(tmp_path, eng) as server:
        cfg = swift_config(write_config, tmp_path, server.url, swift_service, swift_container,
                           f"encryption_key_file = {key_file}")
        code, out, err = cli("--config", cfg, "backup")
        assert code == 0, out + err
        assert f"encrypted (AES-256-GCM) with key {key_id}" in out
        objects = fetch_all(swift_service, swift_container)
        blobs = {n: b for n, b in objects.items() if n.startswith("ovf/")}
        assert len(blobs) == 2
        plain_hashes = {ovf_hash(vm.ovf) for vm in eng.vms}
        for name, body in objects.items():
            texts = [body]
            try:
                texts.append(zlib.decompress(body))
            except zlib.error:
                pass
            for text in texts:
                assert CANARY.encode() not in text, name
                assert b"<ovf:Envelope" not in text and b"VirtualSystem" not in text, name
                assert not any(h.encode() in text for h in plain_hashes), name
        assert all(body[:5] == b"OVB1\x03" and body[5:13].hex() == key_id
                   for body in blobs.values())

        # a copy (web01 itself is still on the engine, which would refuse its id)
        code, out, err = cli("--config", cfg, "restore", "web01", "--new-ids",
                             "--name-pattern", "restored-{n}")
        assert code == 0, out + err
        (posted,) = posted_vms(server)
        assert posted.findtext("name") == "restored-1"
        web01 = next(vm for vm in eng.vms if vm.name == "web01")
        assert posted.findtext("initialization/configuration/data") == web01.ovf

        code, out, err = cli("--config", cfg, "check", "--read-data")
        assert code == 0, out + err
        assert f"2 with key {key_id} (current key)" in out

        # a flipped byte is refused with the VM named, and nothing is sent
        name = next(i["ovf_hash"] for i in json.loads(cli("--config", cfg, "list", "--json")[1])
                    if i["name"] == "db01")
        body = bytearray(blobs["ovf/" + name])
        body[-20] ^= 0x01
        conn = swift_service.connection()
        conn.put_object(swift_container, "ovf/" + name, bytes(body))
        conn.close()
        code, out, err = cli("--config", cfg, "restore", "db01")
        assert code == 2 and "db01" in out and "does not authenticate" in out, out + err
        assert "nothing was sent to the engine" in out
        assert len(posted_vms(server)) == 1
        code, out, err = cli("--config", cfg, "check", "--read-data")
        assert code == 1 and re.search(r"PROBLEM VM db01 \(.*\), generation .*authenticate", out)


def test_a_wrong_or_missing_key_is_refused_and_nothing_is_written(
        tmp_path, cli, write_config, serve, swift_service, swift_container, keys):
    eng = canary_engine()
    with serve(tmp_path, eng) as server:
        no_key = swift_config(write_config, tmp_path, server.url, swift_service,
                              swift_container, "")
        code, out, err = cli("--config", no_key, "backup")
        assert code == 2 and "no encryption key is set" in out and "encrypt = no" in out
        assert fetch_all(swift_service, swift_container) == {}      # nothing at all

        good = swift_config(write_config, tmp_path, server.url, swift_service, swift_container,
                            f"encryption_key_file = {keys['k1'][0]}")
        assert cli("--config", good, "backup")[0] == 0
        before = fetch_all(swift_service, swift_container)
        wrong = swift_config(write_config, tmp_path, server.url, swift_service, swift_container,
                             f"encryption_key_file = {keys['wrong'][0]}")
        code, out, err = cli("--config", wrong, "backup")
        assert code == 2 and f"encrypted with key {keys['k1'][1]}" in out, out + err
        assert "encryption_old_key_files" in out and "Nothing was written" in out
        assert fetch_all(swift_service, swift_container) == before
        code, out, err = cli("--config", wrong, "restore", "web01")
        assert code == 2 and "cannot be decrypted" in out and "web01" in out
        assert posts(server) == []


def test_rotation_new_key_writes_old_key_reads_until_pruned(
        tmp_path, cli, write_config, serve, swift_service, swift_container, keys):
    (k1, id1), (k2, id2) = keys["k1"], keys["k2"]
    with serve(tmp_path, canary_engine(), name="first.yaml") as server:
        first = swift_config(write_config, tmp_path, server.url, swift_service,
                             swift_container, f"encryption_key_file = {k1}")
        assert cli("--config", first, "backup")[0] == 0
    with serve(tmp_path, canary_engine(memory=8192), name="second.yaml") as server:
        rotated = swift_config(write_config, tmp_path, server.url, swift_service,
                               swift_container, f"encryption_key_file = {k2}\n"
                               f"encryption_old_key_files = {k1}")
        code, out, err = cli("--config", rotated, "backup")
        assert code == 0, out + err
        generations = sorted({i["generation"] for i in json.loads(
            cli("--config", rotated, "list", "--json", "--generations")[1])})
        assert len(generations) == 2
        code, out, err = cli("--config", rotated, "restore", "web01", "--generation",
                             generations[0], "--dry-run")
        assert "PROBLEM stored OVF" not in out, out
        code, out, err = cli("--config", rotated, "check", "--read-data")
        assert code == 0, out + err
        assert f"2 with key {id1} (an old key)" in out and f"2 with key {id2} (current key)" in out

        only_new = swift_config(write_config, tmp_path, server.url, swift_service,
                                swift_container, f"encryption_key_file = {k2}")
        code, out, err = cli("--config", only_new, "check", "--read-data")
        assert code == 1 and out.count("PROBLEM") == 2 and f"key {id1}" in out
        code, out, err = cli("--config", only_new, "prune", "--keep-last", "1")
        assert code == 0, out + err
        code, out, err = cli("--config", only_new, "check", "--read-data")
        assert code == 0 and f"2 with key {id2} (current key)" in out, out + err


def test_localdb_encrypts_when_asked(tmp_path, cli, write_config, serve, keys):
    with serve(tmp_path, canary_engine()) as server:
        cfg = write_config(tmp_path, server.url, backup_extra=f"encryption_key_file = "
                           f"{keys['k1'][0]}", extra="[provider:localdb]\nencrypt = yes\n")
        assert cli("--config", cfg, "backup")[0] == 0
        raw = (tmp_path / "state" / "catalog.sqlite").read_bytes()
        db = sqlite3.connect(tmp_path / "state" / "catalog.sqlite")
        stored = [bytes(r[0]) for r in db.execute("SELECT ovf FROM blobs")]
        db.close()
        assert CANARY.encode() not in raw
        assert len(stored) == 2 and all(b[:5] == b"OVB1\x03" for b in stored)
        code, out, err = cli("--config", cfg, "restore", "web01", "--new-ids",
                             "--name-pattern", "restored-{n}")
        assert code == 0, out + err
        assert "restored 1, failed 0" in out


# -- check on a damaged localdb store ------------------------------------------------------
def plant(session, vm_id, name, text, *, hostile_blob=None):
    """Store ``text`` as VM ``name``'s configuration through the provider's own write path,
    as a committed generation (what a hostile store or a bug would hand back)."""
    handle = session.handles[0]
    vm = VmBackup(vm_id=vm_id, name=name, kind="vm", datacenter="DC1", cluster="c1",
                  ovf_hash=ovf_hash(text), blob=hostile_blob or seal(pack(text)), ovf=text)
    run = new_run("test-engine", "http://engine", None)
    state = handle.before_backup(run, session.engine)
    handle.write_ovf(run, state, vm)
    handle.after_backup(run, state, session.engine, BackupOutcome(ok=True, written=1))
    return run.id


DOCTYPE = ('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
           '<ovf:Envelope xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1/">&x;</ovf:Envelope>')


def test_check_clean_then_a_deleted_blob_a_flipped_byte_and_a_doctype(
        tmp_path, cli, write_config, serve, session_of):
    eng = canary_engine(names=("web01", "db01", "app01"))
    with serve(tmp_path, eng) as server:
        cfg = write_config(tmp_path, server.url)
        assert cli("--config", cfg, "backup")[0] == 0
        assert cli("--config", cfg, "backup")[0] == 0
        code, out, err = cli("--config", cfg, "check")
        assert code == 0 and "2 generation(s), 6 reference(s) of 3 VM(s)" in out, out + err
        code, out, err = cli("--config", cfg, "check", "--read-data")
        assert code == 0 and "read 3 stored OVF(s) once each" in out and "3 in clear" in out
    items = {i["name"]: i for i in json.loads(cli("--config", cfg, "list", "--json")[1])}
    catalog = tmp_path / "state" / "catalog.sqlite"
    db = sqlite3.connect(catalog)
    with db:
        db.execute("DELETE FROM blobs WHERE hash = ?", (items["web01"]["ovf_hash"],))
        blob = bytearray(db.execute("SELECT ovf FROM blobs WHERE hash = ?",
                                    (items["db01"]["ovf_hash"],)).fetchone()[0])
        blob[-3] ^= 0xFF
        db.execute("UPDATE blobs SET ovf = ? WHERE hash = ?", (bytes(blob),
                                                              items["db01"]["ovf_hash"]))
        db.execute("INSERT INTO blobs VALUES ('leftover', x'00', '')")
    db.close()
    session = session_of(["localdb"])
    hostile_gen = plant(session, items["app01"]["vm_id"], "app01", DOCTYPE)
    code, out, err = cli("--config", cfg, "check")
    assert code == 1, out + err
    problems = [line for line in out.splitlines() if "PROBLEM" in line]
    assert len(problems) == 1 and "VM web01" in problems[0] and "2 generations" in problems[0]
    assert "missing" in problems[0]
    assert "1 stored OVF(s) no generation references (leftover)" in out
    code, out, err = cli("--config", cfg, "check", "--read-data")
    problems = [line for line in out.splitlines() if "PROBLEM" in line]
    assert code == 1 and len(problems) == 3, out
    assert any("VM db01" in p and "2 generations" in p for p in problems)
    assert any("VM app01" in p and hostile_gen in p and "DOCTYPE" in p for p in problems)


# -- a stored hostile OVF is refused by restore and its dry run ---------------------------
@pytest.mark.parametrize("provider", ["localdb", "swift"])
@pytest.mark.parametrize("hostile", ["doctype", "oversize"])
def test_a_stored_hostile_ovf_is_refused_by_restore_and_dry_run(
        provider, hostile, tmp_path, cli, write_config, serve, session_of, request):
    eng = canary_engine(names=("web01",))
    web01 = eng.vms[0]
    text = DOCTYPE if hostile == "doctype" else web01.ovf.replace(
        "</Description>", "x" * (MAX_OVF_BYTES + 1) + "</Description>")
    options = {}
    extra = ""
    if provider == "swift":
        service = request.getfixturevalue("swift_service")
        container = request.getfixturevalue("swift_container")
        options = {"swift": service.options(container=container, retries="0")}
        extra = "[provider:swift]\n" + "".join(f"{k} = {v}\n" for k, v in
                                                options["swift"].items())
    session = session_of([provider], options=options)
    generation = plant(session, web01.id, "web01", text)
    with serve(tmp_path, eng) as server:
        cfg = write_config(tmp_path, server.url, providers=provider, extra=extra)
        code, out, err = cli("--config", cfg, "restore", "web01", "--dry-run")
        assert code == 1, out + err
        assert "PROBLEM stored OVF" in out and "web01" in out and generation in out
        assert ("DOCTYPE" in out) if hostile == "doctype" else ("limit" in out)
        assert "plan: clean" not in out
        code, out, err = cli("--config", cfg, "restore", "web01")
        assert code == 2 and "FAILED web01" in out and generation in out, out + err
        assert "nothing was sent to the engine" in out
        assert posts(server) == []


# -- terminal-safe output ------------------------------------------------------------------
def test_hostile_names_never_reach_the_terminal_raw(tmp_path, cli, write_config, serve):
    eng = canary_engine(names=(HOSTILE, "web01"), locked=("locked" + HOSTILE,))
    with serve(tmp_path, eng) as server:
        cfg = write_config(tmp_path, server.url)
        outputs = {}
        outputs["backup"] = cli("--config", cfg, "backup")
        assert outputs["backup"][0] == 1                  # the locked VM is skipped, named
        outputs["list"] = cli("--config", cfg, "list")
        outputs["list --generations"] = cli("--config", cfg, "list", "--generations")
        outputs["history"] = cli("--config", cfg, "history", HOSTILE)
        outputs["dry-run"] = cli("--config", cfg, "restore", "evil*", "--dry-run")
        outputs["restore"] = cli("--config", cfg, "restore", "evil*")
        outputs["attach"] = cli("--config", cfg, "attach", "localdb")
        outputs["providers"] = cli("--config", cfg, "providers")
        outputs["check"] = cli("--config", cfg, "check", "--read-data")
        history_json = cli("--config", cfg, "history", HOSTILE, "--json")[1]
        list_json = cli("--config", cfg, "list", "--json")[1]
    for command, (_code, out, err) in outputs.items():
        for text in (out, err):
            assert not re.search("[\r\u009b\u0085\u202e\u2028\x1b]", text), command
            assert "second line" not in text.replace("\\nsecond line", ""), command
    escaped = "evil\\u202eexe.\\x9b2J\\x85x\\nsecond line"
    for command in ("backup", "list", "history", "dry-run", "restore"):
        assert escaped in outputs[command][1], (command, outputs[command])
    lines = outputs["list"][1].splitlines()
    header, rows = lines[0], lines[1:]
    assert len(rows) == 2                                      # one line per VM
    at = header.index("ID")
    assert all(re.match(r"[0-9a-f-]{36}", row[at:at + 36]) for row in rows)   # aligned
    for text in (history_json, list_json):
        assert "\\u202e" in text and "\u202e" not in text and "\u009b" not in text
    assert json.loads(history_json)["name"] == HOSTILE


def test_log_lines_are_escaped_too(tmp_path, cli, write_config, serve):
    eng = canary_engine(names=(HOSTILE,))
    with serve(tmp_path, eng) as server:
        cfg = write_config(tmp_path, server.url)
        cli("--config", cfg, "backup")
        code, out, err = cli("-v", "--config", cfg, "run", "--once")
    assert code == 0, out + err
    assert "INFO" in err and not re.search("[\u009b\u0085\u202e]", err)


# -- TLS said right ------------------------------------------------------------------------
def _ca(directory: Path, name: str):
    """A CA and a server certificate for 127.0.0.1 signed by it (cryptography)."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    directory.mkdir()
    now = dt.datetime.now(dt.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} test CA")])

    def build(subject, public, ca):
        return (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_name)
                .public_key(public).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + dt.timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))

    ca = build(ca_name, ca_key.public_key(), True).sign(ca_key, hashes.SHA256())
    cert = (build(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]),
                  key.public_key(), False)
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(
                ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    (directory / "ca.pem").write_bytes(ca.public_bytes(pem))
    (directory / "server.pem").write_bytes(cert.public_bytes(pem))
    (directory / "server.key").write_bytes(key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return directory


@pytest.fixture
def tls_replay(tmp_path):
    """A replay engine behind real TLS: (its https URL, the right CA file, a wrong one)."""
    right, wrong = _ca(tmp_path / "right", "right"), _ca(tmp_path / "wrong", "wrong")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(right / "server.pem", right / "server.key")
    cassette = canary_engine().write_cassette(tmp_path / "tls-engine.yaml")
    with ReplayEngine([cassette], password=PASSWORD) as engine:
        server = engine._server
        server.socket = context.wrap_socket(server.socket, server_side=True,
                                            do_handshake_on_connect=False)
        yield (f"https://127.0.0.1:{server.server_address[1]}/ovirt-engine/api",
               right / "ca.pem", wrong / "ca.pem")


def test_insecure_in_the_file_warns_exactly_like_the_flag(tmp_path, cli, write_config):
    url = "https://engine.example.com/ovirt-engine/api"
    flag = cli("--insecure", "--config", write_config(tmp_path, url), "list")[2]
    filed = cli("--config", write_config(tmp_path, url, engine_extra="insecure = true"),
                "list")[2]
    warning = [line for line in flag.splitlines() if "NOT verified" in line]
    assert len(warning) == 1 and "pki-resource?resource=ca-certificate" in warning[0]
    assert [line for line in filed.splitlines() if "NOT verified" in line] == warning


def test_plain_http_to_another_host_warns_that_the_password_travels_in_clear(
        tmp_path, cli, write_config):
    code, out, err = cli("--insecure", "--config", write_config(
        tmp_path, "http://engine.example.com/ovirt-engine/api"), "list")
    assert "travel in clear" in err and "engine.example.com" in err
    assert "NOT verified" not in err


def test_a_tls_failure_names_ca_file_and_where_the_engines_ca_is(tmp_path, cli, write_config,
                                                                 tls_replay):
    server_url, right_ca, wrong_ca = tls_replay
    cfg = write_config(tmp_path, server_url, engine_extra=f"ca_file = {wrong_ca}\nretries = 0")
    code, out, err = cli("--config", cfg, "backup")
    assert code == 2
    assert f"ca_file = {wrong_ca}" in out + err
    host = server_url.split("/")[2]
    assert (f"https://{host}/ovirt-engine/services/pki-resource?resource=ca-certificate&"
            "format=X509-PEM-CA") in out + err
    cfg = write_config(tmp_path, server_url, engine_extra=f"ca_file = {right_ca}")
    code, out, err = cli("--config", cfg, "backup")
    assert code == 0, out + err


# -- no secret through third-party loggers -------------------------------------------------
def test_vv_output_holds_no_swift_token_or_key(tmp_path, write_config, serve, swift_service,
                                              swift_container, keys, cli_process):
    conn = swift_service.connection()
    token = conn.get_auth()[1]                  # tempauth hands the same token out again
    conn.close()
    key_text = Path(keys["k1"][0]).read_text().splitlines()[-1]
    with serve(tmp_path, canary_engine()) as server:
        cfg = swift_config(write_config, tmp_path, server.url, swift_service, swift_container,
                           f"encryption_key_file = {keys['k1'][0]}")
        proc = cli_process("-vv", "--config", cfg, "backup")
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    assert "swiftclient" in output and "X-Auth-Token" in output     # it did log, masked
    assert token not in output and token[:12] not in output
    assert key_text not in output
    assert not re.search(r"(?<![\w./-])testing(?![\w])", output)     # the Swift key
    assert "replay-secret" not in output                              # the engine password


def test_vv_output_holds_no_s3_secret_nor_signature(tmp_path, write_config, serve, swift_service,
                                                     s3_bucket, keys, cli_process):
    """botocore logs every request at DEBUG, its signed Authorization header too."""
    section = swift_service.s3_options(bucket=s3_bucket, encrypt=None, retries="0")
    secret = os.environ[section["secret_access_key_env"]]
    with serve(tmp_path, canary_engine()) as server:
        cfg = write_config(tmp_path, server.url, providers="s3",
                           backup_extra=f"encryption_key_file = {keys['k1'][0]}",
                           extra="[provider:s3]\n" + "".join(f"{k} = {v}\n"
                                                             for k, v in section.items()))
        proc = cli_process("-vv", "--config", cfg, "backup")
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    assert "botocore" in output and "Authorization" in output          # it did log, masked
    assert not re.search(r"Signature=[0-9a-f]{16}", output)              # in the header
    assert not re.search(r"Signature:(\\n|\s)*[0-9a-f]{16}", output)      # on its own
    assert not re.search(rf"(?<![\w./-]){re.escape(secret)}(?![\w])", output)
    assert "replay-secret" not in output
