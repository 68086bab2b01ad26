"""localdb: a local SQLite catalog, the embedded default provider.

Settings (``[provider:localdb]``): ``path`` (the catalog file, default
``<state_dir>/catalog.sqlite``) and ``busy_timeout`` (seconds to wait for another writer).

Tables (format 2): ``runs`` (one row per committed generation: times, scope, mode and its
reason, the event cursor), ``vms`` (which VM had which blob in which run: engine id, name,
kind, data center, cluster, hash, flags; keyed by run and engine VM id), ``blobs`` (each
distinct sealed OVF once, keyed by its content hash), ``latest`` (the newest entry of every
VM and how many generations hold it, kept at every commit and prune, so that listing the
newest of every VM reads one row per VM whatever the number of generations) and ``meta``
(``format``; ``owner``: the engine the catalog serves). Indexes on the VM id, the name and
the hash answer the other queries.

A run writes inside one transaction that ``after_backup`` commits; a crash or failure before
that leaves the previous generation as it was and no trace of the half run. The run's event
cursor is a column of its ``runs`` row, so it is committed with its generation or not at
all. ``carry_over`` (the unchanged VMs of an incremental run) is one ``INSERT ... SELECT``
over the items, joined to ``blobs`` so that only what is held is referenced. ``attach
--fresh`` sets a catalog aside as ``catalog.set-aside-<time>.sqlite`` beside it; nothing is
deleted. A catalog written by version 0.1 (format 1) is upgraded in place, in one
transaction, when it is first opened; one of a newer format is refused.

Private by default: the catalog is created 0600 before SQLite opens it (SQLite gives its
``-wal`` and ``-shm`` journal the database's mode) in a folder created 0700; an existing
catalog or folder that other users can read gets one warning per run.
"""
import dataclasses
import datetime as dt
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from ovirt_backup_plugin import check_private, hookimpl, private_dir, private_file
from ovirt_backup_plugin.errors import ProviderError
from ovirt_backup_plugin.model import (
    KEEPS_OVF,
    BlobUse,
    EngineIdentity,
    GenerationInfo,
    Option,
    ProviderDeclaration,
    PruneResult,
    Restorable,
    StoreInfo,
    StoreInventory,
    utcnow,
)

FORMAT = 2
MAX_SELECTORS = 400        # VM ids and names in one SELECT (each is bound twice)
WRITE_CACHE = -65536       # KiB of page cache for a connection that writes a run or prunes
SCHEMA = (
    "CREATE TABLE runs (id TEXT PRIMARY KEY, started_at TEXT NOT NULL, finished_at TEXT NOT NULL,"
    " system TEXT, engine_url TEXT, datacenter TEXT, vm_count INTEGER,"
    " mode TEXT NOT NULL DEFAULT 'full', note TEXT NOT NULL DEFAULT '', cursor INTEGER)",
    "CREATE TABLE blobs (hash TEXT PRIMARY KEY, ovf BLOB NOT NULL, identity TEXT NOT NULL)",
    "CREATE TABLE vms (run_id TEXT NOT NULL, vm_id TEXT NOT NULL, name TEXT NOT NULL,"
    " kind TEXT NOT NULL, datacenter TEXT, cluster TEXT, hash TEXT NOT NULL REFERENCES"
    " blobs(hash), flags TEXT NOT NULL DEFAULT '', PRIMARY KEY (run_id, vm_id))",
    "CREATE INDEX vms_by_name ON vms(name)",
    "CREATE INDEX vms_by_hash ON vms(hash)",
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)
#: What turns a format-1 catalog (0.1) into format 2, besides the new tables below.
UPGRADE_1 = (
    "ALTER TABLE runs ADD COLUMN mode TEXT NOT NULL DEFAULT 'full'",
    "ALTER TABLE runs ADD COLUMN note TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE runs ADD COLUMN cursor INTEGER",
    "ALTER TABLE vms ADD COLUMN flags TEXT NOT NULL DEFAULT ''",
)
FORMAT_2 = (
    "CREATE INDEX vms_by_vm ON vms(vm_id, run_id)",
    "CREATE TABLE latest (vm_id TEXT PRIMARY KEY, run_id TEXT NOT NULL,"
    " generations INTEGER NOT NULL)",
    "INSERT INTO latest SELECT v.vm_id, (SELECT n.run_id FROM vms n JOIN runs r ON r.id = "
    "n.run_id WHERE n.vm_id = v.vm_id ORDER BY r.started_at DESC LIMIT 1), count(*) "
    "FROM vms v GROUP BY v.vm_id",
)
#: The newest run of ``latest.vm_id`` (by time: two runs may start in the same second).
_NEWEST_RUN = ("(SELECT n.run_id FROM vms n JOIN runs r ON r.id = n.run_id "
               "WHERE n.vm_id = latest.vm_id ORDER BY r.started_at DESC LIMIT 1)")
