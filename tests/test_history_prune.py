"""Generations and retention: ``ovirt-backup history`` and ``ovirt-backup prune``.

Through the CLI, the real SDK over HTTP against replay engines whose VMs change between
runs, the real SQLite catalog and the real loopback Swift. Where a test needs old
generations it rewrites their start time in the SQLite catalog (the test owns the store).
"""
import datetime as dt
import json
import re
import sqlite3
import uuid

import pytest

from ovirt_backup_plugin.cli import main
from ovirt_backup_plugin.engine import Engine
from ovirt_backup_plugin.errors import BackupError, ConfigError
from ovirt_backup_plugin.host import Session
from ovirt_backup_plugin.host.config import load_config
from ovirt_backup_plugin.model import GenerationInfo, Query, Restorable
from ovirt_backup_plugin.ovf import parse_ovf
from ovirt_backup_plugin.restore.history import build_history
from ovirt_backup_plugin.restore.listing import gather
from ovirt_backup_plugin.stores.retention import (
    NOTHING_KEPT,
    Generation,
    Policy,
    decide,
    left_without_backup,
    make_policy,
    parse_duration,
)
from ovirt_backup_plugin.testing import synth
from ovirt_backup_plugin.testing.contract import ProviderContract, ProviderHarness
from ovirt_backup_plugin.testing.replay import ReplayEngine

pytest_plugins = ["tests.swift_service"]

PASSWORD = "replay-secret"
T0 = dt.datetime(2026, 11, 20, 8, 0, tzinfo=dt.timezone.utc)

#: web01 exactly as synth.demo_engine() builds it; tests change some of it.
WEB01 = dict(memory_mb=4096, cpus=2, description="Public web front end",
             disks=[synth.SynthDisk("web01_Disk1", 30, 6, boot=True),
                    synth.SynthDisk("web01_data", 100, 41, storage_domain="prod-data2")],
             nics=[synth.SynthNic("nic1", "ovirtmgmt"),
                   synth.SynthNic("nic2", "frontend", "frontend-qos")],
             status="up")
BACKUP_NIC = synth.SynthNic("nic3", "backup")


def demo(*, drop=(), **web01) -> synth.SyntheticEngine:
    """The demo engine with web01 rebuilt from other parameters (same id unless ``id=`` is
    given, so same disk and NIC ids) and the VMs named in ``drop`` gone from the engine."""
    eng = synth.demo_engine()
    if web01:
        n = next(n for n, vm in enumerate(eng.vms) if vm.name == "web01")
        params = {**WEB01, "id": eng.vms[n].id, **web01}
        eng.vms[n] = eng.add_vm("web01", "prod-a", **params)
        eng.vms.pop()                      # add_vm appended it: keep the engine's order
    eng.vms[:] = [vm for vm in eng.vms if vm.name not in drop]
    return eng


CHANGED = dict(memory_mb=8192, cpus=4, nics=WEB01["nics"] + [BACKUP_NIC])


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path)


