"""msd: the engine's own OVF_STORE, forced on backup, registered on restore.

Everything goes through the real host code (plugin manager, provider handles, run_backup,
gather/select/restore) and the real ovirtsdk4 over HTTP to a replay engine serving a
cassette synthesized by :class:`ovirt_backup_plugin.testing.synth.SyntheticEngine`. Assertions
are on what the engine receives (paths, bodies, order) and what the user reads (report,
messages, exit codes).
"""
from pathlib import Path
from xml.etree import ElementTree

import pytest
from ovirtsdk4 import types

from ovirt_backup_plugin import hookimpl
from ovirt_backup_plugin.backup.run import EXIT_FAILED, EXIT_OK, EXIT_PARTIAL, run_backup
from ovirt_backup_plugin.engine import EngineSettings
from ovirt_backup_plugin.errors import ConfigError, ProviderError
from ovirt_backup_plugin.host import ProviderHandle, Session
from ovirt_backup_plugin.model import (
    KEEPS_NOTHING,
    ProviderDeclaration,
    Query,
    RestoreRequest,
    VnicProfileMapping,
)
from ovirt_backup_plugin.restore.listing import gather, select
from ovirt_backup_plugin.restore.restore import restore
from ovirt_backup_plugin.testing import synth
from ovirt_backup_plugin.testing.replay import ReplayEngine

API = "/ovirt-engine/api"
FAST = {"retries": "2", "retry_delay": "0", "busy_wait": "0", "confirm_timeout": "0"}


# -- an engine with two data centers and a domain brought from another engine ------------------
def inventory(**ovf_store):
    """Production (prod-data1 master, prod-data2) and Lab (lab-data1 master), four VMs.

    prod-data2 was attached from another engine: it brings the template ``rhel8-base``
    and the VM ``legacy-app``; lab-data1 brings ``lab-old``. ``ovf_store`` maps a domain
    name to :meth:`SyntheticEngine.add_ovf_store_update` arguments.
    """
    eng = synth.SyntheticEngine(seed=11)
    prod = eng.add_datacenter("Production")
    lab = eng.add_datacenter("Lab")
    eng.add_cluster("prod-a", prod)
    eng.add_cluster("lab", lab)
    eng.add_storage_domain("prod-data1", prod, master=True)
    eng.add_storage_domain("prod-data2", prod)
    eng.add_storage_domain("lab-data1", lab, master=True)
    for name, cluster in (("web01", "prod-a"), ("db01", "prod-a"), ("app01", "prod-a"),
                          ("build01", "lab")):
        eng.add_vm(name, cluster)
    eng.add_unregistered("rhel8-base", "prod-data2", kind="template")
    eng.add_unregistered("legacy-app", "prod-data2", description="from the old engine")
    eng.add_unregistered("lab-old", "lab-data1")
    for domain, kwargs in ovf_store.items():
        eng.add_ovf_store_update(domain, **kwargs)
    return eng


def sd_id(eng, name):
    return next(sd.id for sd in eng.storage_domains if sd.name == name)


def entity(eng, name):
    return next(e for e in eng.unregistered if e.name == name)


class Counter:
    """A provider that keeps OVFs (counts them): makes the run read every VM."""

    def __init__(self):
        self.vms = []

    @hookimpl
    def declare_provider(self):
        return ProviderDeclaration(keeps=KEEPS_NOTHING)

    @hookimpl
    def write_ovf(self, run, vm, settings):
        self.vms.append(vm.name)
        return True


