"""Synthesized cassettes: OVFs in the engine's dialect, and inventories the SDK reads."""
import json
import subprocess
import sys
from pathlib import Path

import ovirtsdk4 as sdk
import pytest
from lxml import etree
from ovirtsdk4 import types
from vcr.persisters.filesystem import FilesystemPersister
from vcr.serializers import jsonserializer, yamlserializer

from ovirt_backup_plugin.testing import synth
from ovirt_backup_plugin.testing.replay import ReplayEngine
from ovirt_backup_plugin.testing.synth import SynthDisk, SynthNic

PROJECT_ROOT = Path(__file__).resolve().parent.parent
NS = {"ovf": synth.OVF_NS, "rasd": synth.RASD_NS, "xsi": synth.XSI_NS}
OVF_ATTR = "{%s}" % synth.OVF_NS
SD, DC, VM = ("a7213dfe-8932-4293-a0dd-5386c9cf0800", "9fb93534-081c-4253-b1e2-73a87984a8ab",
              "3c85b930-b9f0-420f-929e-04e213311e91")


def sample_ovf(**kw):
    args = dict(cluster="prod-a", os="rhel_8x64", memory_mb=4096, cpus=4, seed=7,
                description="web & api", datacenter_id=DC,
                disks=[SynthDisk("web01_Disk1", 30, 6, boot=True, storage_domain=SD)],
                nics=[SynthNic("nic1", "ovirtmgmt", "mgmt-profile", mac="56:6f:00:00:00:01")])
    args.update(kw)
    return synth.make_ovf(VM, "web01", **args)


def items(root, resource_type):
    return [i for i in root.iterfind(".//Item")
            if i.findtext("rasd:ResourceType", namespaces=NS) == str(resource_type)]


def connect(server):
    return sdk.Connection(url=server.url, username="admin@internal", password="replay-secret")


@pytest.fixture
def serve(tmp_path):
    servers = []

    def _serve(engine, **kw):
        server = ReplayEngine([engine.write_cassette(tmp_path / f"e{len(servers)}.yaml", **kw)])
        servers.append(server.start())
        return server

    yield _serve
    for server in servers:
        server.stop()


# -- SSO ----------------------------------------------------------------------------------
def test_sso_interactions_grant_reject_and_log_out():
    grant, reject, logout = synth.sso_interactions(username="ops@internal", token="tok-1")
    assert json.loads(grant["response"]["body"]["string"])["access_token"] == "tok-1"
    assert grant["response"]["headers"]["content-type"] == ["application/json"]
    assert grant["request"]["body"].endswith("username=ops%40internal&password=***")
    assert reject["response"]["status"]["code"] == 400
    assert json.loads(reject["response"]["body"]["string"])["error_code"] == "access_denied"
    assert reject["request"]["body"].endswith("password=***rejected***")
    assert logout["request"]["uri"].endswith("/ovirt-engine/services/sso-logout")
    with pytest.raises(ValueError):
        synth.sso_interactions(token="x" * 24)


# -- OVF ----------------------------------------------------------------------------------
def test_ovf_says_what_the_vm_is():
    root = etree.fromstring(sample_ovf().encode())
    assert root.tag == "{%s}Envelope" % synth.OVF_NS and root.get(OVF_ATTR + "version") == "4.1.0.0"
    content = root.find("Content")
    assert [content.findtext(t) for t in ("Name", "Description", "ClusterName",
                                          "ClusterCompatibilityVersion", "TemplateName")] == [
        "web01", "web & api", "prod-a", "4.7", "Blank"]
    os_section = content.find("Section[@xsi:type='ovf:OperatingSystemSection_Type']", NS)
    assert os_section.findtext("Description") == "rhel_8x64"

    cpu, = items(root, 3)
    assert [cpu.findtext(f"rasd:{t}", namespaces=NS)
            for t in ("num_of_sockets", "cpu_per_socket", "VirtualQuantity")] == ["2", "2", "4"]
    memory, = items(root, 4)
    assert memory.findtext("rasd:VirtualQuantity", namespaces=NS) == "4096"

    disk = root.find(".//Disk")
    disk_item, = items(root, 17)
    disk_id, image_id = disk.get(OVF_ATTR + "fileRef").split("/")
    assert disk.get(OVF_ATTR + "diskId") == image_id != disk_id
    assert disk_id != SD                   # fileRef is <disk id>/<image id>, as the engine has it
    assert disk_item.findtext("rasd:HostResource", namespaces=NS) == f"{disk_id}/{image_id}"
    assert [disk.get(OVF_ATTR + a) for a in ("size", "actual_size", "disk-interface", "boot",
                                             "disk-alias")] == [
        "30", "6", "VirtIO_SCSI", "true", "web01_Disk1"]
    assert disk_item.findtext("rasd:StorageId", namespaces=NS) == SD
    assert disk_item.findtext("rasd:StoragePoolId", namespaces=NS) == DC
    snapshot = root.find(".//Snapshot")
    assert snapshot.get(OVF_ATTR + "id") == disk.get(OVF_ATTR + "vm_snapshot_id")
    assert snapshot.findtext("Type") == "ACTIVE"

    nic, = items(root, 10)
    assert [nic.findtext(f"rasd:{t}", namespaces=NS)
            for t in ("Name", "Connection", "OtherResourceType", "MACAddress")] == [
        "nic1", "ovirtmgmt", "mgmt-profile", "56:6f:00:00:00:01"]
    devices = {i.findtext("Type") for i in root.iterfind(".//Item")}
    assert {"video", "graphics", "controller", "channel", "balloon", "rng"} <= devices
    assert {i.findtext("Device") for i in root.iterfind(".//Item")} >= {"usb", "virtio-scsi"}