class Store:
    """The settings file, the backups and the CLI of one test's system."""

    def __init__(self, tmp_path, providers="localdb", extra=""):
        self.tmp_path, self.providers, self.extra = tmp_path, providers, extra
        self.config = str(tmp_path / "ovirt-backup.conf")
        self.catalog = tmp_path / "state" / "catalog.sqlite"
        self.write("https://engine.invalid/ovirt-engine/api")

    def write(self, url):
        (self.tmp_path / "ovirt-backup.conf").write_text("\n".join([
            "[engine]", f"url = {url}", "username = admin@internal",
            "password_env = TEST_ENGINE_PASSWORD", "retry_delay = 0.01",
            # mode = full: each backup is of another synthesized engine, changed without
            # any event; sweeps read every change (tests/test_incremental.py covers auto)
            "[backup]", "system = test-engine", f"providers = {self.providers}", "mode = full",
            f"state_dir = {self.tmp_path / 'state'}", self.extra]))

    def backup(self, capsys, eng: synth.SyntheticEngine) -> str:
        """One backup run of ``eng``; its run id."""
        path = eng.write_cassette(self.tmp_path / f"engine-{uuid.uuid4().hex[:8]}.yaml")
        with ReplayEngine([path], password=PASSWORD) as server:
            self.write(server.url)
            code, out, err = self.cli(capsys, "backup")
        assert code == 0, out + err
        return re.search(r"backup run (\S+) of", out).group(1)

    def cli(self, capsys, *argv):
        code = main(["--config", self.config, *argv])
        out, err = capsys.readouterr()
        return code, out, err

    def generations(self, capsys) -> dict:
        """(provider, generation) → sorted VM names, as ``list --generations --json`` shows."""
        code, out, err = self.cli(capsys, "list", "--generations", "--json")
        assert code == 0, err
        found = {}
        for item in json.loads(out):
            found.setdefault((item["provider"], item["generation"]), set()).add(item["name"])
        return {k: sorted(v) for k, v in found.items()}

    def set_times(self, times: dict) -> None:
        """Backdate runs in the SQLite catalog: run id → start time."""
        db = sqlite3.connect(self.catalog)
        with db:
            for run_id, when in times.items():
                db.execute("UPDATE runs SET started_at = ? WHERE id = ?",
                           (when.isoformat(), run_id))
        db.close()

    def counts(self) -> tuple:
        db = sqlite3.connect(self.catalog)
        try:
            return tuple(db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                         for t in ("runs", "vms", "blobs"))
        finally:
            db.close()


def vm_id(name, eng=None):
    return next(vm.id for vm in (eng or synth.demo_engine()).vms if vm.name == name)


def test_the_demo_helper_rebuilds_web01_exactly():
    """Guards the helper: unchanged parameters give the demo's very OVF."""
    assert [vm.ovf for vm in demo(memory_mb=4096).vms] == [vm.ovf for vm in
                                                           synth.demo_engine().vms]
    changed = demo(**CHANGED)
    web01 = parse_ovf(next(vm.ovf for vm in changed.vms if vm.name == "web01"))
    assert (web01.id, web01.memory_mb, web01.cpus, len(web01.nics)) == (vm_id("web01"), 8192,
                                                                        4, 3)


# -- history ------------------------------------------------------------------------------
def test_history_shows_each_change_and_groups_unchanged_periods(store, capsys):
    runs = [store.backup(capsys, eng) for eng in (
        demo(), demo(), demo(**CHANGED), demo(**CHANGED), demo(**CHANGED),
        demo(memory_mb=8192, cpus=4))]
    store.set_times({run: T0 + dt.timedelta(days=n) for n, run in enumerate(runs)})

    code, out, err = store.cli(capsys, "history", "web01")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == (f"VM web01 ({vm_id('web01')}): 6 generation(s) from 2026-11-20 08:00 "
                        "to 2026-11-25 08:00, oldest first (localdb)")
    # each line says how its generation was taken (here: every run a full sweep)
    assert lines[1] == (f"2026-11-20 08:00  first backup (generation {runs[0]}, full): rhel_8x64, "
                        "4096 MB, 2 CPUs, 2 disks, 2 NICs, cluster prod-a")
    assert lines[2] == "2026-11-20 08:00 → 2026-11-21 08:00 unchanged (2 generations: 2 full)"
    assert lines[3] == f"2026-11-22 08:00  changed (generation {runs[2]}, full):"
    assert lines[4:6] == ["    memory: 4096 → 8192 MB", "    CPUs: 2 → 4"]
    assert lines[6].startswith("    NIC added: nic3 (network backup, MAC 56:6f:")
    assert lines[7] == "2026-11-22 08:00 → 2026-11-24 08:00 unchanged (3 generations: 3 full)"
    assert lines[8] == f"2026-11-25 08:00  changed (generation {runs[5]}, full):"
    assert lines[9].startswith("    NIC removed: nic3 (network backup")
    assert len(lines) == 10

    # by id, the same; a VM that never changed is one period
    assert store.cli(capsys, "history", vm_id("web01"))[1] == out
    code, out, _ = store.cli(capsys, "history", "db01")
    assert code == 0
    assert out.splitlines()[1:] == [
        f"2026-11-20 08:00  first backup (generation {runs[0]}, full): rhel_9x64, 16384 MB, "
        "8 CPUs, 3 disks, 2 NICs, cluster prod-b",
        "2026-11-20 08:00 → 2026-11-25 08:00 unchanged (6 generations: 6 full)"]

    code, out, _ = store.cli(capsys, "history", "web01", "--json")
    data = json.loads(out)
    assert (data["vm_id"], data["generations"], data["providers"]) == (vm_id("web01"), 6,
                                                                       ["localdb"])
    assert [(p["first_generation"], p["generations"]) for p in data["periods"]] == [
        (runs[0], 2), (runs[2], 3), (runs[5], 1)]
    assert data["periods"][0]["changes"] == []
    assert data["periods"][1]["changes"][:2] == ["memory: 4096 → 8192 MB", "CPUs: 2 → 4"]
    assert data["periods"][1]["from"] == "2026-11-22T08:00:00+00:00"