@pytest.fixture
def site(tmp_path):
    """``site(eng, options=..., datacenter=..., extra=...)``: (server, engine, handles)."""
    opened = []

    def _site(eng, *, options=None, datacenter=None, extra=()):
        server = ReplayEngine([eng.write_cassette(tmp_path / f"engine{len(opened)}.yaml")])
        server.start()
        msd_options = dict(FAST if options is None else options)
        session = Session.for_engine(
            EngineSettings(url=server.url, username=server.username, password=server.password,
                           retries=0, retry_delay=0),
            system="site", providers=["msd"], state_dir=str(tmp_path),
            provider_options={"msd": msd_options}, extra=list(extra),
            **({"datacenter": datacenter} if datacenter else {}))
        engine = session.engine
        opened.append((server, engine))
        return server, engine, session.handles

    yield _site
    for server, engine in opened:
        engine.close()
        server.stop()


def posts(server, suffix):
    return [r for r in server.received if r.method == "POST" and r.path.endswith(suffix)]


def update_targets(server):
    """Domain ids that got ``POST .../updateovfstore``, in order."""
    return [r.path.split("/")[-2] for r in posts(server, "/updateovfstore")]


def xml(body):
    return ElementTree.fromstring(body)


# -- backup: one forced update per data center, on its master -------------------------------
def test_backup_forces_one_update_per_data_center_on_its_master_not_per_vm(site):
    eng = inventory()
    counter = Counter()
    server, engine, handles = site(eng, extra=[("counter", counter)])
    lines = []
    report = run_backup(engine, handles, system="site", echo=lines.append)

    assert sorted(counter.vms) == ["app01", "build01", "db01", "web01"]   # 4 VMs were read
    assert update_targets(server) == [sd_id(eng, "prod-data1"), sd_id(eng, "lab-data1")]
    for request in posts(server, "/updateovfstore"):
        action = xml(request.body)
        assert (action.tag, action.findtext("async")) == ("action", "false")
    msd = report.providers["msd"]
    assert msd.ok and report.exit_code == EXIT_OK
    assert [m.split(";")[0] for m in msd.messages] == [
        "OVF_STORE of data center Production on master domain prod-data1 updated",
        "OVF_STORE of data center Lab on master domain lab-data1 updated"]
    assert any(line.startswith("  msd: OVF_STORE of data center Lab") for line in lines)
    assert server.unmatched == []


@pytest.mark.parametrize("scope", ["run", "provider"])
def test_a_data_center_scope_updates_only_that_master(site, scope):
    eng = inventory()
    kwargs = {"datacenter": "Lab"} if scope == "run" else {
        "options": dict(FAST, datacenter="Lab")}
    server, engine, handles = site(eng, **kwargs)
    report = run_backup(engine, handles, system="site")

    assert report.run.datacenter == "Lab"
    assert update_targets(server) == [sd_id(eng, "lab-data1")]
    assert [m.split(";")[0] for m in report.providers["msd"].messages] == [
        "OVF_STORE of data center Lab on master domain lab-data1 updated"]
    # only Lab's domains were asked for
    assert not any(sd_id(eng, "prod-data1") in r.path for r in server.received)


def test_the_run_report_carries_the_time_the_engine_confirmed(site):
    eng = inventory(**{"lab-data1": {"written_at": "2026-11-26T07:00:00.000+00:00"}})
    server, engine, handles = site(eng, datacenter="Lab")
    report = run_backup(engine, handles, system="site")

    message, = report.providers["msd"].messages
    assert "2026-11-26 07:00:00 UTC" in message


def test_the_report_claims_no_time_the_engine_did_not_give(site):
    """A real engine's REST shows no "Last Updated"; the report must not invent one."""
    eng = inventory()
    server, engine, handles = site(eng, datacenter="Lab")
    disks = engine.system_service.storage_domains_service().storage_domain_service(
        sd_id(eng, "lab-data1")).disks_service().list()
    report = run_backup(engine, handles, system="site")

    stores = [d for d in disks if d.content_type == types.DiskContentType.OVF_STORE]
    assert [(d.alias, d.description) for d in stores] == [("OVF_STORE", "OVF_STORE")] * 2
    assert [d.alias for d in disks if d not in stores] == ["build01_Disk1"]
    message, = report.providers["msd"].messages
    assert "2026" not in message and "last updated unknown" in message


