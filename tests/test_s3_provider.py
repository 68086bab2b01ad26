"""The s3 provider against a real S3 API: the loopback Swift's s3api (tests/swift_service.py).

Calls go through a :class:`Session` and the provider's handle, as ``ovirt-backup`` makes
them. What is asserted is what a user or a later run sees, what lies in the bucket, and
what went over the wire (a forwarder that records what the client sent).
"""
import datetime as dt
import json
import subprocess
import sys
import uuid
import zlib

import pytest

from ovirt_backup_plugin.errors import ConfigError, ProviderError
from ovirt_backup_plugin.hooks import s3 as provider
from ovirt_backup_plugin.host import Session
from ovirt_backup_plugin.model import BackupOutcome, ProviderSettings, Query, Run, VmBackup
from ovirt_backup_plugin.objectstore import FORMAT, INDEX
from ovirt_backup_plugin.ovf import ovf_hash, pack, seal
from ovirt_backup_plugin.testing import synth

pytest_plugins = ["tests.swift_service"]   # swift_service, s3_bucket, swift_netcut

_runs = iter(range(1, 10**6))


def vm(name, memory=1024):
    vm_id = str(uuid.uuid5(uuid.NAMESPACE_DNS, name))
    text = synth.make_ovf(vm_id, name, memory_mb=memory, cluster="c1")
    return VmBackup(vm_id=vm_id, name=name, kind="vm", datacenter="DC1", cluster="c1",
                    ovf_hash=ovf_hash(text), blob=seal(pack(text)), ovf=text)


def new_run():
    n = next(_runs)
    started = dt.datetime(2026, 11, 26, 7, 0, tzinfo=dt.timezone.utc) + dt.timedelta(minutes=n)
    return Run(id=f"{started:%Y%m%dT%H%M%SZ}-{n:08x}", started_at=started, system="test",
               engine_url="https://engine.example/ovirt-engine/api")


@pytest.fixture
def session_for(swift_service, s3_bucket, tmp_path):
    """``session_for(provider="s3", **section options)``: a session with only that provider."""
    def make(provider="s3", system="test", **options):
        if provider == "s3":
            section = {**swift_service.s3_options(bucket=s3_bucket), "retries": "0", **options}
        else:
            section = {**swift_service.options(container=s3_bucket), "retries": "0", **options}
        return Session.for_engine(None, system=system, providers=[provider],
                                  state_dir=str(tmp_path), provider_options={provider: section})
    return make


def backup(handle, vms):
    run = new_run()
    state = handle.before_backup(run, None)
    written = [handle.write_ovf(run, state, v) for v in vms]
    handle.after_backup(run, state, None, BackupOutcome(ok=True))
    return run, written


def listed(handle, query=None):
    query = query or Query(every=True)
    return query.answer(handle.list_restorable(query, None))


def get(service, bucket, key):
    client = service.s3_client()
    try:
        return client.get_object(Bucket=bucket, Key=key)["Body"].read()
    finally:
        client.close()


# --------------------------------------------------------------------------------------
def test_listed_by_providers_and_declared_off_host(cli, tmp_path):
    cfg = tmp_path / "c.conf"
    cfg.write_text("[backup]\nproviders = s3\n")
    code, out, err = cli("--config", str(cfg), "providers")
    (row,) = [line.split() for line in out.splitlines() if line.startswith("s3 ")]
    assert code == 0 and row[3:] == ["yes", "built-in", "ovf-copies"], out
    assert provider.declare_provider().off_host


def test_the_bucket_holds_the_objectstore_layout(swift_service, session_for, s3_bucket):
    handle = session_for().handles[0]
    run, written = backup(handle, [vm("alpha"), vm("beta")])
    assert written == [True, True]
    keys = swift_service.s3_keys(s3_bucket)
    assert sorted(k for k in keys if not k.startswith("ovf/")) == [
        INDEX, f"runs/{run.id}.json", "store.json"]
    assert len([k for k in keys if k.startswith("ovf/")]) == 2
    assert json.loads(get(swift_service, s3_bucket, "store.json"))["format"] == FORMAT
    index = json.loads(zlib.decompress(get(swift_service, s3_bucket, INDEX)))
    assert [r[0] for r in index["runs"]] == [run.id]
    again, written = backup(handle, [vm("alpha"), vm("beta", memory=2048)])
    assert written == [False, True]                  # one upload per distinct content
    assert [g.id for g in handle.list_generations()] == [again.id, run.id]


