"""swift: OVF copies in an OpenStack Swift container (python-swiftclient).

Settings (``[provider:NAME]``): ``auth_url`` (``http://HOST:8080/auth/v1.0`` for tempauth,
Keystone's ``.../v3``), ``user``, ``key_file`` / ``key_env`` (never inline),
``auth_version`` (``1`` or ``3``, with ``project_name``, ``project_domain_name``,
``user_domain_name``, ``region_name``), ``container`` (default ``ovirt-backup-<system>``),
``storage_url`` (instead of the one auth hands out), ``cacert``, ``timeout``.

Layout of the container (format 2)::

    store.json             {"format": 2, "owner": <the engine it serves>} (see ``attach``)
    ovf/<hash>             each distinct sealed OVF once, named by its content hash;
                           uploaded with its md5 as ETag, never uploaded twice
    runs/<run id>.json     one manifest per committed run: the run (times, scope, mode,
                           cursor) and one compact entry per VM; it *is* the generation
    index/current.z        the current index (zlib of JSON): every generation, and per VM
                           its versions (name, data center, cluster, hash, flags) with the
                           ranges of generations that hold each
    set-aside/<time>/...   manifests and index set aside by ``attach --fresh``

A run becomes visible with its manifest, the one object ``after_backup`` writes when the
run succeeded (with the run's mode, reason, event cursor and scope: the cursor is committed
with its generation or not at all); the index is updated right after. ``carry_over`` adds
the unchanged VMs of an incremental run to that manifest (no request: the blobs were
listed by ``before_backup``). A listing reads the names under
``runs/`` and the index, and reads a manifest only when the index misses it (an index
update that failed, or a container written by version 0.1, whose manifests carry no
index): a bounded number of objects, however many generations there are. An abandoned run
writes no manifest; the blobs it uploaded are harmless and reused. ``prune`` deletes
manifests, then updates the index, then every ``ovf/`` object no generation (kept or set
aside) references.

The host owns retries: the client runs with ``retries=0`` and every failure becomes a
``ProviderError``, transient for connection errors, timeouts and 5xx.
"""
import datetime as dt
import hashlib
import json
import re
import zlib
from dataclasses import dataclass, field
from typing import Any

from ovirt_backup_plugin import hookimpl
from ovirt_backup_plugin.errors import ProviderError
from ovirt_backup_plugin.model import (
    KEEPS_OVF,
    EngineIdentity,
    GenerationInfo,
    Option,
    ProviderDeclaration,
    PruneResult,
    Restorable,
    StoreInfo,
    utcnow,
)

FORMAT = 2
INDEX = "index/current.z"
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*")
_TRANSIENT = {408, 422, 429, 498, 499}   # 422: the body did not match its ETag on the way


@hookimpl
def declare_provider():
    text = "str"
    return ProviderDeclaration(
        keeps=KEEPS_OVF, off_host=True, description="an OpenStack Swift container",
        options=(Option("auth_url", text, help="tempauth .../auth/v1.0 or Keystone .../v3"),
                 Option("user", text, help="account:user (tempauth) or the Keystone user"),
                 Option("key", "secret", help="the Swift key (password)"),
                 Option("auth_version", text, "1", help="1 (tempauth) or 3 (Keystone v3)"),
                 Option("project_name", text), Option("project_domain_name", text),
                 Option("user_domain_name", text), Option("region_name", text),
                 Option("container", text, help="default ovirt-backup-<system>"),
                 Option("storage_url", text, help="use this storage URL, not auth's"),
                 Option("cacert", "path", help="CA bundle for https"),
                 Option("timeout", "float", 30.0, help="seconds per request")))


# --------------------------------------------------------------------------------------
# The index
# --------------------------------------------------------------------------------------
#: A manifest entry and an index version: (vm id, name, kind, data center, cluster, hash,
#: flags); a version adds its ranges of generation numbers: [[first, last], ...].
_ID, _NAME, _KIND, _DC, _CLUSTER, _HASH, _FLAGS = range(7)