# -- 409 "OVF data is currently being updated" --------------------------------------------------
def test_a_busy_ovf_store_is_retried_by_the_host_without_forcing_the_others_again(site):
    eng = inventory(**{"lab-data1": {"busy": 2}})
    server, engine, handles = site(eng)
    report = run_backup(engine, handles, system="site")

    prod, lab = sd_id(eng, "prod-data1"), sd_id(eng, "lab-data1")
    assert update_targets(server) == [prod, lab, lab, lab]
    msd = report.providers["msd"]
    assert msd.ok and report.exit_code == EXIT_OK
    assert [m.split(" on ")[0] for m in msd.messages] == [
        "OVF_STORE of data center Production", "OVF_STORE of data center Lab"]


@pytest.mark.parametrize("options, waits", [
    ({"retries": "2", "confirm_timeout": "0"}, [10.0, 20.0]),                             # busy_wait default: 10 s
    ({"retries": "2", "retry_delay": "0", "busy_wait": "0", "confirm_timeout": "0"}, [0.0, 0.0]),
    ({"retries": "1", "retry_delay": "0", "busy_wait": "3", "confirm_timeout": "0"}, [3.0]),
])
def test_the_host_waits_busy_wait_between_attempts(site, options, waits):
    eng = inventory(**{"lab-data1": {"busy": len(waits)}})
    server, engine, handles = site(eng, options=options, datacenter="Lab")
    slept = []
    h = handles[0]
    handle = ProviderHandle(h.pm, "msd", h.settings, h.declaration, h.host, sleep=slept.append)
    report = run_backup(engine, [handle], system="site")

    assert slept == waits
    assert report.providers["msd"].ok
    assert len(update_targets(server)) == len(waits) + 1


def test_busy_wait_must_be_seconds(site):
    with pytest.raises(ConfigError, match=r"\[provider:msd\] busy_wait = 'soon'"):
        site(inventory(), options=dict(FAST, busy_wait="soon"))


@pytest.mark.parametrize("with_other, exit_code", [(False, EXIT_FAILED), (True, EXIT_PARTIAL)])
def test_a_store_busy_beyond_the_retries_fails_the_provider(site, with_other, exit_code):
    eng = inventory(**{"lab-data1": {"busy": 5}})
    extra = [("counter", Counter())] if with_other else []
    server, engine, handles = site(eng, datacenter="Lab", extra=extra)
    report = run_backup(engine, handles, system="site")

    assert update_targets(server) == [sd_id(eng, "lab-data1")] * 3     # 1 + retries
    msd = report.providers["msd"]
    assert not msd.ok
    assert ("msd: OVF_STORE busy, retried later: data center Lab: master domain lab-data1"
            in msd.reason)
    assert "OVF data is currently being updated" in msd.reason
    assert report.exit_code == exit_code
    assert "msd FAILED" in report.summary()
    assert report.providers.get("counter") is None or report.providers["counter"].ok


def test_the_other_409_of_the_call_is_retried_too(site):
    eng = inventory(**{"lab-data1": {"busy": 1, "busy_detail": synth.OVF_STORE_LOCKED}})
    server, engine, handles = site(eng, datacenter="Lab")
    report = run_backup(engine, handles, system="site")

    assert report.providers["msd"].ok
    assert len(update_targets(server)) == 2


# -- each data center on its own ---------------------------------------------------------
def multi_dc(*order):
    """Data centers in ``order``: "ok" (a healthy one, with its master), "empty" (no storage:
    uninitialized), "unknown" (its master in status unknown)."""
    eng = synth.SyntheticEngine(seed=5)
    for n, kind in enumerate(order):
        dc = eng.add_datacenter(f"{kind}{n}", status="uninitialized" if kind == "empty" else "up")
        eng.add_cluster(f"c{n}", dc)
        if kind != "empty":
            eng.add_storage_domain(f"{kind}{n}-master", dc, master=True,
                                   status="unknown" if kind == "unknown" else "active")
            eng.add_vm(f"vm{n}", f"c{n}")
    return eng


