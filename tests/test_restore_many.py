"""Restoring many VMs: selection, parallel imports with lock retries, resume, the truth
about each import (events by correlation id, the created VM), 202 engines, mapping into
another engine, ``| head``: the CLI and the real SDK over HTTP against replay engines.

The engines are synthesized (:mod:`ovirt_backup_plugin.testing.synth`): a *source* site
that is backed up, and for most tests a *target*, the rebuilt site: the same data center,
cluster and network names with new ids, the source's disks registered on it, no VMs.
"""
import json
import os
import select
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from lxml import etree

from ovirt_backup_plugin.ovf import ovf_hash, parse_ovf
from ovirt_backup_plugin.restore.truth import correlation_id
from ovirt_backup_plugin.testing import synth
from ovirt_backup_plugin.testing.replay import ReplayEngine
from ovirt_backup_plugin.testing.synth import SynthDisk, SynthNic

ROOT = Path(__file__).resolve().parent.parent
API = synth.API
RASD = "{%s}" % synth.RASD_NS


# -- the sites ---------------------------------------------------------------------------
WEB_NICS = [SynthNic("nic1", "ovirtmgmt"), SynthNic("nic2", "frontend", "frontend-qos")]


def source_site(seed=21, webs=3, apps=0):
    """Production (prod-a: web01..webNN, appNN; prod-b: db01) and Lab (lab: lab-a, lab-b)."""
    eng = synth.SyntheticEngine(seed=seed)
    prod, lab = eng.add_datacenter("Production"), eng.add_datacenter("Lab")
    eng.add_cluster("prod-a", prod)
    eng.add_cluster("prod-b", prod)
    eng.add_cluster("lab", lab)
    eng.add_storage_domain("prod-data", prod, master=True)
    eng.add_storage_domain("lab-data", lab, master=True)
    for n in range(1, webs + 1):
        eng.add_vm(f"web{n:02d}", "prod-a", nics=WEB_NICS,
                   disks=[SynthDisk(f"web{n:02d}_os", boot=True), SynthDisk(f"web{n:02d}_data")])
    for n in range(1, apps + 1):
        eng.add_vm(f"app{n:02d}", "prod-a")
    eng.add_vm("db01", "prod-b", nics=[SynthNic("nic1", "ovirtmgmt")])
    eng.add_vm("lab-a", "lab", nics=[SynthNic("nic1", "lab-net")])
    eng.add_vm("lab-b", "lab", nics=[SynthNic("nic1", "lab-net")])
    return eng


def target_site(source, seed=99, *, disks=True, networks=True, **cluster_kw):
    """The rebuilt site: same names, new ids, no VMs; the source's disks registered."""
    eng = synth.SyntheticEngine(seed=seed)
    for dc in source.datacenters:
        eng.add_datacenter(dc.name)
    for cl in source.clusters:
        eng.add_cluster(cl.name, cl.datacenter.name, **cluster_kw.get(cl.name, {}))
    for sd in source.storage_domains:
        eng.add_storage_domain(sd.name, sd.datacenter.name, master=sd.master)
    if networks:
        for net in source.networks:
            eng.add_network(net.name, net.datacenter.name, profiles=list(net.profiles))
    if disks:
        for vm in source.vms:
            for disk in parse_ovf(vm.ovf).disks:
                eng.add_disk(disk.id, disk.alias)
    return eng


def vm_of(eng, name):
    return next(vm for vm in eng.vms if vm.name == name)


def backed_up(tmp_path, cli, write_config, serve, source):
    """Back the source up into localdb (state in tmp_path/state)."""
    with serve(tmp_path, source, "source.yaml") as server:
        cfg = write_config(tmp_path, server.url)
        code, out, err = cli("--config", cfg, "backup")
        assert code == 0, out + err


def posts(server, name=None):
    return [r for r in server.received if r.method == "POST" and r.path == f"{API}/vms"
            and (name is None or f"<name>{name}</name>" in r.body)]


def sent_ovf(request):
    return etree.fromstring(request.body.encode()).findtext("initialization/configuration/data")


def nic_items(ovf):
    return [i for i in etree.fromstring(ovf.encode()).iter("Item")
            if i.findtext(RASD + "ResourceType") == "10"]