_COLUMNS = ("v.vm_id, v.name, v.kind, v.datacenter, v.cluster, v.hash, v.flags, v.run_id, "
            "r.started_at")


@hookimpl
def declare_provider():
    return ProviderDeclaration(
        keeps=KEEPS_OVF, description="a SQLite catalog on this host (the embedded default)",
        options=(Option("path", "path", help="the catalog file (default "
                        "<state_dir>/catalog.sqlite)"),
                 Option("busy_timeout", "float", 5.0,
                        help="seconds to wait for another writer of the catalog")))


def catalog_path(settings) -> Path:
    return Path(settings.get("path") or Path(settings.state_dir) / "catalog.sqlite")


def connect(settings) -> sqlite3.Connection:
    """The catalog, created (format 2) or upgraded (from 0.1) if need be."""
    path = catalog_path(settings)
    try:
        private_dir(path.parent)
        if path.exists():
            check_private(path)
        else:       # 0600 before SQLite opens it: its -wal and -shm files take its mode
            private_file(path, "ab").close()
        db = sqlite3.connect(path, timeout=float(settings.get("busy_timeout", 5.0)),
                             isolation_level=None)
        _migrate(db, path)                # first: a newer catalog is refused untouched
        db.execute("PRAGMA journal_mode=WAL")
        return db
    except (OSError, sqlite3.Error) as e:
        raise ProviderError(f"cannot open the catalog {path}: {e}", transient=_busy(e)) from e


def _format(db: sqlite3.Connection) -> int:
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "runs" not in tables:
        return 0
    row = db.execute("SELECT value FROM meta WHERE key = 'format'").fetchone() \
        if "meta" in tables else None
    return int(row[0]) if row else 1


def _migrate(db: sqlite3.Connection, path: Path) -> None:
    found = _format(db)
    if found == FORMAT:
        return
    if found > FORMAT:
        db.close()
        raise ProviderError(f"the catalog {path} has format {found}, written by a newer "
                            f"ovirt-backup; this one reads format {FORMAT} and older. Nothing "
                            "was written; upgrade ovirt-backup-plugin")
    db.execute("BEGIN IMMEDIATE")
    try:
        found = _format(db)                          # another process may have done it
        if found == 0:
            for statement in SCHEMA + FORMAT_2:
                db.execute(statement)
        elif found == 1:
            db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            for statement in UPGRADE_1 + FORMAT_2:
                db.execute(statement)
        if found < FORMAT:
            db.execute("INSERT OR REPLACE INTO meta VALUES ('format', ?)", (str(FORMAT),))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def _busy(e) -> bool:
    return isinstance(e, sqlite3.OperationalError) and "locked" in str(e)


def _failed(settings, what, e) -> ProviderError:
    return ProviderError(f"cannot {what} the catalog {catalog_path(settings)}: {e}",
                         transient=_busy(e))


@dataclass
class _Run:
    db: sqlite3.Connection
    recorded: bool = False        # the runs row and ``latest`` are written (commit pending)


@hookimpl
def before_backup(settings):
    db = connect(settings)
    try:
        # a run writes every VM's row into four B-trees spread over the whole catalog: with
        # SQLite's 2 MB default page cache, pages are read and spilled again (64 MB, filled
        # only as pages are touched: carrying 10,000 VMs over takes ~40 ms less)
        db.execute(f"PRAGMA cache_size = {WRITE_CACHE}")
        db.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as e:
        db.close()
        raise ProviderError(f"catalog {catalog_path(settings)} is busy: {e}",
                            transient=True) from e
    return _Run(db)