@pytest.mark.parametrize("order", [("empty", "ok"), ("ok", "empty"), ("empty", "ok", "empty")])
def test_a_data_center_without_storage_is_skipped_and_the_others_are_updated(site, order):
    eng = multi_dc(*order)
    server, engine, handles = site(eng)
    report = run_backup(engine, handles, system="site")

    msd = report.providers["msd"]
    assert msd.ok and report.exit_code == EXIT_OK, report.summary()
    ok = [n for n, kind in enumerate(order) if kind == "ok"]
    assert update_targets(server) == [sd_id(eng, f"ok{n}-master") for n in ok]
    for n, kind in enumerate(order):
        (line,) = [m for m in msd.messages if f"data center {kind}{n}" in m]
        if kind == "empty":
            assert "skipped: it is uninitialized" in line
        else:
            assert line.startswith(f"OVF_STORE of data center ok{n} on master domain")


def test_a_master_in_status_unknown_is_reported_not_retried(site):
    eng = multi_dc("unknown", "ok")
    server, engine, handles = site(eng)
    report = run_backup(engine, handles, system="site")

    assert update_targets(server) == [sd_id(eng, "ok1-master")]        # asked once, no retry
    msd = report.providers["msd"]
    assert msd.ok
    assert any("data center unknown0 skipped: its master domain unknown0-master is unknown, "
               "not active" in m for m in msd.messages)


def test_a_not_active_409_is_permanent_and_the_other_data_centers_go_on(site):
    eng = multi_dc("ok", "ok")
    eng.add_ovf_store_update("ok0-master", busy=5, busy_detail=synth.OVF_STORE_NOT_ACTIVE)
    server, engine, handles = site(eng)
    report = run_backup(engine, handles, system="site")

    first, second = sd_id(eng, "ok0-master"), sd_id(eng, "ok1-master")
    assert update_targets(server) == [first, second]                 # no retry of the refusal
    msd = report.providers["msd"]
    # partial, not failed: ok1 was updated; the run names the data center that was not
    assert not msd.ok and msd.partial and report.exit_code == EXIT_PARTIAL
    assert "msd PARTIAL" in report.summary()
    assert "data center ok0 (master domain ok0-master refused the update" in msd.reason
    assert "must be an active data domain" in msd.reason
    assert any(m.startswith("OVF_STORE of data center ok1 on master domain ok1-master updated")
               for m in msd.messages)


def test_the_confirmation_read_failing_never_blocks_the_update(site):
    eng = inventory(**{"lab-data1": {"written_at": "2026-11-26T07:00:00.000+00:00"}})
    eng.add_error("GET", synth.with_query(f"{API}/events", max="1",
                                          search=synth.ovf_store_event_search("lab-data1")),
                  500, times=None)
    server, engine, handles = site(eng, datacenter="Lab")
    report = run_backup(engine, handles, system="site")

    assert update_targets(server) == [sd_id(eng, "lab-data1")]
    (message,) = report.providers["msd"].messages
    assert report.providers["msd"].ok and "not confirmed by the engine yet" in message


