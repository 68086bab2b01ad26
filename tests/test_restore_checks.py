"""What the dry run checks, each with its failing case, in the engine's order; what a
configuration cannot bring back (flags from the OVF, through a real backup to ``list`` and
the plan); the OVF rewriting. The CLI and the real SDK against replay engines.
"""
import json

import pytest
from lxml import etree

from ovirt_backup_plugin.errors import OvfError
from ovirt_backup_plugin.model import FLAG_DIRECT_LUN, FLAG_HOST_DEVICE, FLAG_NVRAM, FLAG_TPM
from ovirt_backup_plugin.ovf import parse_ovf
from ovirt_backup_plugin.ovf.rewrite import rewrite_ovf
from ovirt_backup_plugin.testing import synth
from ovirt_backup_plugin.testing.synth import SynthDisk, SynthNic

API = synth.API


def source_site():
    eng = synth.SyntheticEngine(seed=31)
    prod = eng.add_datacenter("Production")
    eng.add_cluster("prod-a", prod)
    eng.add_storage_domain("prod-data", prod, master=True)
    eng.add_vm("web01", "prod-a", nics=[SynthNic("nic1", "ovirtmgmt"),
                                        SynthNic("nic2", "frontend", "frontend-qos")])
    return eng


def target_site(source, *, dc_status="up", disks=True, levels=None, mac_pool=None, **cluster):
    eng = synth.SyntheticEngine(seed=32)
    if levels:
        eng.cluster_levels = levels
    prod = eng.add_datacenter("Production", status=dc_status)
    pool = eng.add_mac_pool(*mac_pool) if mac_pool else None
    eng.add_cluster("prod-a", prod, mac_pool=pool, **cluster)
    eng.add_storage_domain("prod-data", prod, master=True)
    for net in source.networks:
        eng.add_network(net.name, "Production", profiles=list(net.profiles))
    if disks:
        for disk in parse_ovf(source.vms[0].ovf).disks:
            eng.add_disk(disk.id, disk.alias)
    return eng


def plan(tmp_path, cli, write_config, serve, target, *argv, source=None):
    source = source or source_site()
    with serve(tmp_path, source, "source.yaml") as server:
        cfg = write_config(tmp_path, server.url)
        assert cli("--config", cfg, "backup")[0] == 0
    with serve(tmp_path, target, "target.yaml") as server:
        cfg = write_config(tmp_path, server.url)
        code, out, err = cli("--config", cfg, "restore", "web01", "--dry-run", *argv)
        code_j, out_j, _ = cli("--config", cfg, "restore", "web01", "--dry-run", "--json", *argv)
    assert code == code_j
    assert not [r for r in server.received if r.method in ("POST", "PUT", "DELETE")
                and r.path.startswith(API)]
    return code, out + err, json.loads(out_j), server


def problems(report):
    return [(p["topic"], p["text"]) for c in report["copies"] for p in c["problems"]]


def notes(report):
    return [(p["topic"], p["text"]) for c in report["copies"] for p in c["notes"]]


def test_a_clean_plan_into_another_engine(tmp_path, cli, write_config, serve):
    code, out, report, server = plan(tmp_path, cli, write_config, serve, target_site(source_site()))
    assert code == 0, out
    assert ("ok: cluster prod-a (level 4.7, data center Production); no VM of that id or name; "
            "2 networks; 2 vNIC profiles; 1 disk exists") in out
    assert problems(report) == []
    # one VM on a big engine is looked up by search, never by listing every VM
    vm_gets = [r.query for r in server.received if r.path == f"{API}/vms"]
    web01 = source_site().vms[0]
    assert vm_gets == [{"search": f"id={web01.id} or name=web01"}] * 2


def test_a_missing_cluster(tmp_path, cli, write_config, serve):
    code, out, report, _ = plan(tmp_path, cli, write_config, serve, target_site(source_site()),
                                "--cluster", "nowhere")
    assert code == 1
    assert problems(report)[0] == ("cluster", "the engine has no cluster named nowhere (it has: "
                                   "prod-a); give --cluster or --map-cluster")


def test_a_cluster_without_a_bios_type(tmp_path, cli, write_config, serve):
    code, out, report, _ = plan(tmp_path, cli, write_config, serve,
                                target_site(source_site(), bios_type=None))
    assert code == 1
    assert problems(report) == [("bios type", "cluster prod-a has no BIOS type yet (no host was "
                                 "activated in it): the engine refuses every import into it "
                                 "(CLUSTER_BIOS_TYPE_NOT_SET, 409); activate a host in it or "
                                 "set its BIOS type")]