def report_of(out):
    return json.loads(out)


# -- selection ---------------------------------------------------------------------------
def planned(cli, cfg, *argv):
    code, out, err = cli("--config", cfg, "restore", *argv, "--dry-run", "--json")
    assert code in (0, 1), out + err
    return sorted(c["name"] for c in json.loads(out)["copies"])


def test_selection_by_glob_datacenter_cluster_all_exclude_and_file(tmp_path, cli, write_config,
                                                                  serve, listed):
    source = source_site()
    backed_up(tmp_path, cli, write_config, serve, source)
    target = target_site(source)
    with serve(tmp_path, target, "target.yaml") as server:
        cfg = write_config(tmp_path, server.url)
        assert planned(cli, cfg, "web*") == ["web01", "web02", "web03"]
        assert planned(cli, cfg, "--all", "--datacenter", "Lab") == ["lab-a", "lab-b"]
        assert planned(cli, cfg, "--all", "--from-cluster", "prod-a",
                       "--exclude", "web02") == ["web01", "web03"]
        assert planned(cli, cfg, "--all", "--exclude", "web*", "--exclude", "lab-?") == ["db01"]
        assert planned(cli, cfg, "--all") == ["db01", "lab-a", "lab-b", "web01", "web02", "web03"]

        listing = tmp_path / "vms.txt"
        listing.write_text(f"# the database and a lab VM by id\ndb01\n{vm_of(source, 'lab-b').id}\n"
                           "\n  web0[13]   # a glob\n")
        assert planned(cli, cfg, "--from-file", str(listing)) == ["db01", "lab-b", "web01", "web03"]
        # what list --json prints (its vm_id is taken)
        code, out, _ = cli("--config", cfg, "list", "--json", "lab-*")
        assert code == 0
        exported = tmp_path / "lab.json"
        exported.write_text(out)
        assert planned(cli, cfg, "--from-file", str(exported)) == ["lab-a", "lab-b"]

        code, _, err = cli("--config", cfg, "restore", "web01", "--all")
        assert code == 2 and "not both" in err
        code, _, err = cli("--config", cfg, "restore", "--from-file", str(tmp_path / "nope"))
        assert code == 2 and "--from-file" in err and "cannot read it" in err
        code, _, err = cli("--config", cfg, "restore", "nothing*", "--dry-run")
        assert code == 2 and "no backup of a VM matching 'nothing*'" in err
    assert posts(server) == []


def test_more_than_a_few_copies_need_yes_outside_a_terminal(tmp_path, cli, write_config, serve):
    source = source_site()
    backed_up(tmp_path, cli, write_config, serve, source)
    with serve(tmp_path, target_site(source), "target.yaml") as server:
        cfg = write_config(tmp_path, server.url)
        code, out, err = cli("--config", cfg, "restore", "--all")
    assert code == 2
    assert "this restores 6 copies: confirm with --yes" in err and "nothing was changed" in err
    assert posts(server) == []


# -- a closed stdout ------------------------------------------------------------------------
@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_list_into_a_pipe_closed_early_ends_quietly(tmp_path, cli, write_config, serve, json_flag):
    source = source_site(webs=1, apps=600)       # a listing far larger than a pipe's buffer (64 KB)
    backed_up(tmp_path, cli, write_config, serve, source)
    cfg = str(tmp_path / "ovirt-backup.conf")
    proc = subprocess.Popen([sys.executable, "-m", "ovirt_backup_plugin.cli", "--config", cfg,
                             "list", *json_flag], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=ROOT, env=dict(os.environ))
    first = proc.stdout.readline()                # like `| head -1`: read a line, go away
    proc.stdout.close()
    err = proc.stderr.read().decode()
    code = proc.wait(timeout=120)
    assert first.strip()
    assert code == 0, err
    assert "Traceback" not in err and "BrokenPipe" not in err and err == ""


