"""Incremental capture, end to end: the CLI, the real SDK over HTTP, a replay engine that
follows a synthesized engine's mutations (events feed with the engine's semantics), and
real stores.

* each reason a sweep is chosen, and that an incremental run reads no page;
* a randomized mutation test: changes with events are caught by the next incremental run,
  changes without events by the next sweep, nothing else differs, no VM is lost;
* kill -9 during an incremental run leaves cursor and generation consistent;
* providers without ``carry_over`` (the host reads back) and a lost blob (read again);
* ``list --generations`` and ``history`` show which generations were full.
"""
import datetime as dt
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.parse

import pytest

from ovirt_backup_plugin.backup.incremental import plan_capture
from ovirt_backup_plugin.backup.run import run_backup
from ovirt_backup_plugin.engine import Engine
from ovirt_backup_plugin.hooks import localdb
from ovirt_backup_plugin.host.sealing import write_new_key
from ovirt_backup_plugin.model import Query
from ovirt_backup_plugin.restore.listing import gather
from ovirt_backup_plugin.testing import synth
from ovirt_backup_plugin.testing.replay import GatedEngine, ReplayEngine

PASSWORD = "replay-secret"
DEADLINE = 60
MODE_LINE = re.compile(r"^  (full sweep|incremental): (.*)$", re.M)
RUN_ID = re.compile(r"backup run (\S+) of")


# -- helpers -------------------------------------------------------------------------------
def estate(n=20, seed=11):
    """Two data centers, three clusters, ``n`` VMs; the audit log starts empty."""
    eng = synth.SyntheticEngine(seed=seed)
    east, west = eng.add_datacenter("East"), eng.add_datacenter("West")
    eng.add_cluster("e1", east)
    eng.add_cluster("e2", east)
    eng.add_cluster("w1", west)
    eng.add_storage_domain("east-data", east, master=True)
    eng.add_storage_domain("west-data", west, master=True)
    for k in range(n):
        eng.add_vm(f"vm{k:03d}", ("e1", "e2", "w1")[k % 3], memory_mb=1024 * (1 + k % 4))
    eng.tick(3600)
    return eng


class Live:
    """A synthesized engine behind one replay engine that follows its mutations."""

    def __init__(self, tmp_path, eng, server_class=ReplayEngine, **kw):
        self.tmp_path, self.eng, self.rounds = tmp_path, eng, 0
        self.server = server_class([self._cassette()], password=PASSWORD, **kw)

    def _cassette(self):
        self.rounds += 1
        return self.eng.write_cassette(self.tmp_path / f"round-{self.rounds}.json")

    def publish(self, settle=600):
        """The engine as it is now (its clock moved on by ``settle`` seconds)."""
        self.eng.tick(settle)
        self.server.reload(self._cassette())

    def __enter__(self):
        self.server.__enter__()
        return self

    def __exit__(self, *exc):
        self.server.__exit__(*exc)


@pytest.fixture
def backup(cli):
    """``backup(cfg, *args) -> (code, mode, reason, run id, out)``."""
    def run(cfg, *args, code=0):
        got, out, err = cli("--config", cfg, "backup", *args)
        assert code is None or got == code, out + err
        found = MODE_LINE.search(out)
        return got, found.group(1), found.group(2), RUN_ID.search(out).group(1), out
    return run


def catalog_runs(tmp_path):
    db = sqlite3.connect(f"file:{tmp_path / 'state' / 'catalog.sqlite'}?mode=ro", uri=True)
    try:
        return db.execute("SELECT id, mode, note, cursor, vm_count FROM runs "
                          "ORDER BY started_at, id").fetchall()
    finally:
        db.close()


def stored(session_of, generation):
    """vm id -> (name, the stored OVF read back through the host) of one generation."""
    handle = session_of(["localdb"]).handles[0]
    items = gather([handle], handle_engine(), Query(generation=generation)).items
    return {i.vm_id: (i.name, handle.read_checked(i).text) for i in items}


