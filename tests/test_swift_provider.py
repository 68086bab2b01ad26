"""The swift provider against a real Swift (see tests/swift_service.py), through the host.

Every call goes through a :class:`Session` and the provider's handle, as ``ovirt-backup``
makes them: the section parsed against the provider's declaration, the host's retries and
error wrapping, and every OVF handed back checked by the host. What is asserted is what a
user or a later run sees, and what lies in the container.
"""
import datetime as dt
import json
import subprocess
import sys
import uuid
import zlib

import pytest
import requests

from ovirt_backup_plugin.backup.run import run_backup
from ovirt_backup_plugin.errors import ConfigError, ProviderError
from ovirt_backup_plugin.hooks import swift as provider
from ovirt_backup_plugin.host import Session
from ovirt_backup_plugin.model import BackupOutcome, Query, Run, VmBackup
from ovirt_backup_plugin.ovf import open_blob, ovf_hash, pack, seal
from ovirt_backup_plugin.testing import synth

pytest_plugins = ["tests.swift_service"]   # fixtures swift_service, swift_container, swift_netcut

OK = BackupOutcome(ok=True)
_runs = iter(range(1, 10**6))


def ovf_text(vm_id, name, memory=1024, export_date="2026/11/26 07:00:00"):
    return synth.make_ovf(vm_id, name, memory_mb=memory, export_date=export_date,
                          description=f"Grüße, {name}", cluster="DC1-cluster")


def vm(name, memory=1024, datacenter="DC1", export_date="2026/11/26 07:00:00"):
    vm_id = str(uuid.uuid5(uuid.NAMESPACE_DNS, name))
    text = ovf_text(vm_id, name, memory, export_date)
    return VmBackup(vm_id=vm_id, name=name, kind="vm", datacenter=datacenter,
                    cluster=f"{datacenter}-cluster", ovf_hash=ovf_hash(text),
                    blob=seal(pack(text)), ovf=text)


def new_run():
    n = next(_runs)
    started = dt.datetime(2026, 11, 26, 7, 0, tzinfo=dt.timezone.utc) + dt.timedelta(minutes=n)
    return Run(id=f"{started:%Y%m%dT%H%M%SZ}-{n:08x}", started_at=started, system="test",
               engine_url="https://engine.example/ovirt-engine/api")


@pytest.fixture
def session_for(swift_service, swift_container, tmp_path):
    """``session_for(**section options)``: a session with only this swift provider."""
    def make(**options):
        section = {**swift_service.options(container=swift_container, retries="0"), **options}
        return Session.for_engine(None, system="test", providers=["swift"],
                                  state_dir=str(tmp_path), provider_options={"swift": section})
    return make


@pytest.fixture
def handle(session_for):
    return session_for().handles[0]


def backup(handle, vms, ok=True):
    """One whole run through the handle; returns (run, write_ovf results)."""
    run = new_run()
    state = handle.before_backup(run, None)
    written = [handle.write_ovf(run, state, v) for v in vms]
    handle.after_backup(run, state, None,
                        BackupOutcome(ok=ok, reason="" if ok else "test abandons"))
    return run, written


def listed(handle, query=None):
    query = query or Query(every=True)
    return query.answer(handle.list_restorable(query, None))


def put(service, container, name, data):
    conn = service.connection()
    try:
        conn.put_container(container)
        conn.put_object(container, name, data)
    finally:
        conn.close()


def get(service, container, name):
    conn = service.connection()
    try:
        return conn.get_object(container, name)[1]
    finally:
        conn.close()


# --------------------------------------------------------------------------------------
def test_registers_with_the_plugin_manager(handle):
    assert handle.pm.get_plugin("swift") is provider
    assert handle.keeps_ovf and handle.declaration.off_host


