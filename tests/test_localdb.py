"""localdb keeps working with what version 0.1 wrote, and refuses what a newer one wrote.

A catalog of format 1 is built here with the exact schema and rows 0.1 wrote (bare zlib
blobs, identities as JSON, no format record); the current code reads it, upgrades it in
place in one transaction, and goes on backing up into it.
"""
import datetime as dt
import hashlib
import json
import sqlite3
import zlib

import pytest

from ovirt_backup_plugin.errors import ProviderError
from ovirt_backup_plugin.hooks import localdb
from ovirt_backup_plugin.model import BackupOutcome, Query, Run, VmBackup
from ovirt_backup_plugin.ovf import ovf_hash, pack, seal
from ovirt_backup_plugin.testing import synth

#: The schema of ovirt-backup 0.1 (hooks/localdb.py at 0.1.0), format 1.
SCHEMA_0_1 = """
CREATE TABLE IF NOT EXISTS runs (id TEXT PRIMARY KEY, started_at TEXT NOT NULL,
    finished_at TEXT NOT NULL, system TEXT, engine_url TEXT, datacenter TEXT, vm_count INTEGER);
CREATE TABLE IF NOT EXISTS blobs (hash TEXT PRIMARY KEY, ovf BLOB NOT NULL, identity TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS vms (run_id TEXT NOT NULL, vm_id TEXT NOT NULL, name TEXT NOT NULL,
    kind TEXT NOT NULL, datacenter TEXT, cluster TEXT, hash TEXT NOT NULL REFERENCES blobs(hash),
    PRIMARY KEY (run_id, vm_id));
CREATE INDEX IF NOT EXISTS vms_by_name ON vms(name);
CREATE INDEX IF NOT EXISTS vms_by_hash ON vms(hash);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
RUNS = [("20261120T080000Z-00000001", "2026-11-20T08:00:00+00:00"),
        ("20261120T081500Z-00000002", "2026-11-20T08:15:00+00:00")]


@pytest.fixture
def old_catalog(tmp_path, demo):
    """A 0.1 catalog of the demo engine: two runs, web01 changed in the second."""
    path = tmp_path / "state" / "catalog.sqlite"
    path.parent.mkdir(parents=True)
    db = sqlite3.connect(path)
    db.executescript(SCHEMA_0_1)
    owner = {"system": "test-engine", "url": "https://old/ovirt-engine/api",
             "datacenter_ids": [dc.id for dc in demo.datacenters]}
    db.execute("INSERT INTO meta VALUES ('owner', ?)", (json.dumps(owner),))
    texts = {}
    for n, (run_id, started) in enumerate(RUNS):
        for vm in demo.vms:
            text = vm.ovf if not (n and vm.name == "web01") else vm.ovf.replace(
                "<Comment></Comment>", "<Comment>changed</Comment>")
            digest = ovf_hash(text)
            texts[(run_id, vm.name)] = text
            db.execute("INSERT OR IGNORE INTO blobs VALUES (?, ?, ?)",
                       (digest, zlib.compress(text.encode()), json.dumps({"id": vm.id})))
            db.execute("INSERT INTO vms VALUES (?, ?, ?, 'vm', ?, ?, ?)",
                       (run_id, vm.id, vm.name, vm.cluster.datacenter.name, vm.cluster.name, digest))
        db.execute("INSERT INTO runs VALUES (?, ?, ?, 'test-engine', 'https://old', NULL, ?)",
                   (run_id, started, started, len(demo.vms)))
    db.commit()
    db.close()
    return path, texts


def _schema(path):
    db = sqlite3.connect(path)
    try:
        return sorted(r for r in db.execute("SELECT type, name, sql FROM sqlite_master"))
    finally:
        db.close()


def test_a_0_1_catalog_is_read_and_upgraded_in_place(tmp_path, old_catalog, cli, write_config,
                                                    serve, session_of):
    path, texts = old_catalog
    (handle,) = session_of(["localdb"]).handles
    info = handle.describe_store()                     # the first open upgrades it
    assert info.format == localdb.FORMAT and info.generations == 2
    db = sqlite3.connect(path)
    assert db.execute("SELECT value FROM meta WHERE key = 'format'").fetchone() == ("2",)
    assert db.execute("SELECT count(*) FROM latest").fetchone() == (6,)
    db.close()
    newest = {i.name: i for i in handle.list_restorable(Query(), None)}
    assert {i.generation for i in newest.values()} == {RUNS[1][0]}
    assert {i.generations for i in newest.values()} == {2}
    assert handle.read_checked(newest["web01"]).text == texts[(RUNS[1][0], "web01")]
    every = handle.list_restorable(Query(vms=("web01",), every=True), None)
    assert sorted(i.generation for i in every) == [r for r, _ in RUNS]

    with serve(tmp_path, synth.demo_engine()) as server:       # and backups go on into it
        cfg = write_config(tmp_path, server.url)
        code, out, _ = cli("--config", cfg, "backup")
    assert code == 0, out
    assert "localdb ok (6 written, 0 new)" in out      # web01 is back to its first OVF
    assert handle.describe_store().generations == 3
    again = {i.name: i for i in handle.list_restorable(Query(), None)}
    assert again["web01"].ovf_hash == ovf_hash(texts[(RUNS[0][0], "web01")])
    assert again["web01"].generations == 3


def test_an_upgrade_that_fails_changes_nothing(old_catalog, session_of):
    path, _ = old_catalog
    db = sqlite3.connect(path)
    db.execute("CREATE TRIGGER refuse BEFORE INSERT ON meta BEGIN "
               "SELECT RAISE(ABORT, 'disk went away'); END")
    db.commit()
    db.close()
    before = _schema(path)
    (handle,) = session_of(["localdb"]).handles
    with pytest.raises(ProviderError, match="disk went away"):
        handle.list_restorable(Query(), None)
    assert _schema(path) == before                             # still format 1, untouched


def test_a_catalog_of_a_newer_format_is_refused_and_nothing_is_written(old_catalog,
                                                                       session_of):
    path, _ = old_catalog
    db = sqlite3.connect(path)
    db.execute("INSERT INTO meta VALUES ('format', '3')")
    db.commit()
    db.close()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    (handle,) = session_of(["localdb"]).handles
    for call in (lambda: handle.list_restorable(Query(), None), handle.describe_store,
                 lambda: handle.before_backup(None, None)):
        with pytest.raises(ProviderError, match="has format 3, written by a newer ovirt-backup; "
                                                "this one reads format 2 and older"):
            call()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest


def test_queries_never_walk_every_generation(old_catalog, session_of):
    """The rows of ``vms`` (one per VM per generation) are only ever looked up through an
    index, never scanned: SQLite's own plan says so. The newest of every VM walks
    ``latest`` (one row per VM)."""
    path, _ = old_catalog
    session_of(["localdb"]).handles[0].describe_store()       # upgraded
    db = sqlite3.connect(path)
    at = dt.datetime(2026, 11, 20, 8, 5, tzinfo=dt.timezone.utc)
    for query in (Query(), Query(datacenter="Lab"), Query(vms=("web01",), every=True),
                  Query(vms=("web01",)), Query(vms=("web*",)), Query(vms=("web01",), at=at)):
        sql, args = localdb._sql(query)
        plan = [r[-1] for r in db.execute("EXPLAIN QUERY PLAN " + sql, args)]
        scans = [step for step in plan if step.startswith("SCAN v") or step.startswith("SCAN c")]
        assert scans == [], (query, plan)
        if not query.vms:
            assert "SCAN l" in plan, plan
    db.close()


def test_a_run_committed_after_a_newer_one_does_not_become_the_newest(session_of):
    """A run whose start is older than one already committed (the clock was stepped back)
    adds its generation, but each VM's newest stays the newer run's."""
    (handle,) = session_of(["localdb"]).handles
    t = dt.datetime(2026, 11, 26, 8, 0, tzinfo=dt.timezone.utc)

    def commit(run_id, started, memory):
        eng = synth.SyntheticEngine(seed=1)
        eng.add_cluster("c", eng.add_datacenter("DC"))
        text = eng.add_vm("web01", "c", memory_mb=memory).ovf
        run = Run(id=run_id, started_at=started, system="s", engine_url="http://e")
        state = handle.before_backup(run, None)
        handle.write_ovf(run, state, VmBackup(
            vm_id="3c85b930-b9f0-420f-929e-04e213311e91", name="web01", kind="vm",
            datacenter="DC", cluster="c", ovf_hash=ovf_hash(text), blob=seal(pack(text)),
            ovf=text))
        handle.after_backup(run, state, None, BackupOutcome(ok=True, written=1, new_blobs=1))
        return ovf_hash(text)

    newer = commit("20261126T090000Z-bbbbbbbb", t + dt.timedelta(hours=1), 8192)
    older = commit("20261126T080000Z-aaaaaaaa", t, 4096)
    assert newer != older
    (item,) = handle.list_restorable(Query(), None)
    assert (item.generation, item.ovf_hash, item.generations) == (
        "20261126T090000Z-bbbbbbbb", newer, 2)
    newest = commit("20261126T100000Z-cccccccc", t + dt.timedelta(hours=2), 2048)
    (item,) = handle.list_restorable(Query(), None)
    assert (item.generation, item.ovf_hash, item.generations) == (
        "20261126T100000Z-cccccccc", newest, 3)


def test_a_long_list_of_vms_is_answered_as_a_short_one(session_of, monkeypatch):
    """More VM ids and names than SQLite binds in one statement (999 before 3.32, EL8's):
    asked in parts, the answer is the same, in the same order, with the same limit."""
    (handle,) = session_of(["localdb"]).handles
    eng = synth.SyntheticEngine(seed=3)
    eng.add_cluster("c", eng.add_datacenter("DC"))
    vms = [eng.add_vm(f"vm{n:03d}", "c") for n in range(12)]
    t = dt.datetime(2026, 11, 26, 8, 0, tzinfo=dt.timezone.utc)
    for g in range(3):
        run = Run(id=f"20261126T0{g}0000Z-0000000{g}", started_at=t + dt.timedelta(hours=g),
                  system="s", engine_url="http://e")
        state = handle.before_backup(run, None)
        for vm in vms[g:]:                          # each generation holds fewer VMs
            handle.write_ovf(run, state, VmBackup(
                vm_id=vm.id, name=vm.name, kind="vm", datacenter="DC", cluster="c",
                ovf_hash=ovf_hash(vm.ovf), blob=seal(pack(vm.ovf)), ovf=vm.ovf))
        handle.after_backup(run, state, None, BackupOutcome(ok=True, written=12 - g))
    wanted = tuple([vm.id for vm in vms[::2]] + [vm.name for vm in vms[1::2]] + ["vm01*"])
    queries = [Query(vms=wanted), Query(vms=wanted, every=True),
               Query(vms=wanted, every=True, limit=5), Query(vms=wanted, at=t)]

    def answers():
        return [[(i.vm_id, i.generation) for i in handle.list_restorable(q, None)]
                for q in queries]

    whole = answers()
    monkeypatch.setattr(localdb, "MAX_SELECTORS", 2)      # 12 selectors: 6 parts
    assert answers() == whole
    assert [len(a) for a in whole] == [12, 33, 5, 12]