@hookimpl
def write_ovf(run, state, vm, settings):
    try:
        new = state.db.execute("INSERT OR IGNORE INTO blobs VALUES (?, ?, '')",
                               (vm.ovf_hash, vm.blob)).rowcount == 1
        state.db.execute("INSERT OR REPLACE INTO vms VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (
            run.id, vm.vm_id, vm.name, vm.kind, vm.datacenter, vm.cluster, vm.ovf_hash,
            ",".join(vm.flags)))
    except sqlite3.Error as e:
        raise _failed(settings, "write to", e) from e
    return new


@hookimpl
def carry_over(run, state, items, settings):
    """The unchanged VMs: the items into a temporary table, then one ``INSERT ... SELECT``
    joined to ``blobs``, so that a row is recorded only when its blob is here and what was
    lost is told, not referenced (10,000 VMs: about 0.1 s, the indexes' upkeep)."""
    db = state.db
    try:
        db.execute("CREATE TEMP TABLE IF NOT EXISTS carry (vm_id TEXT, name TEXT, kind TEXT,"
                   " datacenter TEXT, cluster TEXT, hash TEXT, flags TEXT)")
        db.execute("DELETE FROM carry")
        db.executemany("INSERT INTO carry VALUES (?, ?, ?, ?, ?, ?, ?)", [
            (i.vm_id, i.name, i.kind, i.datacenter, i.cluster, i.ovf_hash, ",".join(i.flags))
            for i in items])
        carried = db.execute(
            "INSERT OR REPLACE INTO vms SELECT ?, c.vm_id, c.name, c.kind, c.datacenter, "
            "c.cluster, c.hash, c.flags FROM carry c JOIN blobs b ON b.hash = c.hash "
            "ORDER BY c.vm_id",                 # in index order: fewer pages touched
            (run.id,)).rowcount
        lost = [] if carried == len(items) else [r[0] for r in db.execute(
            "SELECT vm_id FROM carry c WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE "
            "b.hash = c.hash)")]
        db.execute("DELETE FROM carry")
    except sqlite3.Error as e:
        raise _failed(settings, "write to", e) from e
    return lost


@hookimpl
def after_backup(run, state, settings, outcome, note):
    db = state.db
    try:
        if not outcome.ok:
            if db.in_transaction:
                db.execute("ROLLBACK")
            note("run abandoned; the previous generation is unchanged")
            return
        if not state.recorded:    # a retried commit does not record the run twice
            db.execute("SAVEPOINT record")
            rows = db.execute("SELECT count(*) FROM vms WHERE run_id = ?", (run.id,)).fetchone()[0]
            started = run.started_at.isoformat()
            newest = db.execute("SELECT max(started_at) FROM runs").fetchone()[0]
            db.execute("INSERT INTO runs VALUES (?, ?, datetime('now'), ?, ?, ?, ?, ?, ?, ?)", (
                run.id, started, run.system, run.engine_url,
                run.datacenter, rows, run.mode, run.reason, run.cursor))
            if newest is None or newest <= started:
                # the usual case: this run is the newest, so it is each of its VMs' newest
                db.execute("INSERT INTO latest (vm_id, run_id, generations) SELECT vm_id, "
                           "run_id, 1 FROM vms WHERE run_id = ? ON CONFLICT(vm_id) DO UPDATE "
                           "SET generations = latest.generations + 1, run_id = excluded.run_id",
                           (run.id,))
            else:                 # an older run committed late: the newer one stays newest
                db.execute("INSERT INTO latest (vm_id, run_id, generations) SELECT vm_id, "
                           "run_id, 1 FROM vms WHERE run_id = ? ON CONFLICT(vm_id) DO UPDATE "
                           "SET generations = latest.generations + 1, run_id = CASE WHEN "
                           "(SELECT started_at FROM runs WHERE id = excluded.run_id) >= "
                           "(SELECT started_at FROM runs WHERE id = latest.run_id) "
                           "THEN excluded.run_id ELSE latest.run_id END", (run.id,))
            db.execute("RELEASE record")
            state.recorded = True
        db.execute("COMMIT")
        note(f"generation {run.id} committed to {catalog_path(settings)}")
    except sqlite3.Error as e:
        error = _failed(settings, "commit to", e)
        if not state.recorded and db.in_transaction:
            try:
                db.execute("ROLLBACK TO record")      # undo a half-recorded run
            except sqlite3.Error:
                pass
        if not error.transient and db.in_transaction:
            db.execute("ROLLBACK")
        raise error from e
    finally:
        if not db.in_transaction:
            db.close()