@dataclass
class _Index:
    """Every generation (oldest first) and, per VM, its versions and where they hold."""

    runs: list = field(default_factory=list)     # [run id, started_at, vm count, mode,
                                                 #  reason, cursor, datacenter]; entries
                                                 #  written before 0.3 lack the datacenter
    vms: dict = field(default_factory=dict)      # vm id -> [[name, kind, dc, cluster, hash,
                                                 #  flags, [[first, last], ...]], ...]

    def to_bytes(self) -> bytes:
        return zlib.compress(json.dumps({"format": FORMAT, "runs": self.runs, "vms": self.vms},
                                        separators=(",", ":")).encode("utf-8"), 6)

    @classmethod
    def from_bytes(cls, data: bytes) -> "_Index":
        doc = json.loads(zlib.decompress(data))
        if doc.get("format", 0) > FORMAT:
            raise ValueError(f"index format {doc.get('format')} is newer than {FORMAT}")
        return cls(runs=doc["runs"], vms=doc["vms"])

    def add(self, run: list, entries: list) -> None:
        number = len(self.runs)
        self.runs.append(run)
        for entry in entries:
            key = list(entry[_NAME:])
            versions = self.vms.setdefault(entry[_ID], [])
            last = versions[-1] if versions else None
            if last is not None and last[:6] == key:
                ranges = last[6]
                if ranges[-1][1] == number - 1:
                    ranges[-1][1] = number
                else:
                    ranges.append([number, number])
            else:
                versions.append(key + [[[number, number]]])

    def remove(self, run_ids: set) -> None:
        keep = [n for n, r in enumerate(self.runs) if r[0] not in run_ids]
        renumber = {old: new for new, old in enumerate(keep)}
        self.runs = [self.runs[n] for n in keep]
        for vm_id in list(self.vms):
            versions = []
            for version in self.vms[vm_id]:
                numbers = [renumber[n] for a, b in version[6] for n in range(a, b + 1)
                           if n in renumber]
                if numbers:
                    versions.append(version[:6] + [_ranges(numbers)])
            if versions:
                self.vms[vm_id] = versions
            else:
                del self.vms[vm_id]

    def hashes(self) -> set:
        return {v[4] for versions in self.vms.values() for v in versions}


def _ranges(numbers: list) -> list:
    out: list = []
    for n in numbers:
        if out and out[-1][1] == n - 1:
            out[-1][1] = n
        else:
            out.append([n, n])
    return out


def _manifest_entries(manifest: dict) -> list:
    """The entries of a manifest, format 2 (lists) or 1 (0.1: dicts with identities)."""
    if manifest.get("format", 1) >= 2:
        return manifest["vms"]
    return [[vm["id"], vm["name"], vm.get("kind", "vm"), vm.get("datacenter", ""),
             vm.get("cluster", ""), vm["ovf_hash"], ""] for vm in manifest["vms"]]


def _manifest_run(manifest: dict) -> list:
    return [manifest["run"], manifest["started_at"], len(manifest["vms"]),
            manifest.get("mode", "full"), manifest.get("reason", ""), manifest.get("cursor"),
            manifest.get("datacenter")]