def handle_engine():
    return Engine(None)


def pages(server, since=0):
    return [r.query["search"] for r in server.received[since:]
            if r.path.endswith("/vms") and r.query.get("search", "").startswith("page")]


# -- the decision ------------------------------------------------------------------------------
def test_first_run_sweeps_then_an_unchanged_engine_is_incremental(tmp_path, write_config,
                                                                  backup):
    eng = estate()
    with Live(tmp_path, eng) as live:
        cfg = write_config(tmp_path, live.server.url)
        _, mode, reason, first, out = backup(cfg)
        assert (mode, reason) == ("full sweep", "first run: provider localdb has no generation "
                                                "yet")
        assert "20/20 VMs" in out
        seen = len(live.server.received)
        _, mode, reason, second, out = backup(cfg)
        assert mode == "incremental", reason
        assert "0 event(s) since event 0; 0 VM(s) read" in reason and "20 carried over" in reason
        assert "cross-check: the engine's 20 VMs, no sample (nothing to read)" in reason
        assert "localdb ok (20 written, 0 new)" in out and "20/20 VMs" in out
        # login, data centers (the store's owner), the API root, the feed, logout: no VM
        assert [r.path.rsplit("/", 1)[-1] for r in live.server.received[seen:]] == [
            "token", "datacenters", "api", "events", "sso-logout"]
    runs = catalog_runs(tmp_path)
    assert [(r[0], r[1], r[4]) for r in runs] == [(first, "full", 20), (second, "incremental", 20)]
    assert runs[1][2] == reason                                     # the record says why


def test_changes_with_events_are_read_and_the_rest_carried(tmp_path, write_config, backup,
                                                           session_of):
    eng = estate()
    with Live(tmp_path, eng) as live:
        cfg = write_config(tmp_path, live.server.url)
        backup(cfg)
        eng.change_vm("vm001")
        eng.change_vm("vm002", "nic")
        eng.run_vm("vm003")
        eng.rename_vm("vm004", "renamed")
        eng.remove_vm("vm005")
        added = eng.create_vm("new", "w1")
        live.publish()
        seen = len(live.server.received)
        _, mode, reason, run_id, out = backup(cfg)
        assert mode == "incremental", reason
        assert reason.startswith("8 event(s) since event 0; ") and ", 1 removed, " in reason
        assert "(5 named by events, 8 sampled)" in reason
        assert pages(live.server, seen) == []
        fetched = [r.query["search"] for r in live.server.received[seen:]
                   if r.path.endswith("/vms") and r.query.get("search", "").startswith("id=")]
        assert len(fetched) == 1 and added.id in fetched[0]
    now = stored(session_of, run_id)
    assert {k: v[1] for k, v in now.items()} == {vm.id: vm.ovf for vm in eng.vms}
    assert now[next(v.id for v in eng.vms if v.name == "renamed")][0] == "renamed"
    # the cursor moved on to the newest event that had settled (600 s before the engine's clock)
    assert catalog_runs(tmp_path)[-1][3] == eng.events[-1].index