# -- reading ---------------------------------------------------------------------------
def _glob(pattern: str) -> str:
    """fnmatch's ``[!...]`` is SQLite GLOB's ``[^...]``."""
    return pattern.replace("[!", "[^")


def _selectors(query, args: list) -> str:
    parts = []
    plain = query.ids_and_names
    if plain:
        marks = ", ".join("?" * len(plain))
        parts += [f"v.vm_id IN ({marks})", f"v.name IN ({marks})"]
        args += list(plain) * 2
    for pattern in query.globs:
        parts.append("v.name GLOB ?")
        args.append(_glob(pattern))
    return "(" + " OR ".join(parts) + ")"


def _filters(query, args: list) -> list:
    where = []
    if query.datacenter is not None:
        where.append("v.datacenter = ?")
        args.append(query.datacenter)
    if query.cluster is not None:
        where.append("v.cluster = ?")
        args.append(query.cluster)
    return where


def _sql(query):
    """The SQL and arguments that answer ``query`` (see Query for the rules)."""
    args: list = []
    order = " ORDER BY r.started_at DESC, v.name, v.vm_id"
    if not query.every and query.at is None and query.generation is None:
        # the newest of each VM: one row per VM in ``latest``
        where = ([_selectors(query, args)] if query.vms else []) + _filters(query, args)
        # without selectors, walk ``latest`` (one row per VM) and look each entry up: CROSS
        # JOIN keeps SQLite from scanning every generation's rows instead
        join = "JOIN" if query.vms else "CROSS JOIN"
        sql = (f"SELECT {_COLUMNS}, l.generations FROM latest l {join} vms v ON "
               "v.run_id = l.run_id AND v.vm_id = l.vm_id JOIN runs r ON r.id = l.run_id")
        return sql + (" WHERE " + " AND ".join(where) if where else "") + order, args
    if not query.every and query.at is None and not query.vms:
        # one generation: each VM's row in it, counted from ``latest``
        where = ["v.run_id = ?"] + _filters(query, args)
        sql = (f"SELECT {_COLUMNS}, l.generations FROM vms v JOIN runs r ON r.id = v.run_id "
               "LEFT JOIN latest l ON l.vm_id = v.vm_id")
        # in one generation the order matters only to a limit (the host sorts what it
        # lists; an incremental run's base, 10,000 rows, is asked unsorted: 7 ms less)
        order = order if query.limit is not None else ""
        return sql + " WHERE " + " AND ".join(where) + order, [query.generation] + args
    time_args: list = []
    time_where = []
    if query.at is not None:
        time_where.append("r.started_at <= ?")
        time_args.append(query.at.astimezone(dt.timezone.utc).isoformat())
    if query.generation is not None:
        time_where.append("v.run_id = ?")
        time_args.append(query.generation)
    if query.every:
        where = ([_selectors(query, args)] if query.vms else []) + _filters(query, args)
        where += time_where
        args += time_args
        sql = f"SELECT {_COLUMNS}, NULL FROM vms v JOIN runs r ON r.id = v.run_id"
        return sql + (" WHERE " + " AND ".join(where) if where else "") + order, args
    # the newest of each VM at a time or in a generation, kept if it matches
    inner_where = list(time_where)
    inner_args = list(time_args)
    if query.vms:                 # only VMs that ever matched (indexes on id and name)
        sel_args: list = []
        inner_where.append(f"v.vm_id IN (SELECT v.vm_id FROM vms v WHERE "
                           f"{_selectors(query, sel_args)})")
        inner_args += sel_args
    inner = (f"SELECT {_COLUMNS}, row_number() OVER (PARTITION BY v.vm_id "
             "ORDER BY r.started_at DESC) AS rank FROM vms v JOIN runs r ON r.id = v.run_id"
             + (" WHERE " + " AND ".join(inner_where) if inner_where else ""))
    outer_args: list = []
    outer = ["rank = 1"]
    if query.vms:
        outer.append(_selectors(query, outer_args).replace("v.", "t."))
    outer += [w.replace("v.", "t.") for w in _filters(query, outer_args)]
    sql = (f"SELECT t.vm_id, t.name, t.kind, t.datacenter, t.cluster, t.hash, t.flags, "
           f"t.run_id, t.started_at, (SELECT count(*) FROM vms c WHERE c.vm_id = t.vm_id) "
           f"FROM ({inner}) t WHERE {' AND '.join(outer)} "
           "ORDER BY t.started_at DESC, t.name, t.vm_id")
    return sql, inner_args + outer_args


