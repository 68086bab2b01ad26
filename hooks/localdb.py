"""localdb: a local SQLite catalog, the embedded default provider.

Settings (``[provider:localdb]``):
    path         the catalog file (default ``<state_dir>/catalog.sqlite``)
    datacenter   only back up this data center (default: all)

Tables: ``runs`` (one row per committed generation), ``vms`` (which VM had which OVF in
which run: id, name, data center, cluster, hash), ``blobs`` (each distinct OVF once,
zlib-compressed, keyed by its content hash, with the identity parsed from it) and ``meta``
(``owner``: the engine the catalog serves). ``attach --fresh`` sets a catalog aside as
``catalog.set-aside-<time>.sqlite`` beside it; nothing is deleted. A run
writes inside one transaction that ``after_backup`` commits; a crash or failure before
that leaves the previous generation as it was and no trace of the half run.
"""
import json
import sqlite3
import zlib
from pathlib import Path

from ovirt_backup_plugin import hookimpl
from ovirt_backup_plugin.errors import ProviderError
from ovirt_backup_plugin.model import (EngineIdentity, PruneResult, Restorable,
                                       StoreInfo, VmIdentity, utcnow)
from ovirt_backup_plugin.ovf import verified

SCHEMA = """
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
_open_runs = {}   # (provider name, run id) -> [connection, rows written]


def catalog_path(settings) -> Path:
    return Path(settings.get("path") or Path(settings.state_dir) / "catalog.sqlite").expanduser()


def connect(settings) -> sqlite3.Connection:
    path = catalog_path(settings)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, timeout=float(settings.get("busy_timeout", 5)),
                             isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(SCHEMA)
        return db
    except (OSError, sqlite3.Error) as e:
        raise ProviderError(f"cannot open the catalog {path}: {e}", transient=_busy(e)) from e


def _busy(e) -> bool:
    return isinstance(e, sqlite3.OperationalError) and "locked" in str(e)


@hookimpl
def before_backup(run, settings):
    db = connect(settings)
    try:
        db.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as e:
        db.close()
        raise ProviderError(f"catalog {catalog_path(settings)} is busy: {e}", transient=True)
    _open_runs[(settings.name, run.id)] = [db, 0]


@hookimpl
def write_ovf(run, vm, settings):
    state = _open_runs[(settings.name, run.id)]
    db = state[0]
    try:
        new = db.execute("SELECT 1 FROM blobs WHERE hash = ?", (vm.ovf_hash,)).fetchone() is None
        if new:
            db.execute("INSERT INTO blobs VALUES (?, ?, ?)", (
                vm.ovf_hash, vm.ovf_zlib or zlib.compress(vm.ovf.encode("utf-8"), 1),
                json.dumps(vm.identity.to_dict(), separators=(",", ":"))))
        db.execute("INSERT OR REPLACE INTO vms VALUES (?, ?, ?, ?, ?, ?, ?)", (
            run.id, vm.identity.id, vm.identity.name, vm.identity.kind, vm.datacenter,
            vm.identity.cluster, vm.ovf_hash))
    except sqlite3.Error as e:
        raise ProviderError(f"cannot write to the catalog {catalog_path(settings)}: {e}",
                            transient=_busy(e)) from e
    state[1] += 1
    return new


@hookimpl
def after_backup(run, settings, outcome):
    db, count = _open_runs.pop((settings.name, run.id), (None, 0))
    if db is None:
        return None
    try:
        if not outcome.ok:
            db.execute("ROLLBACK")
            return "run abandoned; the previous generation is unchanged"
        db.execute("INSERT INTO runs VALUES (?, ?, datetime('now'), ?, ?, ?, ?)", (
            run.id, run.started_at.isoformat(), run.system, run.engine_url, run.datacenter, count))
        db.execute("COMMIT")
        return f"generation {run.id} committed to {catalog_path(settings)}"
    except sqlite3.Error as e:
        raise ProviderError(f"cannot commit to the catalog {catalog_path(settings)}: {e}") from e
    finally:
        db.close()


@hookimpl
def list_restorable(settings, datacenter):
    import datetime as dt

    if not catalog_path(settings).exists():
        return []
    db = connect(settings)
    try:
        sql = ("SELECT v.vm_id, v.name, v.kind, v.datacenter, v.cluster, v.hash, r.id, "
               "r.started_at, b.identity FROM vms v JOIN runs r ON r.id = v.run_id "
               "JOIN blobs b ON b.hash = v.hash")
        args, where = [], []
        for scope in (datacenter, settings.datacenter):
            if scope:
                where.append("v.datacenter = ?")
                args.append(scope)
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = db.execute(sql + " ORDER BY r.started_at DESC, v.name", args).fetchall()
    except sqlite3.Error as e:
        raise ProviderError(f"cannot read the catalog {catalog_path(settings)}: {e}") from e
    finally:
        db.close()
    identities = {}              # an unchanged VM shares one blob across generations
    for r in rows:
        if r[5] not in identities:
            identities[r[5]] = VmIdentity.from_dict(json.loads(r[8]))
    return [Restorable(provider=settings.name, vm_id=r[0], name=r[1], kind=r[2],
                       datacenter=r[3] or "", cluster=r[4] or "", ovf_hash=r[5],
                       generation=r[6], taken_at=dt.datetime.fromisoformat(r[7]),
                       location=r[5], identity=identities[r[5]])
            for r in rows]


@hookimpl
def read_ovf(item, settings):
    if item.provider != settings.name:
        return None
    db = connect(settings)
    try:
        row = db.execute("SELECT ovf FROM blobs WHERE hash = ?", (item.ovf_hash,)).fetchone()
    finally:
        db.close()
    if row is None:
        raise ProviderError(f"the catalog has no OVF {item.ovf_hash[:12]} for VM {item.name}")
    try:
        text = zlib.decompress(row[0]).decode("utf-8")
    except (zlib.error, UnicodeDecodeError) as e:
        raise ProviderError(f"stored OVF of VM {item.name} is corrupted: {e}") from e
    return verified(text, item, f"the catalog {catalog_path(settings)}")


@hookimpl
def restore_vm(request, engine, settings):
    if request.item.provider == settings.name:
        return engine.restore_from_ovf(request, read_ovf(request.item, settings),
                                       provider=settings.name)


@hookimpl
def describe_store(settings):
    path = catalog_path(settings)
    aside = tuple(sorted(str(p) for p in path.parent.glob("catalog.set-aside-*.sqlite")))
    if not path.exists():
        return StoreInfo(location=str(path), set_aside=aside)
    import datetime as dt

    db = connect(settings)
    try:
        owner = db.execute("SELECT value FROM meta WHERE key = 'owner'").fetchone()
        count, last = db.execute("SELECT count(*), max(started_at) FROM runs").fetchone()
    finally:
        db.close()
    return StoreInfo(location=str(path), generations=count, set_aside=aside,
                     owner=EngineIdentity.from_dict(json.loads(owner[0])) if owner else None,
                     last_run=dt.datetime.fromisoformat(last) if last else None)


@hookimpl
def claim_store(settings, owner, fresh):
    path = catalog_path(settings)
    message = []
    if fresh and path.exists():
        db = connect(settings)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()
        aside = path.with_name(f"catalog.set-aside-{utcnow():%Y%m%dT%H%M%SZ}.sqlite")
        path.rename(aside)
        message.append(f"the previous catalog was set aside as {aside}")
    db = connect(settings)
    try:
        db.execute("INSERT OR REPLACE INTO meta VALUES ('owner', ?)", (json.dumps(owner.to_dict()),))
    finally:
        db.close()
    return message + [f"{path} now serves {owner.system} ({owner.url})"]


@hookimpl
def forget_generations(settings, generations):
    """Delete the runs and their ``vms`` rows, then the blobs no remaining row references.

    One transaction: interrupted, nothing is removed. ``BEGIN IMMEDIATE`` waits (up to
    ``busy_timeout``) for a running backup, which holds the write lock for its whole run,
    so its new blobs are never seen unreferenced. A catalog set aside by ``attach --fresh``
    is another file and is not touched.
    """
    if not catalog_path(settings).exists():
        return PruneResult()
    db = connect(settings)
    try:
        db.execute("BEGIN IMMEDIATE")
        db.execute("CREATE TEMP TABLE forget (id TEXT PRIMARY KEY)")
        db.executemany("INSERT OR IGNORE INTO forget VALUES (?)", [(g,) for g in generations])
        runs = db.execute("DELETE FROM runs WHERE id IN (SELECT id FROM forget)").rowcount
        db.execute("DELETE FROM vms WHERE run_id IN (SELECT id FROM forget)")
        blobs = db.execute("DELETE FROM blobs WHERE hash NOT IN (SELECT hash FROM vms)").rowcount
        db.execute("COMMIT")
    except sqlite3.Error as e:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise ProviderError(f"cannot prune the catalog {catalog_path(settings)}: {e}",
                            transient=_busy(e)) from e
    finally:
        db.close()
    return PruneResult(generations=runs, blobs=blobs)