@pytest.mark.parametrize("what, expected", [
    ("dc-upgrade", "event 1001 (952 USER_UPDATE_STORAGE_POOL) may change VMs without naming"),
    ("affinity", "event 1001 (10352 USER_UPDATED_AFFINITY_GROUP) may change VMs"),
    ("no-vm", "event 1001 (35 USER_UPDATE_VM) names no VM"),
    ("silent-add", "cross-check: the engine has 21 VMs, this run would hold 20"),
    ("silent-remove", "cross-check: the engine has 19 VMs, this run would hold 20"),
    ("many", "70 VMs changed, more than 25% of 250: a sweep is cheaper"),
])
def test_what_an_incremental_run_cannot_follow_is_swept(tmp_path, write_config, backup,
                                                        session_of, what, expected):
    eng = estate(n=250 if what == "many" else 20)
    with Live(tmp_path, eng) as live:
        cfg = write_config(tmp_path, live.server.url)
        backup(cfg)
        if what == "dc-upgrade":
            eng.upgrade_datacenter("East")                    # every East VM's Generation + 1
        elif what == "affinity":
            eng.log_event(10352)
        elif what == "no-vm":
            eng.log_event(35, vm_id="")
        elif what == "silent-add":
            eng.create_vm("restored", "e1", log=False)        # POST /vms, disk-less: no event
        elif what == "silent-remove":
            vm = eng.vms[7]
            eng.vms.remove(vm)
            eng.removed.append(vm)
        else:
            for vm in eng.vms[:70]:
                eng.change_vm(vm)
        live.publish()
        _, mode, reason, run_id, _ = backup(cfg)
        assert mode == "full sweep" and expected in reason, reason
        seen = len(live.server.received)
        _, mode, _, _, _ = backup(cfg)                          # after the sweep: incremental
        assert mode == "incremental" and pages(live.server, seen) == []
    assert {k: v[1] for k, v in stored(session_of, run_id).items()} == {
        vm.id: vm.ovf for vm in eng.vms}


def test_a_gap_in_the_feed_is_swept(tmp_path, write_config, backup):
    eng = estate()
    with Live(tmp_path, eng) as live:
        cfg = write_config(tmp_path, live.server.url)
        eng.change_vm("vm001")
        live.publish()
        _, _, _, _, _ = backup(cfg)                             # cursor: event 1001
        assert catalog_runs(tmp_path)[-1][3] == 1001
        eng.change_vm("vm002")
        eng.clear_all_events()                                  # the UI's "clear all"
        live.publish()
        _, mode, reason, _, _ = backup(cfg)
        assert mode == "full sweep"
        assert reason == ("event 1001, the cursor of the newest generation, is gone from the "
                          "engine (aged out or dismissed): events may be missing")
        eng.change_vm("vm003")
        live.publish()
        assert backup(cfg)[1] == "incremental"                  # the sweep had cursor 1002
        eng.tick(31 * 86400)
        eng.change_vm("vm004")
        eng.age_out()
        live.publish()
        _, mode, reason, _, _ = backup(cfg)
        assert mode == "full sweep" and "is gone from the engine" in reason


class FeedDown(ReplayEngine):
    """An engine whose events service answers 503 (the rest works)."""

    down = False

    def answer(self, method_, target, body, content_type=""):
        if self.down and urllib.parse.urlsplit(target).path.endswith("/events"):
            return (503, "Service Unavailable", [("Content-Type", "application/xml")],
                    b"<fault><reason>Operation Failed</reason><detail>down</detail></fault>")
        return super().answer(method_, target, body, content_type)


def test_a_feed_that_cannot_be_read_is_swept_and_the_sweep_records_no_cursor(
        tmp_path, write_config, backup):
    eng = estate()
    with Live(tmp_path, eng, server_class=FeedDown) as live:
        cfg = write_config(tmp_path, live.server.url, engine_extra="retries = 0")
        backup(cfg)
        live.server.down = True
        _, mode, reason, _, out = backup(cfg)
        assert mode == "full sweep"
        assert reason.startswith("the event feed could not be read: reading the events feed: "
                                 "the engine answered 503")
        assert "records no cursor, so the next run is a sweep too" in out
        live.server.down = False
        _, mode, reason, _, _ = backup(cfg)
        assert mode == "full sweep" and "has no event cursor" in reason
        assert backup(cfg)[1] == "incremental"