@hookimpl
def list_restorable(query, settings):
    if not catalog_path(settings).exists():
        return []
    plain = query.ids_and_names
    if len(plain) > MAX_SELECTORS:
        # SQLite before 3.32 (EL8's) binds at most 999 values and a selector is bound twice:
        # a long list (a restore --from-file, a run's unread VMs) is asked in parts
        parts = [plain[i:i + MAX_SELECTORS] for i in range(0, len(plain), MAX_SELECTORS)]
        found: dict = {}
        for n, part in enumerate(parts):
            sub = dataclasses.replace(query, vms=part + (query.globs if n == 0 else ()),
                                      limit=None)
            for item in _restorable(sub, settings):
                found.setdefault((item.vm_id, item.generation), item)
        return query.answer(list(found.values()))
    return _restorable(query, settings)


def _restorable(query, settings):
    sql, args = _sql(query)
    if query.limit is not None:
        sql += " LIMIT ?"
        args.append(query.limit)
    db = connect(settings)
    try:
        rows = db.execute(sql, args).fetchall()
    except sqlite3.Error as e:
        raise _failed(settings, "read", e) from e
    finally:
        db.close()
    when: dict = {}               # one datetime per generation, one tuple per flags text
    flags: dict = {"": (), None: ()}
    return [Restorable(provider=settings.name, vm_id=r[0], name=r[1], kind=r[2],
                       datacenter=r[3] or "", cluster=r[4] or "", ovf_hash=r[5],
                       flags=flags[r[6]] if r[6] in flags else flags.setdefault(
                           r[6], tuple(f for f in r[6].split(",") if f)), generation=r[7],
                       taken_at=when.get(r[8]) or when.setdefault(
                           r[8], dt.datetime.fromisoformat(r[8])),
                       generations=r[9], location=r[5])
            for r in rows]


@hookimpl
def read_ovf(item, settings):
    db = connect(settings)
    try:
        row = db.execute("SELECT ovf FROM blobs WHERE hash = ?", (item.ovf_hash,)).fetchone()
    except sqlite3.Error as e:
        raise _failed(settings, "read", e) from e
    finally:
        db.close()
    if row is None:
        raise ProviderError(f"the catalog {catalog_path(settings)} has no OVF "
                            f"{item.ovf_hash[:12]} for VM {item.name}")
    return bytes(row[0])


@hookimpl
def list_generations(settings):
    if not catalog_path(settings).exists():
        return []
    db = connect(settings)
    try:
        rows = db.execute("SELECT id, started_at, vm_count, mode, note, cursor, datacenter "
                          "FROM runs ORDER BY started_at DESC, id DESC").fetchall()
    except sqlite3.Error as e:
        raise _failed(settings, "read", e) from e
    finally:
        db.close()
    return [GenerationInfo(id=r[0], taken_at=dt.datetime.fromisoformat(r[1]), vms=r[2] or 0,
                           mode=r[3], reason=r[4], cursor=r[5], datacenter=r[6]) for r in rows]


# -- the store -------------------------------------------------------------------------
@hookimpl
def describe_store(settings):
    path = catalog_path(settings)
    aside = tuple(sorted(str(p) for p in path.parent.glob("catalog.set-aside-*.sqlite")))
    if not path.exists():
        return StoreInfo(location=str(path), set_aside=aside)
    db = connect(settings)
    try:
        owner = db.execute("SELECT value FROM meta WHERE key = 'owner'").fetchone()
        count, last = db.execute("SELECT count(*), max(started_at) FROM runs").fetchone()
    finally:
        db.close()
    return StoreInfo(location=str(path), generations=count, set_aside=aside, format=FORMAT,
                     owner=EngineIdentity.from_dict(json.loads(owner[0])) if owner else None,
                     last_run=dt.datetime.fromisoformat(last) if last else None)


@hookimpl
def claim_store(settings, owner, fresh, note):
    path = catalog_path(settings)
    if fresh and path.exists():
        db = connect(settings)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()
        aside = path.with_name(f"catalog.set-aside-{utcnow():%Y%m%dT%H%M%SZ}.sqlite")
        path.rename(aside)
        note(f"the previous catalog was set aside as {aside}")
    db = connect(settings)
    try:
        db.execute("INSERT OR REPLACE INTO meta VALUES ('owner', ?)", (json.dumps(owner.to_dict()),))
    finally:
        db.close()
    note(f"{path} now serves {owner.system} ({owner.url})")