def test_commit_lists_names_and_generations(swift_service, handle, swift_container):
    a, b = vm("alpha"), vm("beta")
    run1, written = backup(handle, [a, b])
    assert written == [True, True]
    items = listed(handle)
    assert sorted((i.name, i.generation) for i in items) == [("alpha", run1.id), ("beta", run1.id)]
    item = next(i for i in items if i.name == "alpha")
    assert item.provider == "swift" and item.vm_id == a.vm_id and item.kind == "vm"
    assert item.taken_at == run1.started_at and item.datacenter == "DC1"
    assert item.cluster == "DC1-cluster" and item.ovf_hash == a.ovf_hash
    assert handle.read_checked(item).text == a.ovf

    a2, c = vm("alpha", memory=2048), vm("gamma")
    run2, written = backup(handle, [a2, b, c])
    assert written == [True, False, True]
    items = listed(handle)
    assert [i.generation for i in items] == [run2.id] * 3 + [run1.id] * 2   # newest first
    alphas = {i.generation: i.ovf_hash for i in items if i.name == "alpha"}
    assert alphas == {run1.id: a.ovf_hash, run2.id: a2.ovf_hash}
    assert sorted(swift_service.names(swift_container, "runs/")) == [
        f"runs/{run1.id}.json", f"runs/{run2.id}.json"]
    assert swift_service.names(swift_container, "index/") == [provider.INDEX]
    store = json.loads(get(swift_service, swift_container, "store.json"))
    assert store["format"] == provider.FORMAT
    newest = listed(handle, Query())
    assert {i.name: i.generations for i in newest} == {"alpha": 2, "beta": 2, "gamma": 1}


def test_a_listing_reads_the_index_not_every_manifest(swift_service, handle, swift_container):
    runs = [backup(handle, [vm("alpha", memory=m), vm("beta")])[0] for m in (1024, 2048, 4096)]
    for run in runs:          # manifests unreadable: a listing that read them would fail
        put(swift_service, swift_container, f"runs/{run.id}.json", b"{garbage")
    items = listed(handle)
    assert len(items) == 6 and {i.generation for i in items} == {r.id for r in runs}
    assert [i.name for i in listed(handle, Query(vms=("alpha",)))] == ["alpha"]


def test_a_manifest_the_index_missed_is_folded_in(swift_service, handle, swift_container):
    run1, _ = backup(handle, [vm("alpha")])
    stale = get(swift_service, swift_container, provider.INDEX)
    run2, _ = backup(handle, [vm("alpha", memory=2048), vm("beta")])
    put(swift_service, swift_container, provider.INDEX, stale)   # as if its update failed
    assert sorted((i.name, i.generation) for i in listed(handle)) == [
        ("alpha", run1.id), ("alpha", run2.id), ("beta", run2.id)]
    run3, _ = backup(handle, [vm("beta")])                       # the next run repairs it
    index = provider._Index.from_bytes(get(swift_service, swift_container, provider.INDEX))
    assert [r[0] for r in index.runs] == [run1.id, run2.id, run3.id]


def test_a_pruned_run_still_in_the_index_is_not_listed(swift_service, handle, swift_container):
    run1, _ = backup(handle, [vm("alpha")])
    run2, _ = backup(handle, [vm("alpha", memory=2048)])
    conn = swift_service.connection()
    conn.delete_object(swift_container, f"runs/{run1.id}.json")   # a prune cut short
    conn.close()
    assert [i.generation for i in listed(handle)] == [run2.id]


def test_nothing_listed_before_commit_and_abandon_keeps_the_previous(swift_service, handle,
                                                                     swift_container):
    run = new_run()
    state = handle.before_backup(run, None)
    handle.write_ovf(run, state, vm("alpha"))
    assert listed(handle) == []
    assert swift_service.names(swift_container, "ovf/")     # the blob is there, unlisted
    handle.after_backup(run, state, None, OK)
    assert [i.name for i in listed(handle)] == ["alpha"]

    backup(handle, [vm("alpha", memory=4096), vm("beta")], ok=False)
    assert [(i.name, i.generation) for i in listed(handle)] == [("alpha", run.id)]
    _, written = backup(handle, [vm("alpha", memory=4096), vm("beta")])
    assert written == [False, False]       # the abandoned run's blobs are reused