def test_full_every_mode_full_and_the_full_flag_force_a_sweep(tmp_path, write_config, backup):
    eng = estate()
    with Live(tmp_path, eng) as live:
        cfg = write_config(tmp_path, live.server.url, backup_extra="full_every = 1h")
        backup(cfg)
        assert backup(cfg)[1] == "incremental"
        _, mode, reason, _, _ = backup(cfg, "--full")
        assert (mode, reason) == ("full sweep", "--full was given")
        db = sqlite3.connect(tmp_path / "state" / "catalog.sqlite")
        with db:                                                # the runs were 2h ago
            for run_id, started in db.execute("SELECT id, started_at FROM runs").fetchall():
                earlier = dt.datetime.fromisoformat(started) - dt.timedelta(hours=2)
                db.execute("UPDATE runs SET started_at = ? WHERE id = ?",
                           (earlier.isoformat(), run_id))
        db.close()
        _, mode, reason, _, _ = backup(cfg)
        assert mode == "full sweep"
        assert re.fullmatch(r"the last full sweep in localdb was 2h ago \(full_every 1h\)", reason)
        cfg = write_config(tmp_path, live.server.url, backup_extra="mode = full")
        assert backup(cfg)[1:3] == ("full sweep", "[backup] mode = full")
    assert catalog_runs(tmp_path)[-1][1] == "full"


def test_bad_mode_and_full_every_are_refused(tmp_path, write_config, cli):
    for extra, message in (("mode = sometimes", "[backup] mode = 'sometimes': use auto"),
                           ("full_every = soon", "[backup] full_every = 'soon'")):
        cfg = write_config(tmp_path, "http://127.0.0.1:9/ovirt-engine/api", backup_extra=extra)
        code, out, err = cli("--config", cfg, "backup")
        assert code == 2 and message in err, err
        assert not (tmp_path / "state" / "catalog.sqlite").exists()


def test_a_changed_scope_is_swept(tmp_path, write_config, backup):
    eng = estate()
    with Live(tmp_path, eng) as live:
        cfg = write_config(tmp_path, live.server.url)
        backup(cfg)
        _, mode, reason, _, out = backup(cfg, "--datacenter", "East")
        assert mode == "full sweep"
        assert reason == ("the newest generation of localdb covers every data center, this "
                          "run East")
        assert "14/14 VMs" in out
        eng.change_vm("vm000")
        eng.change_vm("vm002")                                 # in West
        live.publish()
        _, mode, reason, run_id, out = backup(cfg, "--datacenter", "East")
        assert mode == "incremental" and "14/14 VMs" in out   # the West VM is not in scope
        assert "count" not in reason and "the engine's" not in reason   # no count: scoped


def test_a_vm_whose_ovf_is_withheld_keeps_its_backup_flagged_and_is_read_again(
        tmp_path, write_config, backup, listed):
    eng = estate()
    locked = eng.vms[4]
    with Live(tmp_path, eng) as live:
        cfg = write_config(tmp_path, live.server.url)
        backup(cfg)
        eng.change_vm(locked)
        locked.ovf_missing_always = True                     # locked while the change runs
        live.publish()
        code, mode, reason, run_id, out = backup(cfg, code=1)
        assert mode == "incremental" and f"skipped VM {locked.name}" in out
        item = listed(cfg)[locked.name]
        assert item["generation"] == run_id and item["flags"] == ["unread"]
        assert "20/20" not in out and "19/20 VMs" in out
        locked.ovf_missing_always = False
        live.publish()
        _, mode, reason, run_id, _ = backup(cfg)
        assert mode == "incremental" and "(0 named by events, 1 read again" in reason
        item = listed(cfg)[locked.name]
        assert item["generation"] == run_id and item["flags"] == []


