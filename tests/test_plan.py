"""``restore --dry-run`` plans, the template check of the register path (msd), and the
interactive pick: the CLI and the real SDK over HTTP against a replay engine.

The target engine's networks, vNIC profiles, templates, disks and unregistered entities
are synthesized here from the API model (element names as ``ovirtsdk4/readers.py`` reads
them) and added to a :class:`~ovirt_backup_plugin.testing.synth.SyntheticEngine` as extra answers.
A disk the cassette does not know is answered 404, as the engine answers an unknown id.
"""
import os
import select
import subprocess
import sys
import uuid
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from lxml import etree

from ovirt_backup_plugin.model import Restorable
from ovirt_backup_plugin.ovf import parse_ovf
from ovirt_backup_plugin.restore.listing import Listing
from ovirt_backup_plugin.restore.picker import parse_selection, pick
from ovirt_backup_plugin.testing import synth

PASSWORD = "replay-secret"
ROOT = Path(__file__).resolve().parent.parent
API = synth.API
BLANK = synth.ZERO


def cfg_url(cfg):
    return next(line.split(" = ", 1)[1] for line in Path(cfg).read_text().splitlines()
                if line.startswith("url = "))


def mutations(server):
    """Requests that would change the engine (SSO login/logout are not API requests)."""
    return [f"{r.method} {r.path}" for r in server.received
            if r.method in ("POST", "PUT", "DELETE", "PATCH") and r.path.startswith(API)]


def sections(out):
    """The plan's paragraphs, keyed by the name in their first line ("vm web01 (...)")."""
    blocks = {}
    for block in out.split("\n\n"):
        first = block.strip().splitlines()[0] if block.strip() else ""
        if first.startswith(("vm ", "template ")):
            blocks[first.split()[1]] = block
    return blocks


# -- the target engine's inventory, as REST lists it ------------------------------------
def _id(*parts):
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "test-plan:" + ":".join(parts)))


def _collection(tag, elements):
    body = "".join(elements)
    return f"{synth.XML_DECL}<{tag}>\n{body}</{tag}>\n" if body else f"{synth.XML_DECL}<{tag}/>\n"


def _ref(tag, collection, id_):
    return f'        <{tag} href="{API}/{collection}/{id_}" id="{id_}"/>\n'


def add_answer(eng, method, path, body, status=200):
    """An extra answer that replaces a regular one of the same request, if any."""
    eng._extra.append((synth.interaction(method, path, body=body, status=status), None))


def add_inventory(eng, *, networks=(), profiles=(), disks=(), templates=(("Blank", BLANK), )):
    """``networks``: (name, data center name); ``profiles``: (name, network, data center);
    ``disks``: (id, alias) the engine has; ``templates``: (name, id)."""
    dcs = {dc.name: dc.id for dc in eng.datacenters}
    add_answer(eng, "GET", f"{API}/networks", _collection("networks", (
        f'    <network href="{API}/networks/{_id(dc, n)}" id="{_id(dc, n)}">\n'
        f"        <name>{escape(n)}</name>\n        <description></description>\n"
        f"        <mtu>0</mtu>\n        <required>true</required>\n"
        f"        <stp>false</stp>\n        <usages>\n            <usage>vm</usage>\n"
        f"        </usages>\n" + _ref("data_center", "datacenters", dcs[dc]) + "    </network>\n"
        for n, dc in networks)))
    add_answer(eng, "GET", f"{API}/vnicprofiles", _collection("vnic_profiles", (
        f'    <vnic_profile href="{API}/vnicprofiles/{_id(dc, net, p)}" '
        f'id="{_id(dc, net, p)}">\n        <name>{escape(p)}</name>\n'
        f"        <pass_through>\n            <mode>disabled</mode>\n        </pass_through>\n"
        f"        <port_mirroring>false</port_mirroring>\n"
        + _ref("network", "networks", _id(dc, net)) + "    </vnic_profile>\n"
        for p, net, dc in profiles)))
    add_answer(eng, "GET", f"{API}/templates", _collection("templates", (
        f'    <template href="{API}/templates/{tid}" id="{tid}">\n'
        f"        <name>{escape(name)}</name>\n        <status>ok</status>\n    </template>\n"
        for name, tid in templates)))
    for disk_id, alias in disks:
        add_answer(eng, "GET", f"{API}/disks/{disk_id}",
                   f'{synth.XML_DECL}<disk href="{API}/disks/{disk_id}" id="{disk_id}">\n'
                   f"    <name>{escape(alias)}</name>\n    <alias>{escape(alias)}</alias>\n"
                   f"    <content_type>data</content_type>\n    <status>ok</status>\n"
                   f"    <storage_type>image</storage_type>\n</disk>\n")