def test_history_of_an_ambiguous_or_unknown_name_is_a_clear_error(store, capsys):
    store.backup(capsys, demo())
    other = str(uuid.UUID(int=7, version=4))       # web01 deleted, a new web01 created
    store.backup(capsys, demo(id=other))
    code, _, err = store.cli(capsys, "history", "web01")
    assert code == 2
    assert "'web01' names 2 different VMs" in err and "pick one by id" in err
    code, out, _ = store.cli(capsys, "history", other)
    assert code == 0 and "1 generation(s)" in out and "first backup" in out
    code, _, err = store.cli(capsys, "history", "no-such-vm")
    assert code == 2 and "no backup of a VM named or with id 'no-such-vm'" in err
    code, _, err = store.cli(capsys, "history", "db01", "--provider", "swift")
    assert code == 2 and "provider 'swift' is not enabled" in err


def test_history_reads_one_checked_ovf_per_period(store, capsys):
    store.backup(capsys, demo())
    store.backup(capsys, demo(memory_mb=6144))
    store.backup(capsys, demo(memory_mb=6144))
    handles = Session.open(load_config(store.config)).handles
    items = gather(handles, Engine(None), Query(vms=("web01",), every=True)).items
    assert len(items) == 3 and all(i.identity is None for i in items)
    read = []

    def identity_of(item: Restorable):
        read.append(item.generation)
        return handles[0].read_checked(item).identity

    history = build_history(items, "web01", identity_of)
    assert [p.changes for p in history.periods] == [[], ["memory: 4096 → 6144 MB"]]
    assert len(read) == 2                  # one OVF per period, not one per generation
    assert [len(p.items) for p in history.periods] == [1, 2]


# -- prune --------------------------------------------------------------------------------
def test_prune_keep_last_removes_old_generations_and_their_unreferenced_ovfs(store, capsys):
    runs = [store.backup(capsys, eng) for eng in (demo(), demo(), demo(**CHANGED),
                                                  demo(**CHANGED))]
    code, out, err = store.cli(capsys, "prune", "--keep-last", "2")
    assert code == 0, err
    assert ("localdb: keep the newest 2 generations: 4 generation(s), keeping 2, removing 2"
            in out)
    assert all(re.search(rf"^  remove {run}  \S+ \S+  6 VM\(s\)$", out, re.M)
               for run in runs[:2])
    # web01's first configuration was only in the removed generations; the rest is still held
    assert ("localdb: removed 2 generation(s) and 1 stored OVF(s) no kept generation "
            "references") in out
    assert err == ""
    assert sorted(g for _, g in store.generations(capsys)) == sorted(runs[2:])
    code, out, _ = store.cli(capsys, "history", "web01")
    assert f"first backup (generation {runs[2]}, full): rhel_8x64, 8192 MB, 4 CPUs" in out

    code, out, _ = store.cli(capsys, "prune", "--keep-last", "2")
    assert code == 0 and "keeping 2, removing 0" in out and "removed" not in out