def test_a_level_the_engine_does_not_support_and_one_it_changes(tmp_path, cli, write_config, serve):
    old = ("4.2", "4.3", "4.4", "4.5", "4.6")
    code, _, report, _ = plan(tmp_path, cli, write_config, serve,
                              target_site(source_site(), levels=old, version="4.6"))
    assert code == 1
    assert problems(report) == [("level", "the OVF is of compatibility level 4.7, above what this "
                                 "engine supports (4.2, 4.3, 4.4, 4.5, 4.6): its configuration "
                                 "needs a newer engine")]
    code, _, report, _ = plan(tmp_path / "b", cli, write_config, serve,
                              target_site(source_site(), version="4.6"))
    assert code == 0
    assert ("level", "the OVF is of compatibility level 4.7, above cluster prod-a's 4.6: the "
            "engine imports it at 4.6, changing what that level lacks (event 1229)") in notes(report)


def test_a_data_center_that_is_not_up(tmp_path, cli, write_config, serve):
    code, _, report, _ = plan(tmp_path, cli, write_config, serve,
                              target_site(source_site(), dc_status="maintenance"))
    assert code == 1
    assert problems(report) == [("data center", "data center Production of cluster prod-a is "
                                 "maintenance: the engine refuses imports until it is up "
                                 "(ACTION_TYPE_FAILED_STORAGE_POOL_STATUS_ILLEGAL, 409)")]


def test_networks_and_profiles_after_mapping(tmp_path, cli, write_config, serve):
    code, out, report, _ = plan(tmp_path, cli, write_config, serve, target_site(source_site()),
                                "--map-network", "ovirtmgmt=dr-mgmt",
                                "--map-vnic-profile", "frontend-qos=frontend/gold")
    assert code == 1
    assert problems(report) == [
        ("network", "nic1 uses network dr-mgmt; data center Production (of cluster prod-a) has no "
                    "network of that name: the restored NIC would not be connected"),
        ("vnic profile", "nic2 uses vNIC profile gold of network frontend; data center "
                         "Production (of cluster prod-a) has no vNIC profile of that name on that "
                         "network")]


def test_disks_the_engine_does_not_have(tmp_path, cli, write_config, serve):
    code, _, report, _ = plan(tmp_path, cli, write_config, serve,
                              target_site(source_site(), disks=False))
    assert code == 1
    (disk,) = parse_ovf(source_site().vms[0].ovf).disks
    assert problems(report) == [("disk", f"disk {disk.alias} ({disk.id}) does not exist on the "
                                 "engine: the VM would be created without it (the engine "
                                 "re-attaches only disks that exist, it never creates them)")]


def test_a_mac_pool_too_small_for_the_copies(tmp_path, cli, write_config, serve):
    """8 addresses, one in use by a VM of the pool's cluster: 7 free for copies of a VM with
    two NICs: three copies fit, the fourth and fifth would be refused."""
    source = source_site()
    target = target_site(source, mac_pool=("small", [("56:6f:00:00:00:00", "56:6f:00:00:00:07")]))
    target.add_vm("other", "prod-a", nics=[SynthNic("nic1", "ovirtmgmt", mac="56:6f:00:00:00:03")],
                  disks=[])
    code, out, report, _ = plan(tmp_path, cli, write_config, serve, target, "--copies", "5")
    assert code == 1
    bad = [c["name"] for c in report["copies"] if c["problems"]]
    assert bad == ["web01-4", "web01-5"]
    text = report["copies"][3]["problems"][0]["text"]
    assert text.startswith("MAC pool small has 7 free address(es) (8 in its ranges, 1 in use) "
                           "and these copies need 10: this one's 2 NIC(s) would be refused "
                           "(MAC_POOL_NOT_ENOUGH_MAC_ADDRESSES, 409)")
    # in the engine's order: after the cluster, before the name check's findings
    assert [p["topic"] for p in report["copies"][3]["problems"]] == ["mac pool"]
    assert "MAC pool small: 7 free for" not in out


def test_id_and_name_both_collide(tmp_path, cli, write_config, serve):
    source = source_site()
    with serve(tmp_path, source, "source.yaml") as server:
        cfg = write_config(tmp_path, server.url)
        assert cli("--config", cfg, "backup")[0] == 0
        code, out, _ = cli("--config", cfg, "restore", "web01", "--dry-run", "--json")
    web01 = source.vms[0]
    assert code == 1
    found = [(t, x) for t, x in problems(json.loads(out)) if t in ("id", "name")]
    assert [t for t, _ in found] == ["id", "name"]
    id_text, name_text = [x for _, x in found]
    assert id_text == (f"the engine already has a VM with id {web01.id} (web01): it would refuse "
                       "this one (409); restore a copy with --new-ids and a new name "
                       "(--name-pattern), or remove that VM first")
    assert name_text.startswith(f"the engine already has a VM named web01 ({web01.id})")


def test_many_copies_are_looked_up_by_one_listing(tmp_path, cli, write_config, serve):
    source = source_site()
    code, _, report, server = plan(tmp_path, cli, write_config, serve, target_site(source),
                                   "--copies", "201", "--nics-plugged")
    assert code == 0
    assert len(report["copies"]) == 201
    # (and the MACs the pool's cluster uses, for the copies' new MACs)
    assert [r.query for r in server.received if r.path == f"{API}/vms"] == [
        {}, {"follow": "nics", "search": "cluster=prod-a"}] * 2