def disks_of(vm):
    return [(d.id, d.alias) for d in parse_ovf(vm.ovf).disks]


def vm_named(eng, name):
    return next(vm for vm in eng.vms if vm.name == name)


PRODUCTION_NETWORKS = [("ovirtmgmt", "Production"), ("frontend", "Production"),
                       ("storage", "Production"), ("ovirtmgmt", "Lab"), ("lab-net", "Lab")]
PRODUCTION_PROFILES = [("ovirtmgmt", "ovirtmgmt", "Production"),
                       ("frontend-qos", "frontend", "Production"),
                       ("storage", "storage", "Production"),
                       ("lab-net", "lab-net", "Lab")]


# -- dry run ----------------------------------------------------------------------------
def test_dry_run_of_copies_with_everything_in_place_is_clean(tmp_path, cli, write_config, serve):
    eng = synth.demo_engine()
    web01 = vm_named(eng, "web01")
    add_inventory(eng, networks=PRODUCTION_NETWORKS, profiles=PRODUCTION_PROFILES,
                  disks=disks_of(web01))
    with serve(tmp_path, eng) as server:
        cfg = write_config(tmp_path, server.url)
        assert cli("--config", cfg, "backup")[0] == 0
        code, out, err = cli("--config", cfg, "restore", "web01", "--copies", "2",
                             "--dry-run")
    assert code == 0, out + err
    assert f"restore plan against {cfg_url(cfg)} (dry run: nothing is changed)" in out
    block = sections(out)["web01"]
    assert f"vm web01 ({web01.id}) from localdb, generation " in block
    assert "web01-1: create in cluster prod-a; POST /vms with new ids" in block
    assert "web01-2: create in cluster prod-a; POST /vms with new ids" in block
    assert block.count("ok: cluster prod-a (level 4.7, data center Production); no VM of that "
                       "name; 2 networks; 2 vNIC profiles; 2 disks exist") == 2
    assert "MAC pool Default: 65536 free for 4 new MAC(s)" in block
    assert block.count("note: nics: its NICs are restored unplugged (a copy in the engine its "
                       "original came from") == 2
    assert "PROBLEM" not in out
    assert "plan: clean, 2 copies can be restored; nothing was changed" in out
    assert mutations(server) == []


