"""The swift provider against a real Swift (see tests/swift_service.py).

The hooks are called one by one, as the host calls them: through a plugin manager that holds
only this provider, with keyword arguments, so the specs' argument names are checked too.
"""
import datetime as dt
import uuid

import pytest
import requests

from ovirt_backup_plugin.errors import ProviderError
from ovirt_backup_plugin.hooks import swift as provider
from ovirt_backup_plugin.model import (BackupOutcome, ProviderSettings, Restorable, RestoreRequest,
                                       RestoreResult, Run, VmBackup, VmIdentity, Nic, Disk)
from ovirt_backup_plugin.ovf import ovf_hash

pytest_plugins = ["tests.swift_service"]   # fixtures swift_service, swift_container, swift_netcut

OK = BackupOutcome(ok=True)
_pm = []


def hook(name, **kwargs):
    """Call hook ``name`` of the swift provider the way the host does; return its result."""
    if not _pm:
        from ovirt_backup_plugin.plugins import get_plugin_manager

        _pm.append(get_plugin_manager(enabled=["swift"]))
    caller = getattr(_pm[0].hook, name)
    result = caller(**kwargs)
    if caller.spec.opts.get("firstresult"):
        return result
    return result[0] if result else None


def ovf_text(vm_id, name, memory=1024, export_date="2026/11/26 07:00:00"):
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<ovf:Envelope xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1/"'
        ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" ovf:version="4.4.0.0">'
        f"<Content ovf:id=\"out\"><Name>{name}</Name><ExportDate>{export_date}</ExportDate>"
        f"<MemorySize>{memory}</MemorySize><Description>Grüße, {name}</Description>"
        f'<Section ovf:id="{vm_id}" xsi:type="ovf:OperatingSystemSection_Type"/></Content>'
        "</ovf:Envelope>\n")


def vm(name, memory=1024, datacenter="DC1", export_date="2026/11/26 07:00:00", vm_id=None):
    vm_id = vm_id or str(uuid.uuid5(uuid.NAMESPACE_DNS, name))
    text = ovf_text(vm_id, name, memory, export_date)
    identity = VmIdentity(id=vm_id, name=name, cluster=f"{datacenter}-cluster", memory_mb=memory,
                          disks=(Disk(id="d-" + name, alias=name + "_disk", size_gb=10, boot=True),),
                          nics=(Nic(name="nic1", network="ovirtmgmt"),))
    return VmBackup(identity=identity, ovf=text, ovf_hash=ovf_hash(text), datacenter=datacenter)


_runs = iter(range(1, 10**6))


def new_run(datacenter=None):
    n = next(_runs)
    started = dt.datetime(2026, 11, 26, 7, 0, tzinfo=dt.timezone.utc) + dt.timedelta(minutes=n)
    return Run(id=f"{started:%Y%m%dT%H%M%SZ}-{n:08x}", started_at=started, system="test",
               engine_url="https://engine.example/ovirt-engine/api", datacenter=datacenter)


def backup(settings, vms, ok=True):
    """One whole run through the hooks; returns (run, write_ovf results)."""
    run = new_run()
    hook("before_backup", run=run, engine=None, settings=settings)
    written = [hook("write_ovf", run=run, vm=v, settings=settings) for v in vms]
    hook("after_backup", run=run, engine=None, settings=settings,
                          outcome=BackupOutcome(ok=ok, reason="" if ok else "test abandons"))
    return run, written


def listed(settings, datacenter=None):
    return hook("list_restorable", engine=None, settings=settings, datacenter=datacenter)


@pytest.fixture
def settings(swift_service, swift_container):
    return swift_service.settings(container=swift_container)


@pytest.fixture
def engine(tmp_path):
    """A replay engine that answers one ``POST /vms`` (the real SDK talks to it)."""
    from ovirt_backup_plugin import synth
    from ovirt_backup_plugin.engine import Engine, EngineSettings
    from ovirt_backup_plugin.replay import ReplayEngine

    eng = synth.SyntheticEngine(seed=5)
    dc = eng.add_datacenter("DC1")
    eng.add_cluster("C2", dc)
    eng.add_restore("alpha-copy", cluster="C2", vm_id="6d0f1c43-3c5c-4c2e-9d8e-000000000001")
    with ReplayEngine([eng.write_cassette(tmp_path / "engine.yaml")]) as server:
        with Engine(EngineSettings(url=server.url, password=server.password)) as adapter:
            adapter.server = server
            yield adapter


def posted(engine):
    from lxml import etree

    return [etree.fromstring(r.body.encode()) for r in engine.server.received
            if r.method == "POST" and r.path.endswith("/api/vms")]