# -- listing -------------------------------------------------------------------------------
def test_list_restorable_gives_the_unregistered_vms_and_templates_with_names(site):
    eng = inventory()
    server, engine, handles = site(eng)
    listing = gather(handles, engine, Query())

    assert listing.errors == {}
    got = sorted((i.kind, i.name, i.datacenter, i.generation, i.location, i.provider)
                 for i in listing.items)
    assert got == [
        ("template", "rhel8-base", "Production", "ovf_store:prod-data2",
         sd_id(eng, "prod-data2"), "msd"),
        ("vm", "lab-old", "Lab", "ovf_store:lab-data1", sd_id(eng, "lab-data1"), "msd"),
        ("vm", "legacy-app", "Production", "ovf_store:prod-data2", sd_id(eng, "prod-data2"),
         "msd")]
    assert {i.vm_id for i in listing.items} == {e.id for e in eng.unregistered}
    asked = {(r.path, r.query.get("unregistered")) for r in server.received
             if r.path.endswith(("/vms", "/templates")) and "storagedomains" in r.path}
    assert asked == {(f"{API}/storagedomains/{sd.id}/{coll}", "true")
                     for sd in eng.storage_domains for coll in ("vms", "templates")}
    assert [i.name for i in listing.newest()] == ["rhel8-base", "lab-old", "legacy-app"]


def test_list_restorable_keeps_to_the_data_center_asked(site):
    eng = inventory()
    server, engine, handles = site(eng)
    listing = gather(handles, engine, Query(datacenter="Lab"))

    assert [(i.name, i.datacenter) for i in listing.items] == [("lab-old", "Lab")]
    assert not any(sd_id(eng, "prod-data2") in r.path for r in server.received)


# -- restore: register templates first, then VMs, then rename --------------------------------
def register_requests(server):
    return [r for r in server.received if r.method == "POST" and r.path.endswith("/register")]


def test_restore_registers_templates_before_vms_with_the_cluster(site):
    eng = inventory()
    server, engine, handles = site(eng)
    listing = gather(handles, engine, Query())
    items = select(listing, ["legacy-app", "rhel8-base"])       # the VM asked first
    lines = []
    outcome = restore(items, {h.name: h for h in handles}, engine, cluster="prod-a",
                      echo=lines.append)

    sd = sd_id(eng, "prod-data2")
    template, vm = entity(eng, "rhel8-base"), entity(eng, "legacy-app")
    requests = register_requests(server)
    assert [r.path for r in requests] == [
        f"{API}/storagedomains/{sd}/templates/{template.id}/register",
        f"{API}/storagedomains/{sd}/vms/{vm.id}/register"]
    t_body, v_body = (xml(r.body) for r in requests)
    assert t_body.findtext("cluster/name") == v_body.findtext("cluster/name") == "prod-a"
    assert t_body.findtext("allow_partial_import") == "true"
    assert t_body.find("reassign_bad_macs") is None          # not a template parameter
    assert (v_body.findtext("allow_partial_import"), v_body.findtext("reassign_bad_macs")) == (
        "true", "true")
    assert v_body.find("registration_configuration") is None
    assert not any(r.method == "PUT" for r in server.received)  # same name: no rename
    assert outcome.restored == ["rhel8-base", "legacy-app"] and outcome.exit_code == 0
    assert "  restored legacy-app as VM %s in cluster prod-a" % vm.id in lines


def test_register_sends_the_mappings_and_flags_asked(site):
    eng = inventory()
    server, engine, handles = site(eng)
    item, = [i for i in gather(handles, engine, Query()).items if i.name == "lab-old"]
    request = RestoreRequest(item=item, name="lab-old", cluster="lab",
                             allow_partial_import=False, reassign_bad_macs=False,
                             vnic_profile_mappings=(
                                 VnicProfileMapping("ovirtmgmt/mgmt-old", "profile-1"),
                                 VnicProfileMapping("lab-net", "profile-2")))
    result = handles[0].restore_vm(request, engine)

    body = xml(register_requests(server)[0].body)
    assert (body.findtext("cluster/name"), body.findtext("allow_partial_import"),
            body.findtext("reassign_bad_macs")) == ("lab", "false", "false")
    mappings = body.findall("registration_configuration/vnic_profile_mappings/"
                            "registration_vnic_profile_mapping")
    assert [(m.findtext("from/network/name"), m.findtext("from/name"), m.find("to").get("id"))
            for m in mappings] == [("ovirtmgmt", "mgmt-old", "profile-1"),
                                   ("lab-net", "lab-net", "profile-2")]
    assert (result.vm_id, result.name, result.notes) == (item.vm_id, "lab-old", ())