# --------------------------------------------------------------------------------------
# The container
# --------------------------------------------------------------------------------------
@dataclass
class _Store:
    """One open container: its connection and name."""

    conn: Any
    container: str

    def call(self, what, method, *args, missing=..., **kwargs):
        return call(self.conn, self.container, what, method, *args, missing=missing, **kwargs)

    def put(self, name, data: bytes, content_type: str, what: str) -> None:
        put(self.conn, self.container, name, data, content_type, what)

    def names(self, prefix: str, *, missing=...) -> list:
        listing = self.call(f"listing {prefix}", "get_container", self.container, prefix=prefix,
                            full_listing=True, missing=missing)
        return [o["name"] for o in listing[1]] if listing else []

    def manifest(self, name):
        """A manifest's JSON, or None when it is gone (a prune deleted it meanwhile)."""
        found = self.call(f"reading {name}", "get_object", self.container, name, missing=None)
        try:
            return None if found is None else json.loads(found[1])
        except ValueError as e:
            raise ProviderError(f"manifest {name} in container {self.container} is unreadable: "
                                f"{type(e).__name__}: {e}") from None

    def check_format(self) -> int:
        """The container's format (0: nothing stored yet); refuses a newer one."""
        found = self.call("reading store.json", "get_object", self.container, "store.json",
                          missing=None)
        if found is None:
            return 0
        try:
            doc = json.loads(found[1])
        except ValueError as e:
            raise ProviderError(f"store.json in container {self.container} is unreadable: "
                                f"{e}") from None
        fmt = int(doc.get("format", 1)) if isinstance(doc, dict) else 1
        if fmt > FORMAT:
            raise ProviderError(f"container {self.container} has format {fmt}, written by a "
                                f"newer ovirt-backup; this one reads format {FORMAT} and older. "
                                "Nothing was written; upgrade ovirt-backup-plugin")
        return fmt

    def owner(self):
        found = self.call("reading store.json", "get_object", self.container, "store.json",
                          missing=None)
        if found is None:
            return None
        doc = json.loads(found[1])
        owner = doc.get("owner") if "format" in doc else doc     # 0.1: the owner itself
        return EngineIdentity.from_dict(owner) if owner else None

    def index(self, prefix: str = "") -> "tuple[_Index, bool]":
        """The index as the committed manifests say it is, and whether the stored index
        already said so (False: it missed manifests or named pruned ones)."""
        committed = sorted(n[len(prefix) + 5:-5] for n in self.names(prefix + "runs/")
                           if n.endswith(".json"))
        found = self.call("reading the index", "get_object", self.container, prefix + INDEX,
                          missing=None)
        index = _Index()
        if found is not None:
            try:
                index = _Index.from_bytes(found[1])
            except (ValueError, KeyError, zlib.error) as e:
                raise ProviderError(f"the index {prefix + INDEX} of container "
                                    f"{self.container} is unreadable: {e}") from None
        known = {r[0] for r in index.runs}
        stale = known - set(committed)
        if stale:
            index.remove(stale)
        missing = [r for r in committed if r not in known]
        for run_id in missing:
            manifest = self.manifest(f"{prefix}runs/{run_id}.json")
            if manifest is not None:
                try:
                    index.add(_manifest_run(manifest), _manifest_entries(manifest))
                except (KeyError, TypeError, IndexError) as e:
                    raise ProviderError(f"manifest runs/{run_id}.json in container "
                                        f"{self.container} is unreadable: {e}") from None
        if missing and index.runs != sorted(index.runs, key=lambda r: (r[1], r[0])):
            index = _reordered(index)
        return index, not (stale or missing)

    def save_index(self, index: _Index, prefix: str = "") -> None:
        self.put(prefix + INDEX, index.to_bytes(), "application/octet-stream",
                 "writing the index")

    def close(self) -> None:
        self.conn.close()


def _reordered(index: _Index) -> _Index:
    """The same index with its generations sorted by time (manifests folded in late)."""
    order = sorted(range(len(index.runs)), key=lambda n: (index.runs[n][1], index.runs[n][0]))
    entries_by_run: dict = {n: [] for n in range(len(index.runs))}
    for vm_id, versions in index.vms.items():
        for v in versions:
            for a, b in v[6]:
                for n in range(a, b + 1):
                    entries_by_run[n].append([vm_id] + v[:6])
    out = _Index()
    for n in order:
        out.add(index.runs[n], entries_by_run[n])
    return out


def _open(settings) -> _Store:
    return _Store(connect(settings), container_name(settings))


# --------------------------------------------------------------------------------------
# Backup
# --------------------------------------------------------------------------------------
@dataclass
class _Run:
    """One run in progress: the container, the blobs in it, the index, the VMs written."""

    store: _Store
    known: set
    index: _Index
    fmt: int
    entries: dict = field(default_factory=dict)   # vm id -> manifest entry, in write order
    committed: bool = False


@hookimpl
def before_backup(run, settings, note):
    _safe(run.id, "run id")
    store = _open(settings)
    try:
        fmt = store.check_format()
        listing = store.call("listing ovf/", "get_container", store.container, prefix="ovf/",
                             full_listing=True, missing=None)
        if listing is None:
            store.call("creating the container", "put_container", store.container)
        index, _ = store.index()
    except ProviderError:
        store.close()
        raise
    known = {o["name"] for o in listing[1]} if listing else set()
    note(f"container {store.container}: {len(known)} stored OVF(s)")
    return _Run(store, known, index, fmt)


@hookimpl
def write_ovf(vm, state):
    name = "ovf/" + _safe(vm.ovf_hash, "ovf_hash")
    new = name not in state.known
    if new:
        state.store.put(name, vm.blob, "application/octet-stream",
                        f"uploading the OVF of VM {vm.name}")
        state.known.add(name)
    state.entries[vm.vm_id] = [vm.vm_id, vm.name, vm.kind, vm.datacenter, vm.cluster,
                               vm.ovf_hash, ",".join(vm.flags)]
    return new