def test_same_content_is_uploaded_once(swift_service, handle, swift_container):
    first = vm("alpha", export_date="2026/11/26 07:00:00")
    again = vm("alpha", export_date="2026/11/27 08:30:00")    # only a volatile field differs
    assert first.ovf != again.ovf and first.ovf_hash == again.ovf_hash
    assert backup(handle, [first, vm("beta")])[1] == [True, True]
    assert backup(handle, [again, vm("beta")])[1] == [False, False]
    assert len(swift_service.names(swift_container, "ovf/")) == 2
    item = next(i for i in listed(handle) if i.name == "alpha")
    assert handle.read_checked(item).text == first.ovf


def test_corrupted_and_missing_objects_are_refused(swift_service, handle, swift_container):
    a, b = vm("alpha"), vm("beta")
    backup(handle, [a, b])
    items = {i.name: i for i in listed(handle)}
    other = ovf_text(a.vm_id, "alpha", memory=9999)
    put(swift_service, swift_container, f"ovf/{a.ovf_hash}", seal(pack(other)))
    with pytest.raises(ProviderError) as e:
        handle.read_checked(items["alpha"])
    assert f"VM alpha ({a.vm_id}), generation {items['alpha'].generation}, in swift is " \
           "corrupted" in str(e.value)
    assert not e.value.transient
    conn = swift_service.connection()
    conn.delete_object(swift_container, f"ovf/{b.ovf_hash}")
    conn.close()
    with pytest.raises(ProviderError, match=f"container {swift_container}: reading the OVF of "
                                            "VM beta .* not found") as e:
        handle.read_checked(items["beta"])
    assert not e.value.transient


def test_datacenter_scope(session_for):
    everything = session_for().handles[0]
    backup(everything, [vm("a1", datacenter="DC1"), vm("b2", datacenter="DC2")])
    assert sorted(i.name for i in listed(everything)) == ["a1", "b2"]
    assert [i.name for i in listed(everything, Query(datacenter="DC2"))] == ["b2"]


def test_a_container_of_version_0_1_is_read_and_upgraded(swift_service, handle, swift_container):
    """Format 1 (0.1): plain XML blobs, manifests with identities, store.json the owner."""
    a = vm("alpha")
    owner = {"system": "test", "url": "https://engine.example/ovirt-engine/api",
             "datacenter_ids": ["dc-1"]}
    manifest = {"format": 1, "run": "20261120T080000Z-00000001",
                "started_at": "2026-11-20T08:00:00+00:00", "system": "test", "vms": [{
                    "id": a.vm_id, "name": "alpha", "kind": "vm", "datacenter": "DC1",
                    "cluster": "DC1-cluster", "ovf_hash": a.ovf_hash, "identity": {}}]}
    put(swift_service, swift_container, "store.json", json.dumps(owner).encode())
    put(swift_service, swift_container, f"ovf/{a.ovf_hash}", a.ovf.encode())
    put(swift_service, swift_container, f"runs/{manifest['run']}.json",
        json.dumps(manifest).encode())
    info = handle.describe_store()
    assert info.format == 1 and info.owner.datacenter_ids == ("dc-1",)
    (item,) = listed(handle)
    assert (item.name, item.generation) == ("alpha", manifest["run"])
    assert handle.read_checked(item).text == a.ovf

    run, written = backup(handle, [a, vm("beta")])
    assert written == [False, True]                 # the old blob is reused
    store = json.loads(get(swift_service, swift_container, "store.json"))
    assert store == {"format": provider.FORMAT, "owner": owner}
    assert [r[0] for r in provider._Index.from_bytes(
        get(swift_service, swift_container, provider.INDEX)).runs] == [manifest["run"], run.id]
    assert handle.describe_store().format == provider.FORMAT


def test_a_container_of_a_newer_format_is_refused_and_nothing_written(swift_service, handle,
                                                                       swift_container):
    put(swift_service, swift_container, "store.json", json.dumps({"format": 99}).encode())
    before = swift_service.names(swift_container)
    for call in (lambda: handle.before_backup(new_run(), None), lambda: listed(handle),
                 handle.describe_store):
        with pytest.raises(ProviderError, match="has format 99, written by a newer ovirt-backup"):
            call()
    assert swift_service.names(swift_container) == before