def test_dry_run_reports_collisions_and_what_the_engine_lacks(tmp_path, cli, write_config, serve):
    eng = synth.demo_engine()
    web01, db01, app01 = (vm_named(eng, n) for n in ("web01", "db01", "app01"))
    db01_disks = disks_of(db01)                       # os, pgdata, wal: only os is there
    add_inventory(eng, networks=[("ovirtmgmt", "Production"), ("frontend", "Production"),
                                 ("storage", "Lab")],       # storage: in the other DC only
                  profiles=[("ovirtmgmt", "ovirtmgmt", "Production")],
                  disks=disks_of(web01) + db01_disks[:1])
    with serve(tmp_path, eng) as server:
        cfg = write_config(tmp_path, server.url)
        assert cli("--config", cfg, "backup")[0] == 0
        code, out, err = cli("--config", cfg, "restore", "web01", "db01", "--dry-run")
        code2, out2, _ = cli("--config", cfg, "restore", "web01", "--new-ids",
                             "--name-pattern", "app01", "--dry-run")
    assert code == 1, out + err
    web, db = sections(out)["web01"], sections(out)["db01"]

    # web01 and db01 are still on the engine: same ids
    assert "web01: create in cluster prod-a; POST /vms keeping its ids" in web
    assert (f"PROBLEM id: the engine already has a VM with id {web01.id} (web01): it would "
            "refuse this one (409)") in web
    assert f"PROBLEM id: the engine already has a VM with id {db01.id} (db01)" in db
    # web01's second NIC: its network is there, its vNIC profile is not
    assert ("PROBLEM vnic profile: nic2 uses vNIC profile frontend-qos of network frontend; "
            "data center Production (of cluster prod-a) has no vNIC profile of that name on "
            "that network") in web
    assert ("ok: cluster prod-a (level 4.7, data center Production); 2 networks; 1 vNIC "
            "profile; 2 disks exist") in web
    # db01's storage network exists only in the Lab data center
    assert ("PROBLEM network: nic2 uses network storage; data center Production (of cluster "
            "prod-b) has no network of that name") in db
    for disk_id, alias in db01_disks[1:]:
        assert (f"PROBLEM disk: disk {alias} ({disk_id}) does not exist on the engine: the VM "
                "would be created without it") in db
    assert f"disk {db01_disks[0][1]}" not in db                  # that one exists
    # the same VMs' names collide too: both are reported, with the fix that works
    assert (f"PROBLEM name: the engine already has a VM named web01 ({web01.id}): it would "
            "refuse this one (409); that is the VM above: remove it, or restore a copy with "
            "--new-ids and a new name") in web
    assert f"PROBLEM name: the engine already has a VM named db01 ({db01.id})" in db
    assert "plan: 8 problems in 2 of 2 copies; nothing was changed" in out

    # a copy with new ids whose name another VM has
    assert code2 == 1
    web = sections(out2)["web01"]
    assert "app01: create in cluster prod-a; POST /vms with new ids" in web
    assert (f"PROBLEM name: the engine already has a VM named app01 ({app01.id}): it would "
            "refuse this one (409)") in web
    assert "PROBLEM id" not in web
    assert mutations(server) == []


def test_dry_run_against_another_engine(tmp_path, cli, write_config, serve):
    """Backed up from one engine, planned against a new one: cluster, network, disks and
    template are checked there; the OVF's template is only a note on the POST /vms path."""
    source = synth.demo_engine()
    build = vm_named(source, "lab-build01")
    template_id = _id("template", "debian-base")
    build.ovf = (build.ovf.replace(f"<TemplateId>{BLANK}</TemplateId>",
                                   f"<TemplateId>{template_id}</TemplateId>")
                 .replace("<TemplateName>Blank</TemplateName>",
                          "<TemplateName>debian-base</TemplateName>"))
    with serve(tmp_path, source, "source.yaml") as server:
        cfg = write_config(tmp_path, server.url)
        assert cli("--config", cfg, "backup")[0] == 0

    target = synth.SyntheticEngine(seed=7)
    target.add_datacenter("Production")
    target.add_cluster("prod-a", "Production")
    target.add_storage_domain("prod-data1", "Production", master=True)
    add_inventory(target, networks=[("ovirtmgmt", "Production")],
                  profiles=[("ovirtmgmt", "ovirtmgmt", "Production")])
    with serve(tmp_path, target, "target.yaml") as server:
        cfg = write_config(tmp_path, server.url)
        code, out, err = cli("--config", cfg, "restore", "lab-build01", "--dry-run")
        code2, out2, _ = cli("--config", cfg, "restore", "lab-build01", "--dry-run",
                             "--cluster", "prod-a")
    assert code == 1, out + err
    block = sections(out)["lab-build01"]
    assert "lab-build01: create in cluster lab; POST /vms keeping its ids" in block
    assert ("PROBLEM cluster: the engine has no cluster named lab (it has: prod-a); give "
            "--cluster") in block
    assert ("PROBLEM network: nic1 uses network lab-net; no data center of the engine has a "
            "network of that name") in block
    (disk_id, alias), = disks_of(build)
    assert f"PROBLEM disk: disk {alias} ({disk_id}) does not exist on the engine" in block
    assert "ok: no VM of that id or name" in block
    assert (f"note: template: the OVF names template debian-base ({template_id}); POST /vms "
            "creates the VM on the Blank template (the engine forces it), so that template is "
            "not needed") in block

    assert code2 == 1
    block = sections(out2)["lab-build01"]
    assert "lab-build01: create in cluster prod-a" in block
    assert "PROBLEM cluster" not in block
    assert ("PROBLEM network: nic1 uses network lab-net; data center Production (of cluster "
            "prod-a) has no network of that name") in block
    assert mutations(server) == []