def test_a_vm_never_backed_up_is_read_again_by_every_incremental_run_until_it_is(
        tmp_path, write_config, backup, listed):
    """A VM the first sweep could not read has no backup to carry: the state file's skip
    list names it to the next runs, event or not (without it the VM would wait for the
    next sweep, and the run would count it as backed up)."""
    eng = estate()
    locked = eng.vms[7]
    locked.ovf_missing_in_list = locked.ovf_missing_always = True
    with Live(tmp_path, eng) as live:
        cfg = write_config(tmp_path, live.server.url)
        code, mode, *_, out = backup(cfg, code=1)
        assert mode == "full sweep" and "19/20 VMs" in out and locked.name not in listed(cfg)
        live.publish()                                       # no event at all
        code, mode, reason, _, out = backup(cfg, code=1)     # still withheld: still skipped
        assert mode == "incremental" and f"skipped VM {locked.name}" in out, out
        assert "0 named by events, 1 read again" in reason
        locked.ovf_missing_in_list = locked.ovf_missing_always = False
        live.publish()
        code, mode, reason, run_id, out = backup(cfg)
        assert mode == "incremental" and "skipped" not in out
        assert listed(cfg)[locked.name]["generation"] == run_id
        live.publish()
        seen = len(live.server.received)
        _, mode, reason, _, _ = backup(cfg)                  # backed up: nothing to read now
        assert mode == "incremental" and "; 0 VM(s) read" in reason
        assert not [r for r in live.server.received[seen:] if "id=" in r.query.get("search", "")]


def test_an_encrypted_store_is_incremental_and_a_new_key_brings_one_sweep(
        tmp_path, write_config, backup):
    """Encrypted blobs are stored under keyed names: the cross-check compares the sample
    through the key ring. Carried VMs keep their blobs, so after a key rotation one sweep
    seals every VM with the new key (the old one is then needed only until prune)."""
    k1, k2 = tmp_path / "k1.key", tmp_path / "k2.key"
    id1, id2 = write_new_key(str(k1)).id, write_new_key(str(k2)).id
    eng = estate()
    with Live(tmp_path, eng) as live:
        def config(extra):
            return write_config(tmp_path, live.server.url, backup_extra=extra,
                                extra="[provider:localdb]\nencrypt = yes\n")
        cfg = config(f"encryption_key_file = {k1}")
        assert backup(cfg)[1] == "full sweep"
        eng.change_vm("vm003")
        live.publish()
        _, mode, reason, _, out = backup(cfg)
        assert mode == "incremental" and "sample of 8 ok" in reason, reason
        assert "localdb ok (20 written, 1 new)" in out
        rotated = config(f"encryption_key_file = {k2}\nencryption_old_key_files = {k1}")
        live.publish()
        _, mode, reason, _, out = backup(rotated)
        assert mode == "full sweep" and f"is sealed with key {id1}, new blobs with key {id2}" in reason
        assert "localdb ok (20 written, 20 new)" in out
        eng.change_vm("vm004")
        live.publish()
        _, mode, reason, _, _ = backup(rotated)
        assert mode == "incremental" and "sample of 8 ok" in reason, reason


# -- list --generations and history -------------------------------------------------------------
def test_list_generations_and_history_show_which_generations_were_full(
        tmp_path, write_config, backup, cli):
    eng = estate(n=3)
    with Live(tmp_path, eng) as live:
        cfg = write_config(tmp_path, live.server.url)
        first = backup(cfg)[3]
        second = backup(cfg)[3]
        eng.change_vm("vm001")
        live.publish()
        third = backup(cfg)[3]
        code, out, _ = cli("--config", cfg, "list", "--generations", "--json")
        modes = {(i["name"], i["generation"]): i["mode"] for i in json.loads(out)}
        assert modes[("vm001", first)] == "full"
        assert modes[("vm001", second)] == modes[("vm001", third)] == "incremental"
        code, out, _ = cli("--config", cfg, "list", "--generations", "vm001")
        header = out.splitlines()[0].split()
        assert header[header.index("GENERATION") + 1] == "MODE"
        assert re.search(rf"{third}\s+incremental\s+localdb", out)
        code, out, _ = cli("--config", cfg, "history", "vm001")
        assert f"first backup (generation {first}, full)" in out
        assert f"changed (generation {third}, incremental):" in out
        assert "unchanged (2 generations: 1 full, 1 incremental)" in out


# -- providers -------------------------------------------------------------------------------
class NoCarry:
    """localdb without carry_over: what an older third-party provider looks like."""

    def __init__(self):
        for name in ("declare_provider", "before_backup", "write_ovf", "after_backup",
                     "list_restorable", "read_ovf", "list_generations", "forget_generations"):
            setattr(self, name, getattr(localdb, name))       # already @hookimpl