# -- the filtered picker, in a pseudo-terminal ----------------------------------------------
def converse(argv, steps, timeout=120):
    """Run ``argv`` on a pseudo-terminal; for each (prompt, answer) wait for the prompt,
    type the answer. Return the exit code and everything the terminal showed."""
    master, slave = os.openpty()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, cwd=ROOT,
                            env=dict(os.environ), start_new_session=True)
    os.close(slave)
    shown, step, seen = b"", 0, 0
    try:
        while True:
            ready, _, _ = select.select([master], [], [], timeout)
            if not ready:
                pytest.fail("the command showed nothing more:\n" + shown.decode(errors="replace"))
            try:
                chunk = os.read(master, 65536)
            except OSError:                      # EIO: the command closed the terminal
                chunk = b""
            if not chunk:
                break
            shown += chunk
            while step < len(steps) and steps[step][0].encode() in shown[seen:]:
                seen = shown.index(steps[step][0].encode(), seen) + len(steps[step][0])
                os.write(master, steps[step][1].encode() + b"\n")
                step += 1
        code = proc.wait(timeout=timeout)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert step == len(steps), shown.decode(errors="replace")
    return code, shown.decode().replace("\r\n", "\n")


FILTER = "filter by name (glob like web*, dc=NAME, cluster=NAME; q quits)? "
WHICH = "empty or q cancels)? "


def test_the_picker_filters_a_large_listing_and_shows_counts(tmp_path, cli, write_config, serve):
    source = source_site(webs=3, apps=30)         # 36 VMs: more than a page
    backed_up(tmp_path, cli, write_config, serve, source)
    target = target_site(source)
    for name in ("web01", "web03"):
        target.add_restore(name, cluster="prod-a", of=vm_of(source, name))
    with serve(tmp_path, target, "target.yaml") as server:
        cfg = write_config(tmp_path, server.url)
        argv = [sys.executable, "-m", "ovirt_backup_plugin.cli", "--config", cfg, "restore"]
        code, shown = converse(argv, [(FILTER, "nomatch*"), (FILTER, "web*"), (WHICH, "1 3")])
    assert code == 0, shown
    assert "36 VMs can be restored: Lab 2, Production 34" in shown
    assert "nothing matches 'nomatch*'" in shown
    assert "3 match (Production 3)" in shown
    rows = [line.split() for line in shown.splitlines()
            if line[:1].isdigit() and "VMs can be restored" not in line and "match" not in line]
    assert [r[:2] for r in rows] == [["1", "web01"], ["2", "web02"], ["3", "web03"]]
    assert "app07" not in shown                   # the large listing was never dumped
    assert "restored web01 as VM" in shown and "restored web03 as VM" in shown
    assert "restored 2, failed 0" in shown
    assert sorted(r.body.split("<name>")[1].split("<")[0] for r in posts(server)) == [
        "web01", "web03"]


@pytest.mark.parametrize("no", ["n", "\x04"], ids=["n", "ctrl-d"])
def test_picking_many_shows_the_plan_summary_and_asks(tmp_path, cli, write_config, serve, no):
    source = source_site(webs=3, apps=30)
    backed_up(tmp_path, cli, write_config, serve, source)
    with serve(tmp_path, target_site(source), "target.yaml") as server:
        cfg = write_config(tmp_path, server.url)
        argv = [sys.executable, "-m", "ovirt_backup_plugin.cli", "--config", cfg, "restore"]
        code, shown = converse(argv, [(FILTER, "app*"), (WHICH, "/"), (FILTER, "cluster=prod-a"),
                                      (WHICH, "all"), ("? [y/N] ", no)])
        url = server.url
    assert code == 0, shown
    assert "Traceback" not in shown
    assert "30 match (Production 30); the first 20 are shown" in shown
    assert "33 match (Production 33); the first 20 are shown" in shown
    assert (f"restore plan against {url}: 33 copies of 33 VMs (0 with new ids) into "
            "prod-a 33") in shown
    assert f"restore 33 copies into {url}? [y/N]" in shown
    assert "nothing restored" in shown
    assert posts(server) == []