def test_the_host_retries_a_cut_commit_with_the_same_run(swift_service, session_for,
                                                         swift_container, swift_netcut):
    session = session_for(retries="2", retry_delay="0", **swift_service.via(swift_netcut))
    h = session.handles[0]
    cuts = []

    def sleep(seconds):            # the host's back-off: the network comes back meanwhile
        cuts.append(seconds)
        swift_netcut.restore()

    h._sleep = sleep
    run = new_run()
    state = h.before_backup(run, None)
    swift_netcut.cut()
    assert h.write_ovf(run, state, vm("alpha")) is True        # retried after the cut
    swift_netcut.cut()
    h.after_backup(run, state, None, OK)                       # the commit, retried
    assert len(cuts) == 2
    assert [(i.name, i.generation) for i in listed(h)] == [("alpha", run.id)]


def test_a_backup_cut_mid_run_is_reported_and_abandoned(swift_service, session_for,
                                                        swift_container, swift_netcut, tmp_path):
    eng = synth.SyntheticEngine(seed=3)
    dc = eng.add_datacenter("DC1")
    eng.add_cluster("c1", dc)
    eng.add_storage_domain("sd", dc, master=True)
    for name in ("one", "two", "three"):
        eng.add_vm(name, "c1")
    from ovirt_backup_plugin.engine import EngineSettings
    from ovirt_backup_plugin.testing.replay import ReplayEngine

    with ReplayEngine([eng.write_cassette(tmp_path / "e.yaml")]) as server:
        section = swift_service.options(container=swift_container, retries="0",
                                        **swift_service.via(swift_netcut))
        session = Session.for_engine(
            EngineSettings(url=server.url, password=server.password), system="test",
            providers=["swift"], state_dir=str(tmp_path), provider_options={"swift": section})
        seen = []

        def after(outcome, name, impls, kwargs):
            if name == "write_ovf":
                seen.append(1)
                if len(seen) == 1:
                    swift_netcut.cut()
        session.pm.add_hookcall_monitoring(lambda *a: None, after)
        with session:
            report = run_backup(session.engine, session.handles, system="test")
    swift_netcut.restore()
    rep = report.providers["swift"]
    assert not rep.ok and "unreachable" in rep.reason and swift_container in rep.reason
    assert report.exit_code == 2
    assert swift_service.names(swift_container, "runs/") == []


def test_timeout_is_transient(swift_service, session_for, swift_netcut):
    h = session_for(timeout="0.5", **swift_service.via(swift_netcut)).handles[0]
    run = new_run()
    state = h.before_backup(run, None)
    swift_netcut.hang()
    with pytest.raises(ProviderError) as e:
        h.write_ovf(run, state, vm("alpha"))
    assert e.value.transient
    swift_netcut.restore()
    h.after_backup(run, state, None, BackupOutcome(ok=False))


def test_netcut_carries_auth_and_object_traffic(swift_service, swift_container, swift_netcut):
    """Through the forwarder, object requests go through it too (not to the proxy directly)."""
    from swiftclient.client import Connection

    via = swift_service.via(swift_netcut)
    conn = Connection(via["auth_url"], swift_service.user, swift_service.key, retries=0,
                      os_options={"object_storage_url": via["storage_url"]})
    url, _ = conn.get_auth()
    assert url.startswith(f"http://127.0.0.1:{swift_netcut.port}/v1/")
    conn.put_container(swift_container)
    before = swift_netcut.bytes
    conn.put_object(swift_container, "probe", b"x" * 100_000)
    assert swift_netcut.bytes - before > 100_000
    swift_netcut.cut()
    with pytest.raises(requests.exceptions.ConnectionError):
        conn.head_object(swift_container, "probe")
    swift_netcut.restore()
    assert conn.get_object(swift_container, "probe")[1] == b"x" * 100_000
    conn.close()
    plain = Connection(via["auth_url"], swift_service.user, swift_service.key, retries=0)
    assert plain.get_auth()[0] == via["storage_url"]
    plain.close()