def test_a_container_written_by_swift_is_read_by_s3(session_for):
    """One index design: what the swift provider wrote, the s3 provider lists and reads
    (s3api's buckets are Swift's containers)."""
    swift = session_for(provider="swift").handles[0]
    run, _ = backup(swift, [vm("alpha"), vm("beta")])
    s3 = session_for().handles[0]
    items = listed(s3)
    assert sorted((i.name, i.generation) for i in items) == [("alpha", run.id),
                                                              ("beta", run.id)]
    assert s3.read_checked(items[0]).text == vm(items[0].name).ovf
    assert [g.id for g in s3.list_generations()] == [run.id]


def test_prefixes_keep_systems_apart_in_one_bucket(swift_service, session_for, s3_bucket):
    prod = session_for(system="prod", prefix="engines/prod").handles[0]
    test = session_for(system="test", prefix="/engines/test/").handles[0]
    backup(prod, [vm("alpha")])
    backup(test, [vm("beta")])
    assert [i.name for i in listed(prod)] == ["alpha"]
    assert [i.name for i in listed(test)] == ["beta"]
    keys = swift_service.s3_keys(s3_bucket)
    assert keys and all(k.startswith(("engines/prod/", "engines/test/")) for k in keys)
    assert prod.describe_store().location == f"s3 bucket {s3_bucket} (prefix engines/prod/)"


def test_server_side_encryption_is_passed_and_a_501_is_a_clear_permanent_error(
        swift_service, session_for, s3_bucket, swift_netcut):
    """s3api does not implement SSE: the header goes out, the 501 comes back, and the
    user is told which setting to change."""
    handle = session_for(sse="aws:kms", sse_kms_key_id="alias/backup-key",
                         **swift_service.s3_via(swift_netcut)).handles[0]
    run = new_run()
    state = handle.before_backup(run, None)
    swift_netcut.recording = True
    with pytest.raises(ProviderError) as e:
        handle.write_ovf(run, state, vm("alpha"))
    sent = bytes(swift_netcut.sent).lower()
    assert b"x-amz-server-side-encryption: aws:kms" in sent
    assert b"x-amz-server-side-encryption-aws-kms-key-id: alias/backup-key" in sent
    message = str(e.value)
    assert not e.value.transient
    assert f"bucket {s3_bucket}" in message and "501 NotImplemented" in message
    assert "remove sse / sse_kms_key_id" in message
    assert swift_service.s3_secret not in message
    handle.after_backup(run, state, None, BackupOutcome(ok=False))
    assert swift_service.s3_keys(s3_bucket, "ovf/") == []

    aes = session_for(sse="AES256", **swift_service.s3_via(swift_netcut)).handles[0]
    swift_netcut.sent.clear()
    with pytest.raises(ProviderError, match="501 NotImplemented"):
        backup(aes, [vm("beta")])
    assert b"x-amz-server-side-encryption: aes256" in bytes(swift_netcut.sent).lower()


def test_a_wrong_secret_is_a_clear_permanent_error(swift_service, session_for, s3_bucket,
                                                   monkeypatch):
    wrong = "wrong-secret-" + uuid.uuid4().hex
    monkeypatch.setenv("S3_TEST_WRONG_SECRET", wrong)
    handle = session_for(secret_access_key_env="S3_TEST_WRONG_SECRET").handles[0]
    for call in (lambda: handle.before_backup(new_run(), None), lambda: listed(handle)):
        with pytest.raises(ProviderError) as e:
            call()
        message = str(e.value)
        assert not e.value.transient
        assert "access denied" in message and f"bucket {s3_bucket}" in message
        assert wrong not in message and swift_service.s3_secret not in message


def test_unreachable_and_hanging_endpoints_are_transient_with_one_attempt(
        swift_service, session_for, swift_netcut):
    handle = session_for(timeout="0.5", **swift_service.s3_via(swift_netcut)).handles[0]
    run = new_run()
    state = handle.before_backup(run, None)
    swift_netcut.hang()
    before = swift_netcut.accepted
    with pytest.raises(ProviderError, match="S3 unreachable") as e:
        handle.write_ovf(run, state, vm("alpha"))
    assert e.value.transient
    assert swift_netcut.accepted - before == 1          # boto3 retried nothing: the host does
    swift_netcut.cut()
    with pytest.raises(ProviderError, match="unreachable") as e:
        listed(handle)
    assert e.value.transient
    swift_netcut.restore()
    handle.after_backup(run, state, None, BackupOutcome(ok=False))