# -- parallel, with a lock refusal retried ------------------------------------------------------
class CountingEngine(ReplayEngine):
    """Counts the POST /vms answered at the same time (each held a little)."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.now = self.most = 0
        self.count_lock = threading.Lock()

    def answer(self, method_, target, body, content_type=""):
        if method_ != "POST" or not target.startswith(f"{API}/vms"):
            return super().answer(method_, target, body, content_type)
        with self.count_lock:
            self.now += 1
            self.most = max(self.most, self.now)
        try:
            time.sleep(0.1)
            return super().answer(method_, target, body, content_type)
        finally:
            with self.count_lock:
                self.now -= 1


def test_parallel_copies_retry_a_lock_refusal_and_report_in_plan_order(tmp_path, cli, write_config,
                                                                      serve):
    source = source_site()
    web01 = vm_of(source, "web01")
    for n in range(1, 7):
        refusals = {3: [synth.LOCKED, synth.BEING_IMPORTED.format(name="web01-3")],
                    5: [(503, "Service Unavailable")]}.get(n, ())
        source.add_restore(f"web01-{n}", cluster="prod-a", of=web01, refusals=refusals)
    path = source.write_cassette(tmp_path / "source.yaml")
    with CountingEngine([path]) as server:
        cfg = write_config(tmp_path, server.url)
        assert cli("--config", cfg, "backup")[0] == 0
        code, out, err = cli("--config", cfg, "restore", "web01", "--copies", "6",
                             "--parallel", "4", "--yes", "--json")
    assert code == 0, out + err
    report = report_of(out)
    assert [v["name"] for v in report["vms"]] == [f"web01-{n}" for n in range(1, 7)]  # plan order
    assert {v["status"] for v in report["vms"]} == {"restored"}
    third = report["vms"][2]
    assert third["attempts"] == 3
    assert "refused 2 time(s) first (an engine lock, an engine lock); retried" in third["notes"]
    assert "refused 1 time(s) first (503 from the engine); retried" in report["vms"][4]["notes"]
    assert [v["attempts"] for v in report["vms"]] == [1, 1, 3, 1, 2, 1]
    assert len(posts(server, "web01-3")) == 3 and len(posts(server)) == 9
    # after the 503 (the import may have been done anyway) the engine was asked first
    looked = [r.query["search"] for r in server.received
              if r.path == f"{API}/vms" and r.query.get("search") == "name=web01-5"]
    assert looked == ["name=web01-5"]
    # the imports ran side by side, at most 4 at once, each worker on its own connection
    assert 2 <= server.most <= 4
    logins = [r for r in server.received if r.path == "/ovirt-engine/sso/oauth/token"]
    assert len(logins) == 2 + 4                   # backup, restore's main connection, 4 workers
    # every import carried its own correlation id, the same on every attempt
    ids = {r.headers["correlation-id"] for r in posts(server)}
    assert len(ids) == 6 and all(i.startswith("ovb-") and len(i) == 36 for i in ids)
    assert len({r.headers["correlation-id"] for r in posts(server, "web01-3")}) == 1
    assert third["correlation_id"] == posts(server, "web01-3")[0].headers["correlation-id"]


def test_a_permanent_refusal_fails_that_copy_only_with_advice_that_works(tmp_path, cli, write_config,
                                                                         serve):
    source = source_site()
    web01 = vm_of(source, "web01")
    source.add_restore("web01-1", cluster="prod-a", of=web01)
    source.add_restore("web01-2", status=409, conflict="name", cluster="prod-a")
    source.add_restore("web01", status=409, conflict="id", cluster="prod-a")
    with serve(tmp_path, source, "source.yaml") as server:
        cfg = write_config(tmp_path, server.url)
        assert cli("--config", cfg, "backup")[0] == 0
        code, out, _ = cli("--config", cfg, "restore", "web01", "--copies", "2")
        code1, out1, _ = cli("--config", cfg, "restore", "web01")       # keeps its ids
    assert code == 1, out
    assert "restored web01-1 as VM" in out
    assert ("FAILED web01-2: VM 'web01-2' was not restored: the engine refused it "
            f"({synth.CONFLICT_NAME})") in out
    assert "choose another name for the copy (--name-pattern)" in out
    assert "restored 1, failed 1" in out
    assert len(posts(server, "web01-2")) == 1              # not retried: not a lock
    assert code1 == 2
    assert ("restore it as a copy with new ids and a new name (--new-ids --name-pattern "
            "'{name}-restored'), or remove the existing VM first. A new name alone does not "
            "help while the ids are kept: the id collides too.") in out1


# -- resume ------------------------------------------------------------------------------------------
def test_running_the_same_restore_again_skips_what_the_first_run_created(tmp_path, cli, write_config,
                                                                        serve):
    source = source_site()
    backed_up(tmp_path, cli, write_config, serve, source)
    target = target_site(source)
    restores = {n: target.add_restore(n, cluster="prod-a", of=vm_of(source, n),
                                      refusals=[(400, "[Cannot import VM. Internal error.]")]
                                      if n == "web03" else ())
                for n in ("web01", "web02", "web03")}
    with serve(tmp_path, target, "target.yaml") as server:
        cfg = write_config(tmp_path, server.url)
        code1, out1, _ = cli("--config", cfg, "restore", "web*")
        code2, out2, _ = cli("--config", cfg, "restore", "web*", "--json")
    assert code1 == 1, out1
    assert "restored web01 as VM" in out1 and "restored web02 as VM" in out1
    assert "FAILED web03" in out1 and "restored 2, failed 1" in out1
    assert code2 == 0, out2
    report = report_of(out2)
    assert [(v["name"], v["status"]) for v in report["vms"]] == [
        ("web01", "already-restored"), ("web02", "already-restored"), ("web03", "restored")]
    assert [v["vm_id"] for v in report["vms"]] == [restores[n].id for n in ("web01", "web02", "web03")]
    assert report["already_restored"] == 2
    # the first run's imports were sent once, the failed one again
    assert [len(posts(server, n)) for n in ("web01", "web02", "web03")] == [1, 1, 2]


def test_the_resumed_run_says_so_in_words(tmp_path, cli, write_config, serve):
    source = source_site()
    backed_up(tmp_path, cli, write_config, serve, source)
    target = target_site(source)
    created = target.add_restore("db01", cluster="prod-b", of=vm_of(source, "db01"))
    with serve(tmp_path, target, "target.yaml") as server:
        cfg = write_config(tmp_path, server.url)
        assert cli("--config", cfg, "restore", "db01")[0] == 0
        code, out, _ = cli("--config", cfg, "restore", "db01")
    assert code == 0, out
    assert (f"already restored db01 (VM {created.id}) by an earlier run of this restore: "
            "skipped") in out
    assert "restored 0, failed 0 (1 already restored by an earlier run, skipped)" in out
    assert len(posts(server)) == 1


def test_a_vm_of_that_name_not_made_by_this_restore_is_left_to_the_engine(tmp_path, cli,
                                                                          write_config, serve):
    """db01 exists on the engine (the original, never deleted): no event of this restore's
    correlation id names it, so it is not skipped; the engine refuses and says why."""
    source = source_site()
    source.add_restore("db01", status=409, conflict="id", cluster="prod-b")
    with serve(tmp_path, source, "source.yaml") as server:
        cfg = write_config(tmp_path, server.url)
        assert cli("--config", cfg, "backup")[0] == 0
        code, out, _ = cli("--config", cfg, "restore", "db01")
    assert code == 2
    assert "FAILED db01: VM 'db01' was not restored" in out and "already restored" not in out
    assert len(posts(server)) == 1
    searches = [r.query.get("search", "") for r in server.received
                if r.path == f"{API}/events" and "correlation_id" in r.query.get("search", "")]
    assert searches == [f"correlation_id={posts(server)[0].headers['correlation-id']}"]


# -- the truth about each import ----------------------------------------------------------------------
def test_warnings_of_an_import_are_collected_by_correlation_id_and_from_the_vm(tmp_path, cli,
                                                                              write_config, serve):
    source = source_site()
    backed_up(tmp_path, cli, write_config, serve, source)
    target = target_site(source, disks=False, networks=False)
    target.add_network("ovirtmgmt", "Production")          # frontend is missing
    web01 = vm_of(source, "web01")
    os_disk, data_disk = parse_ovf(web01.ovf).disks
    target.add_disk(os_disk.id, os_disk.alias)             # web01_data is gone
    for disk in parse_ovf(vm_of(source, "web02").ovf).disks:
        target.add_disk(disk.id, disk.alias)
    raised = ("Original custom compatibility version 4.2 of imported VM web01 is not "
              "supported. Changing it to the lowest supported version: 4.7.")
    target.add_restore("web01", cluster="prod-a", of=web01, warnings=[(1198, raised)])
    target.add_restore("web02", cluster="prod-a", of=vm_of(source, "web02"))
    login = target.log_event(30)                           # the audit log before the restore
    with serve(tmp_path, target, "target.yaml") as server:
        cfg = write_config(tmp_path, server.url)
        code, out, err = cli("--config", cfg, "restore", "web01", "web02")
        code_j, out_j, _ = cli("--config", cfg, "restore", "web01", "--json")
        url = server.url
    assert code == 1, out + err                               # came back degraded
    cid = posts(server, "web01")[0].headers["correlation-id"]
    assert cid == correlation_id(engine_url=url, vm_id=web01.id,
                                 ovf_hash=ovf_hash(web01.ovf),
                                 name="web01", new_ids=False)
    block = out.split("restoring vm web01")[1].split("restoring vm web02")[0]
    assert "restored web01 as VM" in block and "with warnings" in block
    assert ("warning: NIC nic2 was left without a network: network frontend is missing in "
            "the data center of cluster prod-a, is not a VM network, or has no vNIC profile "
            "frontend-qos") in block
    assert (f"warning: disk {data_disk.alias} ({data_disk.id}) is not attached: the engine "
            "attaches only disks it has") in block
    assert (f"warning: compatibility version raised (engine event 1198, correlation id {cid}): "
            f"{raised}") in block
    # 9600, the engine's missing-network warning, carries no correlation id: it is not
    # what told (the NIC itself did); the events were read for this import's id only
    assert "While importing VM" not in out
    searches = [r.query for r in server.received if r.path == f"{API}/events"
                and "correlation_id" in r.query.get("search", "")]
    # only what was logged after the restore began (the newest event then: the login)
    assert {"from": str(login.index), "search": f"correlation_id={cid}"} in searches
    assert "restored web02 as VM" in out                      # web02 got its disks...
    web02_block = out.split("restoring vm web02")[1]
    assert "disk web02" not in web02_block and "NIC nic2 was left without a network" in web02_block
    assert "restored 2, failed 0 (2 with warnings)" in out
    assert code_j == 0, out_j                                 # the second run: ours, skipped
    assert report_of(out_j)["vms"][0]["status"] == "already-restored"


def test_a_clean_import_has_no_warnings(tmp_path, cli, write_config, serve):
    source = source_site()
    backed_up(tmp_path, cli, write_config, serve, source)
    target = target_site(source)
    target.add_restore("web01", cluster="prod-a", of=vm_of(source, "web01"))
    with serve(tmp_path, target, "target.yaml") as server:
        cfg = write_config(tmp_path, server.url)
        code, out, _ = cli("--config", cfg, "restore", "web01", "--json")
    assert code == 0, out
    (vm,) = report_of(out)["vms"]
    assert vm["status"] == "restored" and vm["warnings"] == [] and vm["accepted_202"] is False
    # into another engine, keeping ids: NICs as stored (plugged), nothing rewritten
    (post,) = posts(server)
    assert sent_ovf(post) == vm_of(source, "web01").ovf
    followed = [r for r in server.received if r.path.startswith(f"{API}/vms/")]
    assert [r.query for r in followed] == [{"follow": "disk_attachments,nics"}]


def test_an_engine_answering_202_is_followed_until_the_vm_leaves_image_locked(tmp_path, cli,
                                                                              write_config, serve):
    source = source_site()
    backed_up(tmp_path, cli, write_config, serve, source)
    target = target_site(source)
    done = target.add_restore("web01", cluster="prod-a", of=vm_of(source, "web01"), locked_polls=2)
    stuck = target.add_restore("web02", cluster="prod-a", of=vm_of(source, "web02"),
                               locked_polls=50)
    with serve(tmp_path, target, "target.yaml") as server:
        cfg = write_config(tmp_path, server.url)
        code, out, err = cli("--config", cfg, "restore", "web01", "web02", "--json",
                             "--wait-locked", "0.3")
    assert code == 1, out + err
    first, second = report_of(out)["vms"]
    assert (first["status"], first["vm_id"], first["accepted_202"]) == ("restored", done.id, True)
    assert "the engine answered 202 and finished the import later (now down)" in first["notes"]
    polls = [r for r in server.received if r.path == f"{API}/vms/{done.id}" and not r.query]
    assert len(polls) == 3                               # locked, locked, down
    assert second["status"] == "still-importing" and second["vm_id"] == stuck.id
    assert second["warnings"] == ["still image_locked 0.3 s after the engine accepted it (202); "
                                  "its final state is not known yet"]
    assert all("x-ovirt-expect" not in r.headers for r in posts(server))


class RestartingEngine(ReplayEngine):
    """Answers the first poll of one VM with a 503 (the engine restarting mid-import)."""

    def __init__(self, *a, vm_path, **kw):
        super().__init__(*a, **kw)
        self.vm_path, self.refused = vm_path, 0

    def answer(self, method_, target, body, content_type=""):
        if method_ == "GET" and target == self.vm_path and not self.refused:
            self.refused += 1
            return 503, "Service Unavailable", [("Content-Type", "text/html")], b"<html>down</html>"
        return super().answer(method_, target, body, content_type)


def test_an_engine_error_while_a_202_import_is_followed_keeps_the_created_vm(tmp_path, cli,
                                                                           write_config, serve):
    source = source_site()
    backed_up(tmp_path, cli, write_config, serve, source)
    target = target_site(source)
    done = target.add_restore("web01", cluster="prod-a", of=vm_of(source, "web01"), locked_polls=1)
    path = target.write_cassette(tmp_path / "target.yaml")
    with RestartingEngine([path], vm_path=f"{API}/vms/{done.id}") as server:
        cfg = write_config(tmp_path, server.url)
        code, out, err = cli("--config", cfg, "restore", "web01", "--json", "--wait-locked", "5")
    assert server.refused == 1
    assert code == 0, out + err
    (vm,) = report_of(out)["vms"]
    assert (vm["status"], vm["vm_id"], vm["accepted_202"]) == ("restored", done.id, True)


# -- mapping into another engine ------------------------------------------------------------------------
def dr_site(source):
    """Another engine: cluster dr-a (data center DR), networks dr-mgmt and dr-front."""
    eng = synth.SyntheticEngine(seed=77)
    dr = eng.add_datacenter("DR")
    eng.add_cluster("dr-a", dr)
    eng.add_storage_domain("dr-data", dr, master=True)
    eng.add_network("dr-mgmt", dr)
    eng.add_network("dr-front", dr, profiles=["dr-front-qos"])
    for vm in source.vms:
        for disk in parse_ovf(vm.ovf).disks:
            eng.add_disk(disk.id, disk.alias)
    return eng


MAPPED_NICS = [("nic1", "dr-mgmt", "dr-mgmt"), ("nic2", "dr-front", "dr-front-qos")]


@pytest.mark.parametrize("how", ["options", "file"])
def test_networks_profiles_and_cluster_are_mapped_in_the_ovf_sent(tmp_path, cli, write_config,
                                                                  serve, how):
    source = source_site()
    backed_up(tmp_path, cli, write_config, serve, source)
    target = dr_site(source)
    target.add_restore("web01", cluster="dr-a", of=vm_of(source, "web01"), nics=MAPPED_NICS)
    if how == "options":
        mapping = ["--map-network", "ovirtmgmt=dr-mgmt",
                   "--map-vnic-profile", "frontend/frontend-qos=dr-front/dr-front-qos",
                   "--map-cluster", "prod-a=dr-a"]
    else:
        path = tmp_path / "map.yaml"
        path.write_text("networks:\n  ovirtmgmt: dr-mgmt\nvnic_profiles:\n"
                        "  frontend/frontend-qos: dr-front/dr-front-qos\n"
                        "clusters: {prod-a: dr-a}\n")
        mapping = ["--map-file", str(path)]
    with serve(tmp_path, target, "target.yaml") as server:
        cfg = write_config(tmp_path, server.url)
        code_p, out_p, _ = cli("--config", cfg, "restore", "web01", "--dry-run", *mapping)
        code, out, err = cli("--config", cfg, "restore", "web01", *mapping)
    assert code_p == 0, out_p
    assert "ok: cluster dr-a (level 4.7, data center DR); no VM of that id or name; 2 networks; " \
           "2 vNIC profiles; 2 disks exist" in out_p
    assert code == 0, out + err
    assert "restored web01 as VM" in out and "in cluster dr-a" in out and "warning" not in out
    assert ("note: sent with NIC nic1: ovirtmgmt/ovirtmgmt -> dr-mgmt/dr-mgmt; NIC nic2: "
            "frontend/frontend-qos -> dr-front/dr-front-qos; cluster prod-a -> dr-a") in out
    (post,) = posts(server)
    body = etree.fromstring(post.body.encode())
    assert body.findtext("cluster/name") == "dr-a"
    ovf = sent_ovf(post)
    nics = nic_items(ovf)
    assert [(n.findtext(RASD + "Name"), n.findtext(RASD + "Connection"),
             n.findtext(RASD + "OtherResourceType")) for n in nics] == MAPPED_NICS
    assert [n.findtext("IsPlugged") for n in nics] == ["true", "true"]   # not a copy: plugged
    root = etree.fromstring(ovf.encode())
    assert root.findtext(".//ClusterName") == "dr-a"
    assert [n.get("{%s}name" % synth.OVF_NS) for n in root.iter("Network")] == ["dr-mgmt",
                                                                               "dr-front"]
    # nothing else changed: the same VM, its disks, its MACs
    original, mapped = parse_ovf(vm_of(source, "web01").ovf), parse_ovf(ovf)
    assert (mapped.id, mapped.disks, [n.mac for n in mapped.nics]) == (
        original.id, original.disks, [n.mac for n in original.nics])


def test_nics_unplugged_on_request_and_bad_mappings_refused(tmp_path, cli, write_config, serve):
    source = source_site()
    backed_up(tmp_path, cli, write_config, serve, source)
    target = target_site(source)
    target.add_restore("db01", cluster="prod-b", of=vm_of(source, "db01"))
    with serve(tmp_path, target, "target.yaml") as server:
        cfg = write_config(tmp_path, server.url)
        code, out, _ = cli("--config", cfg, "restore", "db01", "--nics-unplugged")
        bad = [cli("--config", cfg, "restore", "db01", *argv)
               for argv in (["--map-network", "nonsense"], ["--map-vnic-profile", "a="],
                            ["--map-file", str(tmp_path / "none.yaml")])]
        (tmp_path / "typo.yaml").write_text("netwroks: {a: b}\n")
        bad.append(cli("--config", cfg, "restore", "db01", "--map-file", str(tmp_path / "typo.yaml")))
    assert code == 0, out
    (post,) = posts(server)
    assert [n.findtext("IsPlugged") for n in nic_items(sent_ovf(post))] == ["false"]
    assert [c for c, _, _ in bad] == [2, 2, 2, 2]
    assert "--map-network 'nonsense': use SOURCE=TARGET" in bad[0][2]
    assert "unknown key(s) netwroks" in bad[3][2]


def test_registering_from_a_storage_domain_gets_the_cluster_and_profile_mappings(tmp_path, cli,
                                                                                write_config, serve):
    eng = synth.SyntheticEngine(seed=5)
    dc = eng.add_datacenter("Recovery")
    eng.add_cluster("rec", dc)
    eng.add_storage_domain("rec-data", dc, master=True)
    eng.add_network("rec-net", dc)
    sd = eng.add_storage_domain("old-data", dc)
    old = eng.add_unregistered("old-app", sd)
    with serve(tmp_path, eng) as server:
        cfg = write_config(tmp_path, server.url, providers="msd")
        code, out, err = cli("--config", cfg, "restore", "old-app", "--map-cluster", "gone=rec",
                             "--map-network", "old-net=rec-net")
    assert code == 0, out + err
    (register,) = [r for r in server.received if r.path.endswith(f"/vms/{old.id}/register")]
    body = etree.fromstring(register.body.encode())
    mapping = body.find("registration_configuration")
    assert mapping.findtext("cluster_mappings/registration_cluster_mapping/from/name") == "gone"
    assert mapping.findtext("cluster_mappings/registration_cluster_mapping/to/name") == "rec"
    profile = mapping.find("vnic_profile_mappings/registration_vnic_profile_mapping")
    assert (profile.findtext("from/name"), profile.findtext("from/network/name")) == ("old-net",
                                                                                      "old-net")
    assert profile.find("to").get("id") == eng.networks[0].profiles["rec-net"]