@pytest.mark.parametrize("encrypt", [False, True], ids=["clear", "encrypted"])
def test_a_provider_without_carry_over_is_still_complete(tmp_path, session_of, settings_for,
                                                         encrypt):
    eng = estate()
    plugin = NoCarry()
    sealing: dict = {}
    if encrypt:        # blobs named by a keyed hash: the read-back must name them as a write does
        sealing = {"encryption_key_file": str(tmp_path / "k1")}
        write_new_key(sealing["encryption_key_file"])
    crypt = {"encrypt": "yes"} if encrypt else {}
    with Live(tmp_path, eng) as live:
        def run():
            session = session_of(["localdb"],
                                 {"localdb": {"path": str(tmp_path / "a.sqlite"), **crypt},
                                  "plain": {"path": str(tmp_path / "b.sqlite"), **crypt}},
                                 engine=settings_for(live.server), extra=[("plain", plugin)],
                                 **sealing)
            with session:
                report = run_backup(session.engine, session.handles, system="test-engine",
                                    planner=plan_capture)
            return report, session
        run()
        eng.change_vm("vm010")
        live.publish()
        report, session = run()
    assert report.run.mode == "incremental" and report.exit_code == 0, report.summary()
    assert report.providers["plain"].carried == report.providers["localdb"].carried == 11
    for h in session.handles:
        items = gather([h], handle_engine(), Query(generation=report.run.id)).items
        assert {i.vm_id: h.read_checked(i).text for i in items} == {
            vm.id: vm.ovf for vm in eng.vms}


def test_blobs_the_provider_lost_are_read_again_from_the_engine(tmp_path, write_config,
                                                                  backup, session_of):
    eng = estate()
    with Live(tmp_path, eng) as live:
        cfg = write_config(tmp_path, live.server.url)
        backup(cfg)
        db = sqlite3.connect(tmp_path / "state" / "catalog.sqlite")
        with db:                                       # bit rot, or a hand-made "cleanup"
            db.execute("DELETE FROM blobs")
        db.close()
        eng.change_vm("vm000")
        live.publish()
        seen = len(live.server.received)
        _, mode, reason, run_id, out = backup(cfg)
        asked = [r.query["search"].count("id=") for r in live.server.received[seen:]
                 if r.query.get("search", "").startswith("id=")]
    # 1 changed + 8 sampled are read and written; the 11 carried over are not held: read again
    assert mode == "incremental" and asked == [9, 11], (asked, reason)
    assert "localdb: 11 stored OVF(s) missing; reading them from the engine" in out
    assert "localdb ok (20 written, 20 new)" in out
    assert {k: v[1] for k, v in stored(session_of, run_id).items()} == {
        vm.id: vm.ovf for vm in eng.vms}