@hookimpl
def forget_generations(settings, generations):
    """Delete the runs and their ``vms`` rows, then the blobs no remaining row references,
    and bring ``latest`` up to date for the VMs that lost a generation.

    One transaction: interrupted, nothing is removed. ``BEGIN IMMEDIATE`` waits (up to
    ``busy_timeout``) for a running backup, which holds the write lock for its whole run,
    so its new blobs are never seen unreferenced. A catalog set aside by ``attach --fresh``
    is another file and is not touched.
    """
    if not catalog_path(settings).exists():
        return PruneResult()
    db = connect(settings)
    try:
        db.execute(f"PRAGMA cache_size = {WRITE_CACHE}")    # as a run's (before_backup)
        db.execute("BEGIN IMMEDIATE")
        db.execute("CREATE TEMP TABLE forget (id TEXT PRIMARY KEY)")
        db.executemany("INSERT OR IGNORE INTO forget VALUES (?)", [(g,) for g in generations])
        db.execute("CREATE TEMP TABLE touched AS SELECT DISTINCT vm_id FROM vms "
                   "WHERE run_id IN (SELECT id FROM forget)")
        runs = db.execute("DELETE FROM runs WHERE id IN (SELECT id FROM forget)").rowcount
        db.execute("DELETE FROM vms WHERE run_id IN (SELECT id FROM forget)")
        db.execute("DELETE FROM latest WHERE vm_id IN (SELECT vm_id FROM touched) AND NOT "
                   "EXISTS (SELECT 1 FROM vms WHERE vms.vm_id = latest.vm_id)")
        db.execute(f"UPDATE latest SET run_id = {_NEWEST_RUN}, generations = (SELECT "
                   "count(*) FROM vms WHERE vms.vm_id = latest.vm_id) WHERE vm_id IN "
                   "(SELECT vm_id FROM touched)")
        blobs = db.execute("DELETE FROM blobs WHERE NOT EXISTS (SELECT 1 FROM vms WHERE "
                           "vms.hash = blobs.hash)").rowcount
        db.execute("COMMIT")
    except sqlite3.Error as e:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise _failed(settings, "prune", e) from e
    finally:
        db.close()
    return PruneResult(generations=runs, blobs=blobs)


@hookimpl
def inventory_store(settings):
    """The blobs and what the runs reference: one grouped pass over ``vms`` (a row per VM and
    generation) and the blob keys, in one read transaction (a consistent snapshot while a
    backup writes). A row whose run is not committed is reported."""
    if not catalog_path(settings).exists():
        return StoreInventory()
    db = connect(settings)
    try:
        db.execute("BEGIN")
        generations = db.execute("SELECT count(*) FROM runs").fetchone()[0]
        # first and last by time (two runs may start in the same second: ids sort by it)
        uses = [BlobUse(ovf_hash=r[0], vm_id=r[1], name=r[2], kind=r[3], first=r[4].split(" ", 1)[1],
                        last=r[5].split(" ", 1)[1], generations=r[6], location=r[0])
                for r in db.execute("SELECT v.hash, v.vm_id, v.name, v.kind, "
                                    "min(r.started_at || ' ' || v.run_id), "
                                    "max(r.started_at || ' ' || v.run_id), count(*) FROM vms v "
                                    "JOIN runs r ON r.id = v.run_id GROUP BY v.hash, v.vm_id")]
        stored = tuple(r[0] for r in db.execute("SELECT hash FROM blobs"))
        orphans = db.execute("SELECT count(*), count(DISTINCT run_id) FROM vms WHERE run_id "
                             "NOT IN (SELECT id FROM runs)").fetchone()
        db.execute("COMMIT")
    except sqlite3.Error as e:
        raise _failed(settings, "read", e) from e
    finally:
        db.close()
    problems: tuple = ()
    if orphans[0]:
        problems = (f"the catalog {catalog_path(settings)} has {orphans[0]} VM row(s) of "
                    f"{orphans[1]} run(s) that were never committed",)
    return StoreInventory(generations=generations, uses=tuple(uses), stored=stored,
                          problems=problems)