@hookimpl
def carry_over(state, items):
    """The unchanged VMs join the manifest ``after_backup`` writes; a VM whose blob is not
    in the container (listed by ``before_backup``) is handed back to be read again."""
    lost = []
    for item in items:
        if "ovf/" + _safe(item.ovf_hash, "ovf_hash") not in state.known:
            lost.append(item.vm_id)
            continue
        state.entries[item.vm_id] = [item.vm_id, item.name, item.kind, item.datacenter,
                                     item.cluster, item.ovf_hash, ",".join(item.flags)]
    return lost


@hookimpl
def after_backup(run, state, outcome, note):
    store = state.store
    if not outcome.ok:
        store.close()
        note(f"run abandoned: no manifest written to container {store.container}")
        return
    name = f"runs/{run.id}.json"
    if not state.committed:
        manifest = {"format": FORMAT, "run": run.id, "started_at": run.started_at.isoformat(),
                    "committed_at": utcnow().isoformat(), "system": run.system,
                    "engine_url": run.engine_url, "datacenter": run.datacenter,
                    "mode": run.mode, "reason": run.reason, "cursor": run.cursor,
                    "vms": list(state.entries.values())}
        try:
            store.put(name, json.dumps(manifest, separators=(",", ":")).encode("utf-8"),
                      "application/json", f"committing run {run.id}")
        except ProviderError as e:
            if not e.transient:   # a transient failure keeps the run open for the host's retry
                store.close()
            raise
        state.committed = True
    try:
        state.index.add([run.id, run.started_at.isoformat(), len(state.entries), run.mode,
                         run.reason, run.cursor, run.datacenter], list(state.entries.values()))
        store.save_index(state.index)
        if state.fmt < FORMAT:        # a new container, or one written by 0.1: record it
            owner = store.owner()
            store.put("store.json", json.dumps({"format": FORMAT, "owner": owner.to_dict()
                                                if owner else None}).encode("utf-8"),
                      "application/json", "recording the format")
        note(f"run {run.id} committed: {len(state.entries)} VM(s) in container "
             f"{store.container} ({name})")
    except ProviderError as e:
        note(f"run {run.id} committed ({name}), but the index was not updated ({e}); the "
             "next listing reads the manifest, the next run repairs the index")
    finally:
        store.close()


# --------------------------------------------------------------------------------------
# Listing and reading
# --------------------------------------------------------------------------------------
@hookimpl
def list_restorable(query, settings):
    store = _open(settings)
    try:
        if store.check_format() == 0 and not store.names("runs/", missing=None):
            return []
        index, _ = store.index()
    finally:
        store.close()
    return _answer(index, query, settings.name)


def _answer(index: _Index, query, provider: str) -> list:
    runs = index.runs
    if not runs:
        return []
    times = [dt.datetime.fromisoformat(r[1]) for r in runs]
    allowed = set(range(len(runs)))
    if query.at is not None:
        allowed = {n for n in allowed if times[n] <= query.at}
    if query.generation is not None:
        allowed = {n for n in allowed if runs[n][0] == query.generation}
    if not allowed:
        return []
    bounded = len(allowed) < len(runs)
    items = []
    candidates = list(index.vms.items())
    plain = set(query.ids_and_names)
    if query.vms and not query.globs and not plain - set(index.vms):   # only VM ids
        candidates = [(i, index.vms[i]) for i in plain if i in index.vms]

    def item(vm_id, version, n, total):
        return Restorable(provider=provider, vm_id=vm_id, name=version[0], kind=version[1],
                          datacenter=version[2], cluster=version[3], ovf_hash=version[4],
                          flags=tuple(f for f in version[5].split(",") if f),
                          generation=runs[n][0], taken_at=times[n], generations=total,
                          location="ovf/" + version[4])

    for vm_id, versions in candidates:
        total = sum(b - a + 1 for v in versions for a, b in v[6])
        if query.every:
            for version in versions:
                if not query.selects(vm_id, version[0]):
                    continue
                for a, b in version[6]:
                    for n in range(a, b + 1):
                        if n in allowed:
                            items.append(item(vm_id, version, n, total))
            continue
        best = None
        for version in versions:
            for a, b in version[6]:
                top = b
                if bounded:
                    top = max((n for n in range(a, b + 1) if n in allowed), default=-1)
                if top >= 0 and (best is None or top > best[1]):
                    best = (version, top)
        if best is not None and query.selects(vm_id, best[0][0]):
            items.append(item(vm_id, best[0], best[1], total))
    return query.answer(items)


@hookimpl
def read_ovf(item, settings):
    store = _open(settings)
    try:
        name = "ovf/" + _safe(item.ovf_hash, "ovf_hash")
        _, body = store.call(f"reading the OVF of VM {item.name} ({name})", "get_object",
                             store.container, name)
    finally:
        store.close()
    return body