def test_ovf_is_reproducible_and_the_seed_varies_it():
    assert sample_ovf() == sample_ovf()
    assert sample_ovf(seed=8) != sample_ovf()
    assert 10_000 < len(sample_ovf()) < 16_000           # a real one-disk VM: 12 KB


def test_ovf_has_the_structure_of_a_real_engine_ovf(real_engine):
    real = etree.parse(str(real_engine / "ovf" / "rhel7s_17a94da8.ovf")).getroot()
    ours = etree.fromstring(sample_ovf(nics=[SynthNic()]).encode())

    def general(root):
        return {e.tag for e in root.find("Content") if e.tag != "Section"}

    assert general(ours) <= general(real)
    assert general(real) - general(ours) <= {"app_list", "quota_id"}
    def sections(root):
        xsi_type = "{%s}type" % synth.XSI_NS
        return [s.get(xsi_type) for s in root.find("Content").iterfind("Section[@xsi:type]", NS)]

    assert sections(ours) == sections(real)
    for path in (".//Disk", ".//References/File"):
        assert set(ours.find(path).attrib) == set(real.find(path).attrib)
    for rtype in (3, 4, 17, 10, 23, 20, 26, 15):
        real_item, our_item = items(real, rtype)[0], items(ours, rtype)[0]
        assert [e.tag for e in our_item] == [e.tag for e in real_item], rtype
    # the engine's own convention, which the synthesized OVF follows
    real_disk, real_item = real.find(".//Disk"), items(real, 17)[0]
    assert real_disk.get(OVF_ATTR + "fileRef").split("/")[0] != real_item.findtext(
        "rasd:StorageId", namespaces=NS)


# -- an engine through the SDK ----------------------------------------------------------------
def test_demo_engine_as_the_sdk_sees_it(serve):
    demo = synth.demo_engine()
    server = serve(demo)
    conn = connect(server)
    system = conn.system_service()
    dcs = {dc.id: dc.name for dc in system.data_centers_service().list()}
    clusters = {c.name: dcs[c.data_center.id] for c in system.clusters_service().list()}
    masters = {name: [sd.name for sd in system.data_centers_service().data_center_service(
        dc_id).storage_domains_service().list() if sd.master] for dc_id, name in dcs.items()}
    vms = system.vms_service()
    scoped = {name: [vm.name for vm in vms.list(all_content=True, max=100,
                                                 search=f"datacenter={name} page 1")]
              for name in dcs.values()}
    listed = {vm.name: vm for vm in vms.list(all_content=True, max=100, search="page 1")}
    locked = vms.vm_service(listed["lab-db01"].id).get(all_content=True)
    conn.close()

    assert clusters == {"prod-a": "Production", "prod-b": "Production", "lab": "Lab"}
    assert masters == {"Production": ["prod-data1"], "Lab": ["lab-data1"]}
    assert scoped == {"Production": ["web01", "db01", "app01", "win-ad01"],
                      "Lab": ["lab-build01", "lab-db01"]}
    assert listed["lab-db01"].initialization is None
    assert "<Name>lab-db01</Name>" in locked.initialization.configuration.data
    for vm in demo.vms:
        if vm.name != "lab-db01":
            assert listed[vm.name].initialization.configuration.data == vm.ovf
    assert server.unmatched == []


def small_engine(count=6):
    eng = synth.SyntheticEngine(seed=5)
    dc = eng.add_datacenter("DC 1")
    eng.add_cluster("c1", dc)
    eng.add_storage_domain("sd1", dc, master=True)
    for n in range(count):
        eng.add_vm(f"vm{n}", "c1")
    return eng