# -- msd: registering needs the template -------------------------------------------------
def msd_engine():
    """One data domain that brought a template and four VMs from another engine."""
    eng = synth.SyntheticEngine(seed=11)
    eng.add_datacenter("Recovery")
    eng.add_cluster("rec", "Recovery")
    sd = eng.add_storage_domain("rec-data1", "Recovery", master=True)
    ids = {n: _id("msd", n) for n in ("base-tpl", "app-a", "app-b", "app-c", "app-d",
                                      "gone-tpl", "golden")}
    templates = [("base-tpl", ids["base-tpl"])]
    vms = [("app-a", ids["base-tpl"]),          # its template comes back in the same run
           ("app-b", ids["gone-tpl"]),          # its template is nowhere
           ("app-c", ids["golden"]),            # its template is on the engine
           ("app-d", BLANK)]
    base = f"{API}/storagedomains/{sd.id}"

    def entity(tag, coll, name, id_, template=None):
        return (f'    <{tag} href="{base}/{coll}/{id_}" id="{id_}">\n'
                f"        <name>{name}</name>\n        <status>down</status>\n"
                + (_ref("template", "templates", template) if template else "")
                + _ref("storage_domain", "storagedomains", sd.id) + f"    </{tag}>\n")

    add_answer(eng, "GET", synth.with_query(f"{base}/templates", unregistered="true"),
               _collection("templates", (entity("template", "templates", n, i)
                                         for n, i in templates)))
    add_answer(eng, "GET", synth.with_query(f"{base}/vms", unregistered="true"),
               _collection("vms", (entity("vm", "vms", n, ids[n], t) for n, t in vms)))
    add_inventory(eng, templates=[("Blank", BLANK), ("golden", ids["golden"])])
    done = f"{synth.XML_DECL}<action>\n    <status>complete</status>\n</action>\n"
    for coll, name in [("templates", "base-tpl"), ("vms", "app-a"), ("vms", "app-b"),
                       ("vms", "app-c"), ("vms", "app-d")]:
        add_answer(eng, "POST", f"{base}/{coll}/{ids[name]}/register", done)
    return eng, sd, ids


def test_dry_run_reports_a_missing_template_on_the_register_path(tmp_path, cli, write_config, serve):
    eng, sd, ids = msd_engine()
    with serve(tmp_path, eng) as server:
        cfg = write_config(tmp_path, server.url, providers="msd")
        code, out, err = cli("--config", cfg, "restore", "app-a", "app-b", "app-c",
                             "app-d", "base-tpl", "--dry-run")
    assert code == 1, out + err
    blocks = sections(out)
    assert list(blocks) == ["base-tpl", "app-a", "app-b", "app-c", "app-d"]  # templates first
    assert (f"vm app-b ({ids['app-b']}) from msd, generation ovf_store:rec-data1, taken -"
            in blocks["app-b"])
    assert ("app-b: create in the cluster the OVF names; register it from its storage domain "
            "as it is (same ids)") in blocks["app-b"]
    assert (f"PROBLEM template: template {ids['gone-tpl']} is neither on the engine nor among "
            "what this restore brings back") in blocks["app-b"]
    assert "template base-tpl (restored first in this run)" in blocks["app-a"]
    assert "template golden" in blocks["app-c"]
    for name in ("base-tpl", "app-a", "app-c", "app-d"):
        assert "PROBLEM" not in blocks[name], blocks[name]
    assert "plan: 1 problem in 1 of 5 copies; nothing was changed" in out
    assert mutations(server) == []