# -- what a configuration cannot bring back ---------------------------------------------------------
def special_site():
    eng = source_site()
    eng.add_vm("vault", "prod-a", bios_type=3, tpm=True, host_devices=["pci_0000_3b_00_0"],
               disks=[SynthDisk("vault_os", boot=True),
                      SynthDisk("vault_lun", lun_id="36001405abcdef0123456789")])
    eng.add_vm("uefi", "prod-a", bios_type=2)
    eng.add_vm("bios", "prod-a", bios_type=0)
    return eng


def test_the_ovf_markers_become_flags():
    eng = special_site()
    flags = {vm.name: parse_ovf(vm.ovf).flags for vm in eng.vms}
    assert flags == {"web01": (), "bios": (), "uefi": (FLAG_NVRAM,),
                     "vault": (FLAG_TPM, FLAG_NVRAM, FLAG_DIRECT_LUN, FLAG_HOST_DEVICE)}
    vault = parse_ovf(next(vm for vm in eng.vms if vm.name == "vault").ovf)
    assert vault.bios_type == "3"
    assert [(d.alias, d.lun) for d in vault.disks] == [("vault_os", False), ("vault_lun", True)]


def test_the_real_engines_ovfs_read_their_bios_type(real_engine):
    engine_ovf = parse_ovf((real_engine / "ovf" / "rhel7s_17a94da8.ovf").read_text())
    v2v_ovf = parse_ovf((real_engine / "ovf" / "virt-v2v_vmOvfData2.xml").read_text())
    assert (engine_ovf.bios_type, engine_ovf.flags) == ("0", ())          # i440fx SeaBIOS
    assert (v2v_ovf.bios_type, v2v_ovf.flags) == ("2", (FLAG_NVRAM,))      # Q35 OVMF: UEFI


def test_flags_reach_list_and_the_plan_through_a_backup(tmp_path, cli, write_config, serve, listed):
    eng = special_site()
    with serve(tmp_path, eng) as server:
        cfg = write_config(tmp_path, server.url)
        assert cli("--config", cfg, "backup")[0] == 0
        items = listed(cfg)
        code, out, _ = cli("--config", cfg, "list")
        code_p, plan_out, _ = cli("--config", cfg, "restore", "vault", "--new-ids",
                                  "--name-pattern", "vault-copy", "--dry-run")
    assert items["vault"]["flags"] == ["tpm", "nvram", "direct-lun", "host-device"]
    assert items["uefi"]["flags"] == ["nvram"] and items["web01"]["flags"] == []
    row = next(line for line in out.splitlines() if line.startswith("vault "))
    assert row.split()[-1] == "tpm,nvram,direct-lun,host-device"
    assert "note: tpm: its TPM state is not in the OVF" in plan_out
    assert "note: nvram: UEFI firmware: its NVRAM variables (boot entries, SecureBoot keys)" in plan_out
    assert "note: direct-lun: direct LUN disk(s)" in plan_out
    assert "note: host-device: passed-through host device(s)" in plan_out


# -- rewriting an OVF ---------------------------------------------------------------------------------
def test_rewriting_nothing_gives_the_text_back_and_hostile_input_is_refused():
    ovf = source_site().vms[0].ovf
    same = rewrite_ovf(ovf, cluster="prod-a")
    assert same.text == ovf and same.changes == ()
    assert [(n.name, n.network, n.profile) for n in same.nics] == [
        ("nic1", "ovirtmgmt", "ovirtmgmt"), ("nic2", "frontend", "frontend-qos")]
    hostile = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>'
    with pytest.raises(OvfError, match="DOCTYPE"):
        rewrite_ovf(hostile, networks={"a": "b"})


def test_a_network_mapping_takes_the_default_profile_along():
    ovf = source_site().vms[0].ovf
    out = rewrite_ovf(ovf, networks={"ovirtmgmt": "mgmt2", "frontend": "front2"}, unplug_nics=True)
    assert [(n.network, n.profile) for n in out.nics] == [("mgmt2", "mgmt2"),
                                                         ("front2", "frontend-qos")]
    root = etree.fromstring(out.text.encode())
    rasd = "{%s}" % synth.RASD_NS
    items = [i for i in root.iter("Item") if i.findtext(rasd + "ResourceType") == "10"]
    assert [i.findtext(rasd + "Caption") for i in items] == ["Ethernet adapter on mgmt2",
                                                             "Ethernet adapter on front2"]
    assert [(i.findtext("IsPlugged"), i.findtext(rasd + "Linked")) for i in items] == [
        ("false", "false")] * 2
    assert parse_ovf(out.text).id == parse_ovf(ovf).id