def test_prune_keep_within_from_settings_or_the_command_line(tmp_path, capsys):
    store = Store(tmp_path, extra="[provider:localdb]\nkeep_within = 30d\n")
    runs = [store.backup(capsys, demo()) for _ in range(4)]
    now = dt.datetime.now(dt.timezone.utc)
    ages = [400, 40, 35, 1]
    store.set_times({run: now - dt.timedelta(days=age) for run, age in zip(runs, ages)})

    code, out, err = store.cli(capsys, "prune", "--dry-run")
    assert code == 0, err
    assert ("localdb: keep every generation younger than 30d: 4 generation(s), keeping 1, "
            "removing 3") in out
    assert f"  keep {runs[3]}" in out and "(the newest generation, younger than 30d)" in out

    # --keep-within overrides the setting; --keep-last 0 is "no such rule"
    code, out, err = store.cli(capsys, "prune", "--keep-within", "36d", "--keep-last", "0")
    assert code == 0, err
    assert "keep every generation younger than 36d: 4 generation(s), keeping 2, removing 2" in out
    assert {g for _, g in store.generations(capsys)} == {runs[2], runs[3]}

    # every generation old: the newest one is kept all the same
    store.set_times({runs[2]: now - dt.timedelta(days=90), runs[3]: now - dt.timedelta(days=60)})
    code, out, _ = store.cli(capsys, "prune")
    assert code == 0 and "keeping 1, removing 1" in out
    assert {g for _, g in store.generations(capsys)} == {runs[3]}


def test_dry_run_changes_nothing(store, capsys):
    runs = [store.backup(capsys, eng) for eng in (demo(), demo(**CHANGED), demo())]
    before, counts = store.generations(capsys), store.counts()
    code, out, err = store.cli(capsys, "prune", "--keep-last", "1", "--dry-run")
    assert code == 0, err
    assert f"  would remove {runs[0]}" in out and f"  would remove {runs[1]}" in out
    assert f"  keep {runs[2]}  " in out
    assert "6 VM(s)  (the newest generation, among the newest 1)" in out
    assert out.rstrip().endswith("dry run: nothing was removed")
    assert "removed 2 generation" not in out
    assert store.generations(capsys) == before and store.counts() == counts


def test_prune_refuses_to_run_without_a_policy(store, capsys):
    store.backup(capsys, demo())
    store.backup(capsys, demo())
    counts = store.counts()
    for argv in ([], ["--dry-run"], ["--keep-last", "0"], ["--keep-within", "0"]):
        code, out, err = store.cli(capsys, "prune", *argv)
        assert code == 2, argv
        assert NOTHING_KEPT in err and "[provider:localdb]" in err
        assert "remove" not in out
    code, _, err = store.cli(capsys, "prune", "--keep-within", "30 days")
    assert code == 2 and "is not a duration" in err
    assert store.counts() == counts


def test_prune_warns_about_vms_it_leaves_without_any_backup(store, capsys):
    first = store.backup(capsys, demo())
    store.backup(capsys, demo(drop=["lab-build01"]))       # deleted from the engine
    store.backup(capsys, demo(drop=["lab-build01"]))
    store.set_times({first: T0})
    code, out, err = store.cli(capsys, "prune", "--keep-last", "2", "--dry-run")
    assert code == 0
    warning = (f"warning: VM lab-build01 ({vm_id('lab-build01')}) would be left with no backup "
               "at all: its newest backup of 2026-11-20 08:00 in localdb is removed by the "
               "policy")
    assert err.splitlines() == [warning]
    code, out, err = store.cli(capsys, "prune", "--keep-last", "2")
    assert code == 0 and err.splitlines() == [warning]
    code, _, err = store.cli(capsys, "history", "lab-build01")
    assert code == 2 and "no backup of a VM named" in err


def test_providers_without_forget_generations_are_skipped(tmp_path, capsys):
    store = Store(tmp_path, providers="localdb, noop")
    runs = [store.backup(capsys, demo()) for _ in range(2)]
    code, out, err = store.cli(capsys, "prune", "--keep-last", "1")
    assert code == 0, err
    assert "noop: skipped: it keeps no generations of its own to prune" in out
    assert "localdb: removed 1 generation(s)" in out
    assert {g for _, g in store.generations(capsys)} == {runs[1]}
    code, out, _ = store.cli(capsys, "prune", "--provider", "noop")
    assert code == 0 and "nothing to prune" in out
    code, _, err = store.cli(capsys, "prune", "--provider", "swift", "--keep-last", "1")
    assert code == 2 and "provider 'swift' is not enabled" in err