@hookimpl
def list_generations(settings):
    store = _open(settings)
    try:
        if store.check_format() == 0 and not store.names("runs/", missing=None):
            return []                       # nothing stored yet (maybe no container)
        index, _ = store.index()
    finally:
        store.close()
    return [GenerationInfo(id=r[0], taken_at=dt.datetime.fromisoformat(r[1]), vms=r[2],
                           mode=r[3], reason=r[4], cursor=r[5],
                           datacenter=r[6] if len(r) > 6 else None)
            for r in reversed(index.runs)]


@hookimpl
def forget_generations(settings, generations):
    """Delete the manifests of ``generations``, update the index, then delete every
    ``ovf/`` object that no generation references, kept or set aside (every ``*.json``
    outside ``runs/`` and ``ovf/`` counts as a manifest, so a history set aside or copied
    under another prefix keeps its blobs).

    The order makes an interruption safe: a manifest *is* its generation (one object: the
    generation goes as a whole), and a blob is deleted only once no remaining manifest and
    no set-aside history references it. A failure part-way never leaves a generation whose
    OVF is gone, only unreferenced blobs, which the next prune deletes (every unreferenced
    object is collected, whoever left it). The host holds the system's backup lock, so no
    backup of this host uploads meanwhile.
    """
    store = _open(settings)
    gone = blobs = 0
    try:
        store.check_format()
        existing = set(store.names("runs/"))
        for run_id in generations:
            name = f"runs/{_safe(run_id, 'run id')}.json"
            if name in existing and store.call(f"deleting {name}", "delete_object",
                                               store.container, name, missing=False) is not False:
                gone += 1
        index, _ = store.index()
        store.save_index(index)
        referenced = {"ovf/" + h for h in index.hashes()}
        everything = store.names("")
        for name in everything:          # histories set aside (or copied) elsewhere
            if name.endswith(".json") and not name.startswith(("ovf/", "runs/")) \
                    and name != "store.json":
                referenced |= _referenced(store, name)
        for name in everything:
            if name.startswith("ovf/") and name not in referenced:
                store.call(f"deleting {name}", "delete_object", store.container, name,
                           missing=None)
                blobs += 1
    finally:
        store.close()
    return PruneResult(generations=gone, blobs=blobs)


def _referenced(store: _Store, name: str) -> set:
    """The blob names a manifest kept outside ``runs/`` references; one that cannot be read
    stops the pruning before any blob is deleted."""
    try:
        manifest = store.manifest(name) or {}
        return {"ovf/" + entry[_HASH] for entry in _manifest_entries(manifest)}
    except ProviderError as e:
        if e.transient:
            raise
        raise ProviderError(f"{e}; no stored OVF was deleted") from None
    except (AttributeError, TypeError, KeyError, IndexError) as e:
        raise ProviderError(f"manifest {name} in container {store.container} is unreadable "
                            f"({type(e).__name__}: {e}); no stored OVF was deleted") from None


def _set_aside(store: _Store) -> list:
    """The prefixes of the histories ``attach --fresh`` set aside."""
    return sorted({"/".join(n.split("/")[:2]) for n in store.names("set-aside/")})


# --------------------------------------------------------------------------------------
# The store
# --------------------------------------------------------------------------------------
@hookimpl
def describe_store(settings):
    store = _open(settings)
    try:
        fmt = store.check_format()
        owner = store.owner() if fmt else None
        runs = sorted(n[5:-5] for n in store.names("runs/", missing=None) if n.endswith(".json"))
        aside = _set_aside(store) if runs or fmt else []
    finally:
        store.close()
    last = dt.datetime.strptime(runs[-1][:16], "%Y%m%dT%H%M%SZ").replace(
        tzinfo=dt.timezone.utc) if runs else None
    return StoreInfo(location=f"swift container {store.container}", owner=owner,
                     generations=len(runs), last_run=last, set_aside=tuple(aside),
                     format=fmt or (1 if runs else 0))