# --------------------------------------------------------------------------------------
def test_registers_with_the_plugin_manager():
    from ovirt_backup_plugin.plugins import get_plugin_manager

    pm = get_plugin_manager(enabled=["swift"])
    assert pm.get_plugin("swift") is provider


def test_commit_lists_names_and_generations(swift_service, settings, swift_container):
    a, b = vm("alpha"), vm("beta")
    run1, written = backup(settings, [a, b])
    assert written == [True, True]
    items = listed(settings)
    assert sorted((i.name, i.generation) for i in items) == [("alpha", run1.id), ("beta", run1.id)]
    item = next(i for i in items if i.name == "alpha")
    assert item.provider == "swift" and item.vm_id == a.identity.id and item.kind == "vm"
    assert item.taken_at == run1.started_at and item.datacenter == "DC1"
    assert item.cluster == "DC1-cluster" and item.ovf_hash == a.ovf_hash
    assert item.location == f"ovf/{a.ovf_hash}"
    assert item.identity == a.identity          # disks and nics survive the JSON round trip

    a2, c = vm("alpha", memory=2048), vm("gamma")
    run2, written = backup(settings, [a2, b, c])
    assert written == [True, False, True]
    items = listed(settings)
    assert [i.generation for i in items] == [run2.id] * 3 + [run1.id] * 2   # newest first
    assert sorted(i.name for i in items if i.generation == run2.id) == ["alpha", "beta", "gamma"]
    alphas = {i.generation: i.ovf_hash for i in items if i.name == "alpha"}
    assert alphas == {run1.id: a.ovf_hash, run2.id: a2.ovf_hash}
    assert sorted(swift_service.names(swift_container, "runs/")) == [
        f"runs/{run1.id}.json", f"runs/{run2.id}.json"]


def test_nothing_listed_before_commit(swift_service, settings, swift_container):
    run = new_run()
    hook("before_backup", run=run, engine=None, settings=settings)
    hook("write_ovf", run=run, vm=vm("alpha"), settings=settings)
    assert listed(settings) == []
    assert swift_service.names(swift_container, "ovf/")     # the blob is there, unlisted
    hook("after_backup", run=run, engine=None, settings=settings, outcome=OK)
    assert [i.name for i in listed(settings)] == ["alpha"]


def test_abandon_leaves_the_previous_generation(swift_service, settings, swift_container):
    run1, _ = backup(settings, [vm("alpha")])
    run2, _ = backup(settings, [vm("alpha", memory=4096), vm("beta")], ok=False)
    assert [(i.name, i.generation) for i in listed(settings)] == [("alpha", run1.id)]
    assert swift_service.names(swift_container, "runs/") == [f"runs/{run1.id}.json"]
    # the abandoned run's blobs stay and are reused: the next run uploads nothing new
    _, written = backup(settings, [vm("alpha", memory=4096), vm("beta")])
    assert written == [False, False]


def test_same_ovf_is_uploaded_once(swift_service, settings, swift_container):
    first = vm("alpha", export_date="2026/11/26 07:00:00")
    again = vm("alpha", export_date="2026/11/27 08:30:00")    # only a volatile field differs
    assert first.ovf != again.ovf and first.ovf_hash == again.ovf_hash
    _, written = backup(settings, [first, vm("beta")])
    assert written == [True, True]
    _, written = backup(settings, [again, vm("beta")])
    assert written == [False, False]
    assert len(swift_service.names(swift_container, "ovf/")) == 2
    item = next(i for i in listed(settings) if i.name == "alpha")
    assert hook("read_ovf", item=item, settings=settings) == first.ovf


def test_read_ovf_and_restore_vm(settings, engine):
    a = vm("alpha")
    backup(settings, [a])
    item = listed(settings)[0]
    assert hook("read_ovf", item=item, settings=settings) == a.ovf     # exact text, non-ASCII too

    request = RestoreRequest(item=item, name="alpha-copy", cluster="C2", regenerate_ids=True)
    result = hook("restore_vm", request=request, engine=engine, settings=settings)
    assert result == RestoreResult(provider="swift", name="alpha-copy",
                                   vm_id="6d0f1c43-3c5c-4c2e-9d8e-000000000001")
    (body,) = posted(engine)
    assert body.findtext("initialization/configuration/data") == a.ovf
    assert (body.findtext("name"), body.findtext("cluster/name"),
            body.findtext("initialization/regenerate_ids")) == ("alpha-copy", "C2", "true")

    other = Restorable(provider="localdb", vm_id=item.vm_id, name="alpha", generation="g",
                       ovf_hash=item.ovf_hash)
    assert hook("read_ovf", item=other, settings=settings) is None
    assert hook("restore_vm", request=RestoreRequest(item=other, name="x"), engine=engine,
                               settings=settings) is None
    assert len(posted(engine)) == 1