def test_history_and_prune_across_localdb_and_swift(tmp_path, capsys, swift_service,
                                                    swift_container):
    options = swift_service.options(container=swift_container)
    store = Store(tmp_path, providers="localdb, swift", extra="[provider:swift]\n" + "\n".join(
        f"{k} = {v}" for k, v in options.items()))
    runs = [store.backup(capsys, eng) for eng in (demo(), demo(**CHANGED), demo(**CHANGED))]

    code, out, err = store.cli(capsys, "history", "web01")
    assert code == 0, err
    assert "3 generation(s)" in out and "oldest first (localdb, swift)" in out
    assert "    memory: 4096 → 8192 MB" in out
    assert "unchanged (2 generations: 2 full)" in out
    code, swift_only, _ = store.cli(capsys, "history", "web01", "--provider", "swift")
    assert "oldest first (swift)" in swift_only

    code, out, err = store.cli(capsys, "prune", "--provider", "swift", "--keep-last", "1")
    assert code == 0, err
    assert "swift: removed 2 generation(s) and 1 stored OVF(s)" in out
    assert "localdb" not in out
    assert err == ""                       # localdb still holds every VM
    held = store.generations(capsys)
    assert sorted(g for p, g in held if p == "swift") == [runs[2]]
    assert sorted(g for p, g in held if p == "localdb") == sorted(runs)
    assert len(swift_service.names(swift_container, "ovf/")) == 6

    code, out, err = store.cli(capsys, "prune", "--keep-last", "1")
    assert code == 0, err
    assert "swift: keep the newest 1 generation: 1 generation(s), keeping 1, removing 0" in out
    assert "localdb: removed 2 generation(s) and 1 stored OVF(s)" in out
    assert "swift: removed" not in out
    code, out, _ = store.cli(capsys, "history", "web01")
    assert "1 generation(s)" in out and "8192 MB, 4 CPUs" in out


def test_swift_keeps_ovfs_any_manifest_references_and_stops_at_an_unreadable_one(
        tmp_path, capsys, swift_service, swift_container):
    options = swift_service.options(container=swift_container)
    store = Store(tmp_path, providers="swift", extra="[provider:swift]\n" + "\n".join(
        f"{k} = {v}" for k, v in options.items()))
    runs = [store.backup(capsys, eng) for eng in (demo(), demo(**CHANGED))]
    conn = swift_service.connection()
    try:   # a history set aside under another prefix still references web01's first OVF
        conn.put_object(swift_container, f"aside-1/runs/{runs[0]}.json",
                        conn.get_object(swift_container, f"runs/{runs[0]}.json")[1])
        code, out, err = store.cli(capsys, "prune", "--keep-last", "1")
        assert code == 0, err
        assert "swift: removed 1 generation(s) and 0 stored OVF(s)" in out
        blobs = swift_service.names(swift_container, "ovf/")
        assert len(blobs) == 7

        conn.put_object(swift_container, "aside-2/runs/broken.json", b"{not json")
        runs.append(store.backup(capsys, demo(**CHANGED)))
        code, out, err = store.cli(capsys, "prune", "--keep-last", "1")
    finally:
        conn.close()
    assert code == 2
    assert "aside-2/runs/broken.json" in err and "no stored OVF was deleted" in err
    # the generation went first; every OVF is still there, so nothing listed lacks its OVF
    assert set(store.generations(capsys)) == {("swift", runs[2])}
    assert swift_service.names(swift_container, "ovf/") == blobs


# -- the policy, pure ---------------------------------------------------------------------
def test_durations():
    assert parse_duration("30d") == dt.timedelta(days=30)
    assert parse_duration("12h") == dt.timedelta(hours=12)
    assert parse_duration("2w") == dt.timedelta(days=14)
    assert parse_duration("1y6mo") == dt.timedelta(days=365 + 180)
    assert parse_duration("90m") == dt.timedelta(minutes=90)
    assert parse_duration("0") == dt.timedelta(0)
    for bad in ("", "30", "30x", "d", "-1d", "6 months"):
        with pytest.raises(ConfigError, match="not a duration"):
            parse_duration(bad)