@hookimpl
def claim_store(settings, owner, fresh, note):
    store = _open(settings)
    try:
        store.check_format()
        store.call("creating the container", "put_container", store.container)
        if fresh:
            aside = f"set-aside/{utcnow():%Y%m%dT%H%M%SZ}"
            names = store.names("runs/") + store.names("index/")
            for name in names:      # copy first, then delete: a manifest is never lost
                store.call(f"setting {name} aside", "copy_object", store.container, name,
                           destination=f"/{store.container}/{aside}/{name}")
                store.call(f"removing {name}", "delete_object", store.container, name)
            note(f"{sum(n.startswith('runs/') for n in names)} generation(s) set aside under "
                 f"{aside}/ in container {store.container}")
        store.put("store.json", json.dumps({"format": FORMAT, "owner": owner.to_dict()}).encode(
            "utf-8"), "application/json", "recording the owner")
    finally:
        store.close()
    note(f"container {store.container} now serves {owner.system} ({owner.url})")


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------
def container_name(settings) -> str:
    name = settings.get("container") or f"ovirt-backup-{settings.system}"
    if "/" in name:
        raise ProviderError(f"swift provider {settings.name}: container {name!r} contains '/'")
    return name


def connect(settings):
    """A swiftclient Connection from the settings (no request is made yet)."""
    me = f"swift provider {settings.name}"
    try:
        from swiftclient.client import Connection
    except ImportError:
        raise ProviderError(f"{me}: python-swiftclient is not installed "
                            "(pip install 'ovirt-backup-plugin[swift]')") from None
    auth_url, user = settings.get("auth_url"), settings.get("user")
    version = str(settings.get("auth_version", "1"))
    key = settings.secret("key")
    if not (auth_url and user and key):
        raise ProviderError(f"{me}: auth_url, user and key_file or key_env (non-empty) must be set")
    if version not in ("1", "1.0", "3"):
        raise ProviderError(f"{me}: auth_version must be 1 or 3, not {version}")
    if version == "3":
        try:
            import keystoneclient.v3  # noqa: F401  (swiftclient's Keystone support)
        except ImportError:
            raise ProviderError(f"{me}: auth_version 3 needs python-keystoneclient, which is "
                                "not installed") from None
    names = ("project_name", "project_domain_name", "user_domain_name", "region_name")
    options = {n: settings.get(n) for n in names if settings.get(n)}
    if settings.get("storage_url"):
        options["object_storage_url"] = settings.get("storage_url")
    return Connection(auth_url, user, key, retries=0, auth_version=version, os_options=options,
                      timeout=float(settings.get("timeout", 30.0)), cacert=settings.get("cacert"))


def call(conn, container, what, method, *args, missing=..., **kwargs):
    """``conn.method(*args, **kwargs)``, every failure turned into a ProviderError naming the
    container (never the key). ``missing``: returned instead of raising on 404."""
    from requests import exceptions as rex
    from swiftclient.exceptions import ClientException

    retry_after = 0.0
    try:
        return getattr(conn, method)(*args, **kwargs)
    except ClientException as e:
        status = e.http_status
        if status == 404 and missing is not ...:
            return missing
        transient = bool(status) and (status >= 500 or status in _TRANSIENT)
        headers = {k.lower(): v for k, v in (e.http_response_headers or {}).items()}
        if str(headers.get("retry-after", "")).isdigit():   # 429/503 may say how long
            retry_after = float(headers["retry-after"])
        detail = {401: f"authentication failed for user {conn.user} at {conn.authurl}: check "
                       "user and key", 403: "access denied", 404: "not found"}.get(status)
        detail = detail or (f"HTTP {status} {e.http_reason or ''}".strip() if status
                            else " ".join(str(e).split()))
    except rex.SSLError as e:
        transient, detail = False, f"TLS error: {e}"
    except (rex.ConnectionError, rex.Timeout, rex.ChunkedEncodingError, OSError) as e:
        conn.close()   # drop the broken connection: the next call opens a new one
        transient, detail = True, f"Swift unreachable ({type(e).__name__})"
    except rex.RequestException as e:
        transient, detail = False, str(e)
    message = f"swift container {container}: {what} failed: {detail}"
    raise ProviderError(message.replace(conn.key, "***") if conn.key else message,
                        transient=transient, retry_after=retry_after)


def put(conn, container, name, data: bytes, content_type: str, what: str) -> None:
    md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()   # the ETag
    etag = call(conn, container, what, "put_object", container, name, data, etag=md5,
                content_type=content_type)
    if etag != md5:
        raise ProviderError(f"swift container {container}: {what}: stored ETag {etag} is not "
                            f"the md5 {md5} of what was sent", transient=True)


def _safe(value: str, what: str) -> str:
    if not _SAFE_NAME.fullmatch(value or ""):
        raise ProviderError(f"swift: {what} {value!r} cannot be part of an object name")
    return value