def test_a_missing_bucket_lists_nothing_and_describes_empty(session_for):
    handle = session_for(bucket="no-such-bucket-" + uuid.uuid4().hex[:8]).handles[0]
    assert listed(handle) == []
    assert handle.list_generations() == []
    info = handle.describe_store()
    assert info.format == 0 and info.owner is None and info.generations == 0


@pytest.mark.parametrize("options, error, text", [
    ({"access_key_id_env": "S3_TEST_DUMMY", "secret_access_key_env": ""}, ProviderError,
     "give both access_key_id and secret_access_key"),
    ({"secret_access_key_env": "NO_SUCH_S3_SECRET"}, ConfigError, "NO_SUCH_S3_SECRET is not set"),
    ({"bucket": "Not_A_Bucket"}, ProviderError, "not a valid bucket name"),
    ({"sse": "rot13"}, ProviderError, "sse = 'rot13'"),
    ({"sse": "AES256", "sse_kms_key_id": "k"}, ProviderError, "sse_kms_key_id needs sse"),
    ({"addressing_style": "sideways"}, ProviderError, "addressing_style"),
])
def test_wrong_settings_are_permanent_errors(tmp_path, monkeypatch, options, error, text):
    monkeypatch.setenv("S3_TEST_DUMMY", "dummy")
    monkeypatch.delenv("NO_SUCH_S3_SECRET", raising=False)
    section = {"endpoint_url": "http://127.0.0.1:9", "access_key_id_env": "S3_TEST_DUMMY",
               "secret_access_key_env": "S3_TEST_DUMMY", "retries": "0", **options}
    section = {k: v for k, v in section.items() if v}
    handle = Session.for_engine(None, system="s", providers=["s3"], state_dir=str(tmp_path),
                                provider_options={"s3": section}).handles[0]
    with pytest.raises(error, match=text) as e:
        handle.before_backup(new_run(), None)
    assert not getattr(e.value, "transient", False)


def test_a_secret_inline_is_refused_when_the_session_opens(tmp_path):
    with pytest.raises(ConfigError, match="sets 'secret_access_key' inline") as e:
        Session.for_engine(None, system="s", providers=["s3"], state_dir=str(tmp_path),
                           provider_options={"s3": {"secret_access_key": "hunter2"}})
    assert "hunter2" not in str(e.value)


def test_the_default_bucket_is_named_after_the_system():
    settings = ProviderSettings("s3", {}, system="Engine_01.Example.COM")
    assert provider.bucket_name(settings) == "ovirt-backup-engine-01.example.com"


def test_verify_no_warns(session_for, swift_service, caplog):
    handle = session_for(verify="no").handles[0]
    notes = []
    run = new_run()
    state = handle.before_backup(run, None, notes.append)
    handle.after_backup(run, state, None, BackupOutcome(ok=False))
    assert any("TLS verification is OFF" in n for n in notes)
    assert "NOT verified" in caplog.text


def test_loads_without_boto3():
    code = (
        "import sys; sys.modules['boto3'] = None\n"
        "from ovirt_backup_plugin.model import ProviderSettings, Query\n"
        "from ovirt_backup_plugin.errors import ProviderError\n"
        "from ovirt_backup_plugin.hooks import s3\n"
        "try:\n"
        "    s3.list_restorable(query=Query(), settings=ProviderSettings('s3', {}))\n"
        "except ProviderError as e:\n"
        "    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "boto3 is not installed" in out.stdout


def test_one_command_reads_the_index_once(swift_service, session_for, s3_bucket, tmp_path,
                                          write_config, cli_process):
    handle = session_for().handles[0]
    for memory in (1024, 2048, 4096):
        backup(handle, [vm("alpha", memory=memory), vm("beta")])
    section = {**swift_service.s3_options(bucket=s3_bucket), "retries": "0"}
    cfg = write_config(tmp_path, "http://127.0.0.1:9/ovirt-engine/api", providers="s3",
                       system="test", extra="[provider:s3]\n" + "".join(
                           f"{k} = {v}\n" for k, v in section.items()))
    proc = cli_process("-vv", "--config", cfg, "history", "alpha", timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert "3 generation(s)" in proc.stdout and "4096 MB" in proc.stdout
    sent = [line for line in proc.stderr.splitlines() if "Sending http request" in line]
    assert sum(f"/{INDEX}," in line and "method=GET" in line for line in sent) == 1
    assert sum("/ovf/" in line and "method=GET" in line for line in sent) == 3