def test_register_skips_a_vm_whose_template_is_missing(tmp_path, cli, write_config, serve):
    eng, sd, ids = msd_engine()
    with serve(tmp_path, eng) as server:
        cfg = write_config(tmp_path, server.url, providers="msd")
        code, out, err = cli("--config", cfg, "restore", "app-a", "app-b", "app-d",
                             "base-tpl")
    assert code == 1, out + err                                 # partial: one VM skipped
    assert (f"SKIPPED app-b: its template {ids['gone-tpl']} is neither on the engine nor "
            "restored in this run") in out
    assert "restored base-tpl" in out and "restored app-a" in out and "restored app-d" in out
    assert "restored 3, failed 1" in out
    base = f"{API}/storagedomains/{sd.id}"
    assert mutations(server) == [f"POST {base}/templates/{ids['base-tpl']}/register",
                                 f"POST {base}/vms/{ids['app-a']}/register",
                                 f"POST {base}/vms/{ids['app-d']}/register"]


def test_register_without_its_template_in_the_run_is_skipped(tmp_path, cli, write_config, serve):
    eng, sd, ids = msd_engine()
    with serve(tmp_path, eng) as server:
        cfg = write_config(tmp_path, server.url, providers="msd")
        code, out, _ = cli("--config", cfg, "restore", "app-a")
    assert code == 2
    assert f"SKIPPED app-a: its template {ids['base-tpl']} is neither on the engine" in out
    assert mutations(server) == []


# -- the interactive pick -----------------------------------------------------------------
@pytest.mark.parametrize("text, count, picked", [
    ("1 3 5-7", 8, [1, 3, 5, 6, 7]),
    ("2,1, 2", 3, [1, 2]),
    ("  4-4 ", 4, [4]),
    ("all", 3, [1, 2, 3]),
    ("", 3, []),
    ("q", 3, []),
    ("Q", 3, []),
])
def test_parse_selection(text, count, picked):
    assert parse_selection(text, count) == picked


@pytest.mark.parametrize("text, count, message", [
    ("0", 3, "0 is not in the list (1-3)"),
    ("2-9", 3, "9 is not in the list (1-3)"),
    ("7-5", 9, "'7-5': a range goes from low to high (e.g. 5-7)"),
    ("one", 3, "'one' is not a number or a range like 5-7"),
    ("1 -2", 3, "'-2' is not a number or a range like 5-7"),
])
def test_parse_selection_refuses(text, count, message):
    with pytest.raises(ValueError) as e:
        parse_selection(text, count)
    assert str(e.value) == message


def test_pick_asks_again_after_a_wrong_answer():
    import datetime as dt

    when = dt.datetime(2026, 11, 26, 7, 45, tzinfo=dt.timezone.utc)
    listing = Listing(items=[
        Restorable("localdb", "id-b", "beta", "g1", when, "Lab"),
        Restorable("localdb", "id-a", "alpha", "g1", when, "Production"),
        Restorable("localdb", "id-a", "alpha", "g0", when - dt.timedelta(days=1), "Production"),
        Restorable("localdb", "id-t", "tpl", "g1", when, "Lab", kind="template")])
    shown, answers = [], iter(["9", "2-3"])
    chosen = pick(listing, echo=shown.append, read=lambda prompt: next(answers))
    assert [(i.name, i.generation) for i in chosen] == [("alpha", "g1"), ("beta", "g1")]
    assert shown[0].split() == ["#", "NAME", "DATA", "CENTER", "TAKEN", "(UTC)", "FROM", "NOTE"]
    assert shown[1].split() == ["1", "tpl", "(template)", "Lab", "2026-11-26", "07:45",
                                "localdb"]
    assert shown[2].split()[:3] == ["2", "alpha", "Production"]
    assert "  9 is not in the list (1-3)" in shown