def test_corrupted_object_is_refused(swift_service, settings, swift_container, engine):
    a = vm("alpha")
    backup(settings, [a])
    item = listed(settings)[0]
    conn = swift_service.connection()
    conn.put_object(swift_container, f"ovf/{a.ovf_hash}", a.ovf.replace("1024", "9999").encode())
    conn.close()
    with pytest.raises(ProviderError) as e:
        hook("read_ovf", item=item, settings=settings)
    assert str(e.value) == (f"the stored OVF of VM alpha in container {swift_container} is "
                            "corrupted: hash mismatch")
    assert not e.value.transient
    with pytest.raises(ProviderError, match="corrupted"):
        hook("restore_vm", request=RestoreRequest(item=item, name="alpha"), engine=engine,
                            settings=settings)
    assert posted(engine) == []


def test_missing_blob_is_a_permanent_error(swift_service, settings, swift_container):
    backup(settings, [vm("alpha")])
    item = listed(settings)[0]
    conn = swift_service.connection()
    conn.delete_object(swift_container, item.location)
    conn.close()
    with pytest.raises(ProviderError, match=f"container {swift_container}: reading the OVF of VM "
                                            "alpha .* not found") as e:
        hook("read_ovf", item=item, settings=settings)
    assert not e.value.transient


def test_datacenter_scope(swift_service, swift_container):
    everything = swift_service.settings(container=swift_container)
    backup(everything, [vm("a1", datacenter="DC1"), vm("b2", datacenter="DC2")])
    assert sorted(i.name for i in listed(everything)) == ["a1", "b2"]
    assert [i.name for i in listed(everything, datacenter="DC2")] == ["b2"]
    dc1 = swift_service.settings(container=swift_container, datacenter="DC1")
    assert [i.name for i in listed(dc1)] == ["a1"]
    assert listed(dc1, datacenter="DC2") == []


def test_backend_cut_mid_run(swift_service, swift_container, swift_netcut):
    settings = swift_service.settings(container=swift_container,
                                      **swift_service.via(swift_netcut))
    a, b = vm("alpha"), vm("beta")
    run1 = new_run()
    hook("before_backup", run=run1, engine=None, settings=settings)
    assert hook("write_ovf", run=run1, vm=a, settings=settings) is True
    swift_netcut.cut()
    with pytest.raises(ProviderError) as e:
        hook("write_ovf", run=run1, vm=b, settings=settings)
    assert e.value.transient
    assert swift_container in str(e.value) and "unreachable" in str(e.value)
    with pytest.raises(ProviderError) as e:
        listed(settings)
    assert e.value.transient
    # the host gives up on this provider and abandons: nothing is written, nothing raised
    hook("after_backup", run=run1, engine=None, settings=settings,
         outcome=BackupOutcome(ok=False, reason="swift failed"))
    swift_netcut.restore()
    assert listed(settings) == []
    run2 = new_run()
    hook("before_backup", run=run2, engine=None, settings=settings)
    assert hook("write_ovf", run=run2, vm=a, settings=settings) is False   # reused
    assert hook("write_ovf", run=run2, vm=b, settings=settings) is True
    hook("after_backup", run=run2, engine=None, settings=settings, outcome=OK)
    items = listed(settings)
    assert sorted((i.name, i.generation) for i in items) == [("alpha", run2.id), ("beta", run2.id)]
    assert all(hook("read_ovf", item=i, settings=settings) for i in items)


def test_retry_after_restore_in_the_same_run(swift_service, swift_container, swift_netcut):
    """What the host does with transient=True: call write_ovf again, on the same run."""
    settings = swift_service.settings(container=swift_container,
                                      **swift_service.via(swift_netcut))
    run = new_run()
    hook("before_backup", run=run, engine=None, settings=settings)
    swift_netcut.cut()
    with pytest.raises(ProviderError) as e:
        hook("write_ovf", run=run, vm=vm("alpha"), settings=settings)
    assert e.value.transient
    swift_netcut.restore()
    assert hook("write_ovf", run=run, vm=vm("alpha"), settings=settings) is True
    swift_netcut.cut()
    with pytest.raises(ProviderError) as e:
        hook("after_backup", run=run, engine=None, settings=settings, outcome=OK)
    assert e.value.transient
    swift_netcut.restore()
    hook("after_backup", run=run, engine=None, settings=settings, outcome=OK)   # the retry
    assert [(i.name, i.generation) for i in listed(settings)] == [("alpha", run.id)]