def test_a_vm_asked_under_another_name_is_renamed_after_registering(site):
    eng = inventory()
    eng.add_rename("legacy-app", "legacy-app-restored")
    server, engine, handles = site(eng)
    item, = [i for i in gather(handles, engine, Query()).items if i.name == "legacy-app"]
    result = handles[0].restore_vm(RestoreRequest(item=item, name="legacy-app-restored"),
                                   engine)

    vm = entity(eng, "legacy-app")
    calls = [(r.method, r.path) for r in server.received if r.method in ("POST", "PUT")
             and "sso" not in r.path]
    assert calls == [("POST", f"{API}/storagedomains/{sd_id(eng, 'prod-data2')}/vms/"
                              f"{vm.id}/register"),
                     ("PUT", f"{API}/vms/{vm.id}")]
    assert xml(server.received[-1].body).findtext("name") == "legacy-app-restored"
    assert server.unmatched == []
    assert result.name == "legacy-app-restored"
    assert result.notes == ("registered as legacy-app, then renamed to legacy-app-restored",)


def test_a_template_is_not_renamed_and_nothing_is_registered(site):
    eng = inventory()
    server, engine, handles = site(eng)
    item, = [i for i in gather(handles, engine, Query()).items if i.name == "rhel8-base"]
    with pytest.raises(ProviderError, match="registers templates under their own name"):
        handles[0].restore_vm(RestoreRequest(item=item, name="rhel8-golden"), engine)
    assert register_requests(server) == []


@pytest.mark.parametrize("kwargs", [{"copies": 2}, {"new_ids": True},
                                    {"pattern": "{name}-copy", "new_ids": True}])
def test_copies_with_new_ids_are_refused_before_anything_is_registered(site, kwargs):
    eng = inventory()
    server, engine, handles = site(eng)
    items = select(gather(handles, engine, Query()), ["legacy-app"])
    lines = []
    outcome = restore(items, {h.name: h for h in handles}, engine, echo=lines.append, **kwargs)

    assert register_requests(server) == []
    assert outcome.restored == [] and outcome.exit_code == 2
    assert len(outcome.failed) == kwargs.get("copies", 1)
    for failure in outcome.failed:
        assert ("msd: legacy-app: msd registers the vm that storage domain prod-data2 holds, "
                "with its own id; it cannot make copies with new ids") in failure
    assert any(line.startswith("  FAILED ") for line in lines)


def test_an_engine_refusal_fails_that_copy_and_the_restore_goes_on(site):
    eng = inventory()
    vm = entity(eng, "legacy-app")
    eng.add_error("POST", f"{API}/storagedomains/{sd_id(eng, 'prod-data2')}/vms/{vm.id}/register",
                  409, detail=synth.CONFLICT_ID, times=None)
    server, engine, handles = site(eng)
    items = select(gather(handles, engine, Query()), ["legacy-app", "lab-old"])
    outcome = restore(items, {h.name: h for h in handles}, engine, echo=lambda s: None)

    assert outcome.restored == ["lab-old"] and outcome.exit_code == 1
    failure, = outcome.failed
    assert failure.startswith("legacy-app: ") and synth.CONFLICT_ID in failure
    assert len(register_requests(server)) == 2