def run_in_terminal(argv, answer):
    """Run ``argv`` with a pseudo-terminal as stdin/stdout/stderr; type ``answer`` once the
    prompt shows; return the exit code and everything the terminal showed."""
    master, slave = os.openpty()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, cwd=ROOT,
                            env=dict(os.environ), start_new_session=True)
    os.close(slave)
    shown = b""
    answered = False
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 120)
            if not ready:
                pytest.fail("the command showed nothing more:\n" + shown.decode(errors="replace"))
            try:
                chunk = os.read(master, 4096)
            except OSError:                      # EIO: the command closed the terminal
                chunk = b""
            if not chunk:
                break
            shown += chunk
            if not answered and b"empty or q cancels)? " in shown:
                os.write(master, answer.encode() + b"\n")
                answered = True
        code = proc.wait(timeout=120)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return code, shown.decode().replace("\r\n", "\n")


def test_restore_without_names_in_a_terminal_picks_from_a_list(tmp_path, cli, write_config, serve):
    eng = synth.demo_engine()
    eng._extra.clear()
    eng.add_restore("app01", cluster="prod-a")
    eng.add_restore("web01", cluster="prod-a")
    with serve(tmp_path, eng) as server:
        cfg = write_config(tmp_path, server.url)
        assert cli("--config", cfg, "backup")[0] == 0
        code, shown = run_in_terminal(
            [sys.executable, "-m", "ovirt_backup_plugin.cli", "--config", cfg, "restore"],
            "1 5")
    assert code == 0, shown
    rows = [line.split() for line in shown.splitlines() if line[:1].isdigit()]
    assert [r[:3] for r in rows] == [["1", "app01", "Production"], ["2", "db01", "Production"],
                                     ["3", "lab-build01", "Lab"], ["4", "lab-db01", "Lab"],
                                     ["5", "web01", "Production"],
                                     ["6", "win-ad01", "Production"]]
    assert all(r[-1] == "localdb" for r in rows)
    assert "restored app01 as VM" in shown and "restored web01 as VM" in shown
    assert "restored 2, failed 0" in shown
    posted = [r.body for r in server.received if r.method == "POST" and r.path == f"{API}/vms"]
    assert len(posted) == 2                     # imported side by side: in any order
    names = sorted(etree.fromstring(body.encode()).findtext("name") for body in posted)
    assert names == ["app01", "web01"]


def test_picking_nothing_restores_nothing(tmp_path, cli, write_config, serve):
    eng = synth.demo_engine()
    with serve(tmp_path, eng) as server:
        cfg = write_config(tmp_path, server.url)
        assert cli("--config", cfg, "backup")[0] == 0
        code, shown = run_in_terminal(
            [sys.executable, "-m", "ovirt_backup_plugin.cli", "--config", cfg, "restore"], "q")
    assert code == 0, shown
    assert "nothing restored" in shown
    assert mutations(server) == []


def test_restore_without_names_and_no_terminal_is_a_usage_error(tmp_path, write_config):
    cfg = write_config(tmp_path, "http://127.0.0.1:9/ovirt-engine/api")
    proc = subprocess.run([sys.executable, "-m", "ovirt_backup_plugin.cli", "--config", cfg,
                           "restore"], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, cwd=ROOT, env=dict(os.environ), timeout=120)
    assert proc.returncode == 2
    assert ("error: name the VMs (names, ids or globs), give --all or --from-file, or run in "
            "a terminal to pick from a list") in proc.stderr
    assert proc.stdout == ""