def test_wrong_key_is_a_clear_permanent_error(swift_service, session_for, swift_container,
                                              monkeypatch):
    wrong = "wrong-key-" + uuid.uuid4().hex
    monkeypatch.setenv("SWIFT_TEST_WRONG_KEY", wrong)
    assert listed(session_for().handles[0]) == []     # the right key logged in first
    h = session_for(key_env="SWIFT_TEST_WRONG_KEY").handles[0]
    for call in (lambda: h.before_backup(new_run(), None), lambda: listed(h)):
        with pytest.raises(ProviderError) as e:
            call()
        message = str(e.value)
        assert not e.value.transient
        assert "authentication failed" in message and swift_container in message
        assert swift_service.user in message
        assert wrong not in message and swift_service.key not in message


@pytest.mark.parametrize("options, error, text", [
    ({}, ProviderError, "must be set"),
    ({"key_env": "NO_SUCH_SWIFT_KEY"}, ConfigError, "NO_SUCH_SWIFT_KEY is not set"),
    ({"key_file": "/nonexistent/swift-key"}, ConfigError, "key_file: cannot read"),
    ({"key_env": "SWIFT_TEST_DUMMY_KEY", "auth_version": "2"}, ProviderError, "auth_version"),
    ({"key_env": "SWIFT_TEST_DUMMY_KEY", "container": "a/b"}, ProviderError, "contains '/'"),
])
def test_missing_or_wrong_settings_are_permanent_errors(tmp_path, monkeypatch, options, error,
                                                        text):
    monkeypatch.delenv("NO_SUCH_SWIFT_KEY", raising=False)
    monkeypatch.setenv("SWIFT_TEST_DUMMY_KEY", "dummy")
    section = {"auth_url": "http://127.0.0.1:9/auth/v1.0", "user": "test:tester", **options}
    h = Session.for_engine(None, system="s", providers=["swift"], state_dir=str(tmp_path),
                           provider_options={"swift": section}).handles[0]
    with pytest.raises(error, match=text) as e:
        h.before_backup(new_run(), None)
    assert not getattr(e.value, "transient", False)


@pytest.mark.parametrize("key, value, text", [
    ("timeout", "soon", r"\[provider:swift\] timeout = 'soon'"),
    ("contianer", "x", r"unknown key 'contianer'; did you mean 'container'"),
    ("key", "hunter2", r"sets 'key' inline; use key_file"),
])
def test_a_bad_section_is_refused_when_the_session_opens(tmp_path, key, value, text):
    section = {"auth_url": "http://127.0.0.1:9/auth/v1.0", "user": "u", key: value}
    with pytest.raises(ConfigError, match=text) as e:
        Session.for_engine(None, system="s", providers=["swift"], state_dir=str(tmp_path),
                           provider_options={"swift": section})
    assert "hunter2" not in str(e.value)


def test_unreachable_swift_is_transient(monkeypatch, tmp_path):
    monkeypatch.setenv("SWIFT_TEST_DUMMY_KEY", "dummy")
    section = {"auth_url": "http://127.0.0.1:9/auth/v1.0", "user": "test:tester",
               "key_env": "SWIFT_TEST_DUMMY_KEY", "retries": "0"}
    h = Session.for_engine(None, system="sys1", providers=["swift"], state_dir=str(tmp_path),
                           provider_options={"swift": section}).handles[0]
    with pytest.raises(ProviderError, match="swift container ovirt-backup-sys1: .*unreachable") as e:
        listed(h)
    assert e.value.transient


def test_a_missing_container_lists_nothing(swift_service, session_for, swift_container):
    h = session_for(container="no-such-container-" + uuid.uuid4().hex[:8]).handles[0]
    assert listed(h) == []
    assert h.describe_store().format == 0 and h.describe_store().owner is None