# -- the randomized mutation test ---------------------------------------------------------------
def test_randomized_mutations_through_the_real_sdk(tmp_path, write_config, backup, session_of):
    """Rounds of random changes (with events, and a few without), adds and removes; after
    each run every VM's stored newest OVF is compared with the engine's."""
    rng = random.Random(20261126)
    eng = estate(n=80, seed=5)
    silent = set()                                  # changed without an event since a sweep
    modes = []
    cursors = []
    with Live(tmp_path, eng) as live:
        cfg = write_config(tmp_path, live.server.url)
        backup(cfg)
        for round_ in range(1, 13):
            for _ in range(rng.randrange(3, 12)):
                op = rng.random()
                vm = rng.choice(eng.vms)
                if op < 0.35:
                    eng.change_vm(vm, rng.choice(sorted(eng.CHANGE_EVENTS)))
                    silent.discard(vm.id)
                elif op < 0.5:
                    (eng.run_vm if vm.status != "up" else eng.stop_vm)(vm)
                    silent.discard(vm.id)
                elif op < 0.6:
                    eng.rename_vm(vm, f"{vm.name.split('~')[0]}~{round_}")
                    silent.discard(vm.id)
                elif op < 0.72:
                    eng.create_vm(f"new{round_}-{rng.randrange(10**6)}",
                                  rng.choice(["e1", "e2", "w1"]))
                elif op < 0.82 and len(eng.vms) > 40:
                    eng.remove_vm(vm)
                    silent.discard(vm.id)
                elif op < 0.9:
                    eng.change_vm(vm, log=False)      # a change the feed never shows
                    silent.add(vm.id)
                eng.tick(rng.randrange(1, 90))
            live.publish(settle=rng.choice([30, 600]))
            args = ("--full",) if round_ % 5 == 0 else ()
            _, mode, reason, run_id, out = backup(cfg, *args)
            modes.append(mode)
            now = stored(session_of, run_id)
            engine = {vm.id: vm for vm in eng.vms}
            assert set(now) == set(engine), f"round {round_}: VMs lost or kept after removal"
            differ = {k for k in engine if now[k][1] != engine[k].ovf}
            if mode == "full sweep":
                assert differ == set(), f"round {round_}: {reason}"
                silent.clear()
            else:
                assert differ <= silent, f"round {round_}: missed {differ - silent}: {reason}"
                silent &= differ                      # the rest were read anyway (sampled)
            assert all(now[k][0] == engine[k].name for k in engine)
            cursors.append(catalog_runs(tmp_path)[-1][3])
    assert modes.count("incremental") >= 6 and modes.count("full sweep") >= 2, modes
    assert cursors == sorted(cursors) and cursors[-1] > synth.FIRST_EVENT


# -- kill -9 ----------------------------------------------------------------------------------
def until(predicate, what):
    deadline = time.monotonic() + DEADLINE
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.05)


def in_msd_commit(method, path, query):
    return method == "GET" and path.endswith("/storagedomains")


def reading_changed_vms(method, path, query):
    return path.endswith("/vms") and query.get("search", "").startswith("id=")


@pytest.mark.parametrize("holds", [in_msd_commit, reading_changed_vms],
                         ids=["while committing", "while reading the changed VMs"])
def test_kill_9_during_an_incremental_run_keeps_cursor_and_generation_together(
        tmp_path, write_config, backup, session_of, holds):
    eng = estate()
    with Live(tmp_path, eng, server_class=GatedEngine, holds=holds) as live:
        # msd first: its after_backup reads storage domains before localdb commits
        cfg = write_config(tmp_path, live.server.url, providers="msd, localdb",
                           extra="[provider:msd]\nconfirm_timeout = 0.2\nconfirm_poll = 0.1\n")
        live.server.gate.set()
        backup(cfg)
        live.server.gate.clear()
        eng.change_vm("vm003")
        eng.create_vm("added", "e2")
        live.publish()
        before = catalog_runs(tmp_path)
        proc = subprocess.Popen([sys.executable, "-m", "ovirt_backup_plugin.cli", "--config", cfg,
                                 "backup"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                env=dict(os.environ))
        try:
            until(lambda: live.server.arrived.is_set() or proc.poll() is not None,
                  "the run to reach the gate")
            assert proc.poll() is None, proc.communicate()[0]
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(DEADLINE)
        finally:
            live.server.gate.set()
            if proc.poll() is None:
                proc.kill()
            output = proc.communicate()[0].decode()
        assert "incremental:" in output or holds is reading_changed_vms, output
        assert catalog_runs(tmp_path) == before            # the generation and its cursor
        _, mode, reason, run_id, _ = backup(cfg)           # the next run starts at once
        assert mode == "incremental" and reason.startswith(
            f"{eng.next_event - synth.FIRST_EVENT} event(s) since event {before[-1][3]};")
    assert {k: v[1] for k, v in stored(session_of, run_id).items()} == {
        vm.id: vm.ovf for vm in eng.vms}
    runs = catalog_runs(tmp_path)
    assert len(runs) == len(before) + 1 and runs[-1][4] == len(eng.vms) == 21