def test_policy_from_settings_and_overrides():
    settings = {"keep_last": "7", "keep_within": "30d"}
    assert make_policy(settings) == Policy(7, dt.timedelta(days=30), "30d")
    assert make_policy(settings, keep_last=2) == Policy(2, dt.timedelta(days=30), "30d")
    assert make_policy(settings, keep_within="0").keep_within == dt.timedelta(0)
    assert make_policy(settings, keep_last=0, keep_within="0").empty
    assert make_policy({}).empty
    with pytest.raises(ConfigError, match="keep_last"):
        make_policy({"keep_last": "many"})
    with pytest.raises(ConfigError, match="keep_last"):
        make_policy({}, keep_last=-1)


def gen(n, days_old, now):
    return Generation("p", f"g{n}", now - dt.timedelta(days=days_old), 3)


def test_decisions_keep_last_or_within_and_never_the_newest():
    now = T0
    gens = [gen(n, age, now) for n, age in enumerate([50, 40, 20, 10, 0])]

    def keep(policy):
        return [d.generation.id for d in decide(gens, policy, now) if d.keep]

    assert keep(Policy(keep_last=2)) == ["g4", "g3"]
    assert keep(Policy(keep_within=dt.timedelta(days=30), within_text="30d")) == [
        "g4", "g3", "g2"]
    assert keep(Policy(keep_last=4, keep_within=dt.timedelta(days=15))) == [
        "g4", "g3", "g2", "g1"]
    old = [gen(n, age, now) for n, age in enumerate([90, 80])]
    assert [(d.generation.id, d.reasons) for d in
            decide(old, Policy(keep_within=dt.timedelta(days=1), within_text="1d"), now)] == [
        ("g1", ("the newest generation",)), ("g0", ())]
    undated = Generation("p", "g9", None)
    assert decide([undated] + old, Policy(keep_last=1), now)[-1].reasons == ("time unknown",)
    with pytest.raises(ConfigError, match="nothing would be kept"):
        decide(gens, Policy(), now)
    assert decide([], Policy(keep_last=1), now) == []


def item(provider, generation, name, days_old=0):
    return Restorable(provider=provider, vm_id=f"id-{name}", name=name, generation=generation,
                      taken_at=T0 - dt.timedelta(days=days_old))


def test_a_vm_is_left_without_backup_when_its_newest_item_everywhere_is_removed():
    newest = [item("a", "g2", "web"), item("a", "g1", "db", 2),
              item("b", "g1", "db", 2), item("b", "g1", "old", 2)]
    assert [i.name for i in left_without_backup(newest, {("a", "g1")})] == []
    assert [i.name for i in left_without_backup(newest, {("a", "g1"), ("b", "g1")})] == [
        "db", "old"]
    info = GenerationInfo(id="g1", taken_at=T0, vms=2, mode="incremental")
    assert Generation.of("a", info) == Generation("a", "g1", T0, 2, "incremental")


def test_left_without_backup_counts_every_item_given():
    items = [item("a", "g1", "web", 2), item("a", "g1", "db", 2), item("a", "g2", "web"),
             item("b", "g1", "db", 2), item("b", "g1", "old", 2)]
    assert [i.name for i in left_without_backup(items, {("a", "g1")})] == []
    assert [i.name for i in left_without_backup(items, {("a", "g1"), ("b", "g1")})] == [
        "db", "old"]


def test_a_provider_without_forget_generations_skips_the_contract_test(tmp_path):
    from ovirt_backup_plugin.hooks import noop

    harness = ProviderHarness("noop", noop, {}, state_dir=str(tmp_path))
    with pytest.raises(pytest.skip.Exception, match="does not implement forget_generations"):
        ProviderContract().forgetting_handle(harness)


def test_history_needs_one_vm():
    with pytest.raises(BackupError, match="no backup"):
        build_history([], "web01", lambda i: None)