def test_timeout_is_transient(swift_service, swift_container, swift_netcut):
    settings = swift_service.settings(container=swift_container, timeout="0.5",
                                      **swift_service.via(swift_netcut))
    run = new_run()
    hook("before_backup", run=run, engine=None, settings=settings)
    swift_netcut.hang()
    with pytest.raises(ProviderError) as e:
        hook("write_ovf", run=run, vm=vm("alpha"), settings=settings)
    assert e.value.transient
    swift_netcut.restore()
    hook("after_backup", run=run, engine=None, settings=settings, outcome=BackupOutcome(ok=False))


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
    # tempauth builds the storage URL from the Host header it was sent, so here it points
    # at the forwarder even without the override (a Keystone catalog would not)
    plain = Connection(via["auth_url"], swift_service.user, swift_service.key, retries=0)
    assert plain.get_auth()[0] == via["storage_url"]
    plain.close()


def test_wrong_key_is_a_clear_permanent_error(swift_service, swift_container, monkeypatch):
    wrong = "wrong-key-" + uuid.uuid4().hex
    monkeypatch.setenv("SWIFT_TEST_WRONG_KEY", wrong)
    settings = swift_service.settings(container=swift_container, key_env="SWIFT_TEST_WRONG_KEY")
    for call in (lambda: hook("before_backup", run=new_run(), engine=None, settings=settings),
                 lambda: listed(settings)):
        with pytest.raises(ProviderError) as e:
            call()
        message = str(e.value)
        assert not e.value.transient
        assert "authentication failed" in message and swift_container in message
        assert swift_service.user in message
        assert wrong not in message and swift_service.key not in message


def test_missing_settings_are_permanent_errors(tmp_path, monkeypatch):
    monkeypatch.delenv("NO_SUCH_SWIFT_KEY", raising=False)
    monkeypatch.setenv("SWIFT_TEST_DUMMY_KEY", "dummy")
    base = {"auth_url": "http://127.0.0.1:9/auth/v1.0", "user": "test:tester"}
    for options, text in [({**base}, "must be set"),
                          ({**base, "key_env": "NO_SUCH_SWIFT_KEY"}, "must be set"),
                          ({**base, "key_file": str(tmp_path / "absent")}, "cannot read key_file"),
                          ({**base, "key_env": "SWIFT_TEST_DUMMY_KEY", "auth_version": "2"}, "auth_version"),
                          ({**base, "key_env": "SWIFT_TEST_DUMMY_KEY", "timeout": "soon"}, "timeout"),
                          ({**base, "key_env": "SWIFT_TEST_DUMMY_KEY", "container": "a/b"}, "contains '/'")]:
        with pytest.raises(ProviderError, match=text) as e:
            hook("before_backup", run=new_run(), engine=None, settings=ProviderSettings("swift", options))
        assert not e.value.transient


def test_unreachable_swift_is_transient(monkeypatch):
    monkeypatch.setenv("SWIFT_TEST_DUMMY_KEY", "dummy")
    settings = ProviderSettings("swift", {"auth_url": "http://127.0.0.1:9/auth/v1.0", "user": "test:tester",
                                          "key_env": "SWIFT_TEST_DUMMY_KEY"}, system="sys1")
    with pytest.raises(ProviderError, match="swift container ovirt-backup-sys1: .*unreachable") as e:
        listed(settings)
    assert e.value.transient


def test_missing_container_is_a_permanent_error_when_listing(swift_service):
    settings = swift_service.settings(container="no-such-container-" + uuid.uuid4().hex[:8])
    with pytest.raises(ProviderError, match="not found") as e:
        listed(settings)
    assert not e.value.transient


def test_unreadable_manifest_is_reported(swift_service, settings, swift_container):
    run, _ = backup(settings, [vm("alpha")])
    conn = swift_service.connection()
    conn.put_object(swift_container, f"runs/{run.id}.json", b'{"run": "truncated')
    conn.close()
    with pytest.raises(ProviderError, match=f"manifest runs/{run.id}.json in container "
                                            f"{swift_container} is unreadable") as e:
        listed(settings)
    assert not e.value.transient


def test_loads_without_swiftclient():
    """Importing the provider needs no swiftclient; using it says what is missing."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['swiftclient'] = None\n"
        "from ovirt_backup_plugin.model import ProviderSettings\n"
        "from ovirt_backup_plugin.errors import ProviderError\n"
        "from ovirt_backup_plugin.hooks import swift\n"
        "try:\n"
        "    swift.list_restorable(settings=ProviderSettings('swift', {}), datacenter=None)\n"
        "except ProviderError as e:\n"
        "    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "python-swiftclient is not installed" in out.stdout