def test_an_unreadable_manifest_the_index_lacks_is_reported(swift_service, handle,
                                                             swift_container):
    run, _ = backup(handle, [vm("alpha")])
    conn = swift_service.connection()
    conn.delete_object(swift_container, provider.INDEX)
    conn.close()
    put(swift_service, swift_container, f"runs/{run.id}.json", b'{"run": "truncated')
    with pytest.raises(ProviderError, match=f"manifest runs/{run.id}.json in container "
                                            f"{swift_container} is unreadable") as e:
        listed(handle)
    assert not e.value.transient


def test_the_index_is_compressed_json_of_versions(swift_service, handle, swift_container):
    backup(handle, [vm("alpha")])
    backup(handle, [vm("alpha")])
    backup(handle, [vm("alpha", memory=2048)])
    doc = json.loads(zlib.decompress(get(swift_service, swift_container, provider.INDEX)))
    (versions,) = doc["vms"].values()
    assert [v[6] for v in versions] == [[[0, 1]], [[2, 2]]]     # two versions, three runs
    assert open_blob(get(swift_service, swift_container, f"ovf/{versions[0][4]}"),
                     versions[0][4]).count("<Name>alpha</Name>") == 1


def test_loads_without_swiftclient():
    """Importing the provider needs no swiftclient; using it says what is missing."""

    code = (
        "import sys; sys.modules['swiftclient'] = None\n"
        "from ovirt_backup_plugin.model import ProviderSettings, Query\n"
        "from ovirt_backup_plugin.errors import ProviderError\n"
        "from ovirt_backup_plugin.hooks import swift\n"
        "try:\n"
        "    swift.list_restorable(query=Query(), settings=ProviderSettings('swift', {}))\n"
        "except ProviderError as e:\n"
        "    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "python-swiftclient is not installed" in out.stdout


def test_one_command_logs_in_once_and_reads_the_index_once(swift_service, handle, swift_container,
                                                           tmp_path, write_config, cli_process):
    for memory in (1024, 2048, 4096):
        backup(handle, [vm("alpha", memory=memory), vm("beta")])
    section = swift_service.options(container=swift_container, retries="0")
    cfg = write_config(tmp_path, "http://127.0.0.1:9/ovirt-engine/api", providers="swift",
                       system="test", extra="[provider:swift]\n" + "".join(
                           f"{k} = {v}\n" for k, v in section.items()))
    proc = cli_process("-vv", "--config", cfg, "history", "alpha", timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert "3 generation(s)" in proc.stdout and "4096 MB" in proc.stdout
    sent = [line for line in proc.stderr.splitlines() if "swiftclient: REQ: curl" in line]
    assert sum("/auth/v1.0 -X GET" in line for line in sent) == 1       # one login
    assert sum(f"/{provider.INDEX} -X GET" in line for line in sent) == 1
    assert sum("/ovf/" in line for line in sent) == 3                 # each version once
    # the format is checked with the index it was read with; a question asked again of the
    # same committed runs costs one listing, and a short listing page is the last one
    assert sum("/store.json -X GET" in line for line in sent) == 1
    listings = [line for line in sent if "prefix=runs/" in line]
    assert len(listings) >= 2 and not any("marker=runs" in line for line in listings)


def test_a_listing_longer_than_a_page_is_read_in_pages(swift_service, handle, swift_container,
                                                       monkeypatch):
    runs = [backup(handle, [vm("alpha", memory=1024 * n)])[0] for n in range(1, 6)]
    monkeypatch.setattr(provider, "LISTING_PAGE", 2)           # 5 runs: pages of 2, 2, 1
    store = provider._open(handle.settings)
    try:
        assert store.committed() == [r.id for r in runs]
    finally:
        store.close()
    # above the cluster's listing limit (10,000 by default) Swift answers 412: the listing
    # is then read as swiftclient reads it
    monkeypatch.setattr(provider, "LISTING_PAGE", 10_001)
    store = provider._open(handle.settings)
    try:
        assert store.committed() == [r.id for r in runs]
    finally:
        store.close()
    assert [i.generations for i in listed(handle, Query(vms=("alpha",)))] == [5]