def walk_pages(vms_service, size, datacenter=None):
    """What the adapter does: page n+1 only when page n was full."""
    names, page = [], 1
    while True:
        got = vms_service.list(all_content=True, max=size,
                               search=synth.page_search(page, datacenter))
        names += [vm.name for vm in got]
        if len(got) < size:
            return names, page
        page += 1


def test_a_full_last_page_is_followed_by_an_empty_one(serve):
    server = serve(small_engine(6), page_size=3)
    conn = connect(server)
    names, pages = walk_pages(conn.system_service().vms_service(), 3)
    scoped, _ = walk_pages(conn.system_service().vms_service(), 3, "DC 1")
    conn.close()
    assert names == scoped == [f"vm{n}" for n in range(6)]
    assert pages == 3
    assert server.unmatched == []


def test_search_values_with_spaces_are_quoted():
    assert synth.page_search(2) == "page 2"
    assert synth.page_search(1, "Lab") == "datacenter=Lab page 1"
    assert synth.page_search(1, "DC 1") == 'datacenter="DC 1" page 1'


def test_an_ovf_missing_always_is_missing_from_list_and_get(serve):
    eng = small_engine(1)
    eng.add_vm("broken", "c1", ovf_missing_always=True)
    server = serve(eng)
    conn = connect(server)
    vms = conn.system_service().vms_service()
    listed = vms.list(all_content=True, max=100, search="page 1")
    again = vms.vm_service(listed[1].id).get(all_content=True)
    conn.close()
    assert [vm.name for vm in listed] == ["vm0", "broken"]
    assert listed[0].initialization is not None
    assert listed[1].initialization is None and again.initialization is None


def test_an_error_served_once_then_the_regular_answer(serve):
    eng = small_engine(2)
    page1 = synth.with_query("/ovirt-engine/api/vms", all_content="true", max="100",
                             search="page 1")
    eng.add_error("GET", page1, 503, detail="engine restarting")
    server = serve(eng)
    conn = connect(server)
    vms = conn.system_service().vms_service()
    with pytest.raises(sdk.Error) as err:
        vms.list(all_content=True, max=100, search="page 1")
    again = vms.list(all_content=True, max=100, search="page 1")
    conn.close()
    assert err.value.code == 503 and err.value.fault.detail == "engine restarting"
    assert [vm.name for vm in again] == ["vm0", "vm1"]


def test_a_permanent_error_replaces_the_answer(serve):
    eng = small_engine(1)
    eng.add_error("GET", "datacenters", 500, times=None)
    server = serve(eng)
    conn = connect(server)
    for _ in range(2):
        with pytest.raises(sdk.Error) as err:
            conn.system_service().data_centers_service().list()
        assert err.value.code == 500
    conn.close()


def test_restores_answer_in_order_with_the_engines_conflicts(serve):
    eng = small_engine(0)
    eng.add_restore("copy", cluster="c1")
    eng.add_restore("copy", status=409, conflict="name")
    server = serve(eng)
    conn = connect(server)
    vm = types.Vm(name="copy", cluster=types.Cluster(name="c1"),
                  initialization=types.Initialization(configuration=types.Configuration(
                      type=types.ConfigurationType.OVF, data="<ovf/>")))
    created = conn.system_service().vms_service().add(vm)
    with pytest.raises(sdk.Error) as err:
        conn.system_service().vms_service().add(vm)
    conn.close()
    assert created.name == "copy" and created.cluster.id == eng.clusters[0].id
    assert err.value.code == 409 and err.value.fault.detail == synth.CONFLICT_NAME


# -- cassette files -------------------------------------------------------------------------
def test_written_cassettes_load_with_vcrpy(tmp_path):
    eng = small_engine(2)
    yaml_path = eng.write_cassette(tmp_path / "e.yaml")
    json_path = eng.write_cassette(tmp_path / "e.json")
    assert yaml_path.read_text().startswith("# synthesized")
    count = len(eng.interactions())
    for path, serializer in ((yaml_path, yamlserializer), (json_path, jsonserializer)):
        requests, responses = FilesystemPersister.load_cassette(path, serializer)[:2]
        assert len(requests) == len(responses) == count
        assert requests[0].uri == "https://engine.example.com/ovirt-engine/sso/oauth/token"


def test_make_cassettes_reproduces_the_committed_cassettes(tmp_path):
    subprocess.run([sys.executable, str(PROJECT_ROOT / "scripts" / "make-cassettes"),
                    "--out", str(tmp_path)], check=True, capture_output=True)
    for name in ("sso.yaml", "demo-engine.yaml"):
        assert (tmp_path / name).read_bytes() == (PROJECT_ROOT / "cassettes" / name).read_bytes()