# -- the synthetic engine as the SDK reads it ---------------------------------------------------
def test_the_disks_of_a_domain_look_like_a_real_engines(site, real_engine):
    recording = (real_engine / "cassettes" / "miq_v4__ovirt_sdk_refresh_recording.yaml")
    with ReplayEngine([recording, Path(__file__).parent.parent / "cassettes" / "sso.yaml"],
                      fallback="path") as real:
        import ovirtsdk4 as sdk

        conn = sdk.Connection(url=real.url, username=real.username, password=real.password)
        real_disks = conn.system_service().disks_service().list()
        conn.close()
    eng = inventory()
    server, engine, handles = site(eng)
    ours = engine.system_service.storage_domains_service().storage_domain_service(
        sd_id(eng, "prod-data1")).disks_service().list()

    def shape(disk):
        return (disk.alias, disk.description, disk.content_type, disk.shareable,
                disk.status, disk.storage_type, disk.format)

    real_stores = {shape(d) for d in real_disks if d.content_type == types.DiskContentType.OVF_STORE}
    our_stores = [shape(d) for d in ours if d.content_type == types.DiskContentType.OVF_STORE]
    assert real_stores and set(our_stores) == real_stores and len(our_stores) == 2
    assert [d.alias for d in ours if d.content_type == types.DiskContentType.DATA] == [
        "web01_Disk1", "db01_Disk1", "app01_Disk1"]


# -- the CLI: restore from msd with the register options -------------------------------------
def test_cli_restore_registers_with_options_and_renames(tmp_path, monkeypatch, cli, write_config):
    from lxml import etree

    monkeypatch.setenv("TEST_ENGINE_PASSWORD", "replay-secret")
    eng = synth.demo_engine()
    eng.add_rename("legacy-app01", "legacy-app01-restored")
    legacy = next(e for e in eng.unregistered if e.name == "legacy-app01")
    with ReplayEngine([eng.write_cassette(tmp_path / "e.yaml")]) as server:
        cfg = write_config(tmp_path, server.url, providers="msd",
                           extra="[provider:msd]\nconfirm_timeout = 0\n")
        code, out, err = cli("--config", cfg, "restore", "legacy-app01",
                             "--name-pattern", "{name}-restored", "--cluster", "prod-a",
                             "--vnic-profile-map", "ovirtmgmt/ovirtmgmt=profile-42",
                             "--keep-bad-macs")
    assert code == 0, (out, err)
    assert "restored legacy-app01-restored" in out
    (register,) = [r for r in server.received if r.path.endswith(f"/vms/{legacy.id}/register")]
    action = etree.fromstring(register.body.encode())
    assert action.findtext("cluster/name") == "prod-a"
    assert action.findtext("allow_partial_import") == "true"
    assert action.findtext("reassign_bad_macs") == "false"
    mapping = action.find("registration_configuration/vnic_profile_mappings/"
                          "registration_vnic_profile_mapping")
    assert mapping.findtext("from/name") == "ovirtmgmt"
    assert mapping.findtext("from/network/name") == "ovirtmgmt"
    assert mapping.find("to").get("id") == "profile-42"
    (rename,) = [r for r in server.received if r.method == "PUT"]
    assert etree.fromstring(rename.body.encode()).findtext("name") == "legacy-app01-restored"


def test_the_run_report_and_the_runner_log_say_per_data_center_what_happened(
        tmp_path, caplog, cli, write_config, serve):
    eng = multi_dc("empty", "ok", "unknown", "empty")
    with serve(tmp_path, eng) as server:
        cfg = write_config(tmp_path, server.url, providers="msd",
                           extra="[provider:msd]\nconfirm_timeout = 0\nbusy_wait = 0")
        code, out, err = cli("--config", cfg, "run", "--once")
    assert code == EXIT_OK, (out, err)
    lines = {
        "empty0": "data center empty0 skipped: it is uninitialized (no storage to update)",
        "ok1": "OVF_STORE of data center ok1 on master domain ok1-master updated",
        "unknown2": ("data center unknown2 skipped: its master domain unknown2-master is "
                     "unknown, not active"),
        "empty3": "data center empty3 skipped: it is uninitialized (no storage to update)"}
    for dc, line in lines.items():
        assert f"msd: {line}" in out, dc                     # the run report
        assert f"provider msd: {line}" in caplog.text, dc    # the runner's log
