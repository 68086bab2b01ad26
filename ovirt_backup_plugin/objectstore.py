"""An index of generations for object-store providers (``swift``, ``s3``, your own).

A provider whose backend is a flat namespace of objects (a Swift container, an S3 bucket,
anything with get / put / delete / list-by-prefix) implements :class:`Bucket` -- the
primitives, and how its backend's errors become :class:`~.errors.ProviderError` -- and
hands it to :class:`Store`, which keeps the layout, the index and every algorithm of the
contract in one place. Its hooks are then a line each (see ``hooks/swift.py`` and
``hooks/s3.py``). This module is part of the public surface for provider authors, beside
:mod:`.model` and :mod:`.errors`.

Layout of a store (format 2; names are relative to the bucket's own prefix)::

    store.json             {"format": 2, "owner": <the engine it serves>} (see ``attach``)
    ovf/<hash>             each distinct sealed OVF once, named by its content hash;
                           uploaded with its md5 checked, never uploaded twice
    runs/<run id>.json     one manifest per committed run: the run (times, scope, mode,
                           cursor) and one compact entry per VM; it *is* the generation
    index/current.z        the current index (zlib of JSON): every generation, and per VM
                           its versions (name, data center, cluster, hash, flags) with the
                           ranges of generations that hold each
    set-aside/<time>/...   manifests and index set aside by ``attach --fresh``

A run becomes visible with its manifest, the one object :meth:`Store.finish` writes when
the run succeeded (with the run's mode, reason, event cursor and scope: the cursor is
committed with its generation or not at all); the index is updated right after. The
unchanged VMs of an incremental run join that manifest by reference (:meth:`Store.carry`,
no request). A listing reads the names under
``runs/`` and the index, and reads a manifest only when the index misses it (an index
update that failed, or a store written by version 0.1, whose manifests carry no index): a
bounded number of objects, however many generations there are. An abandoned run writes no
manifest; the blobs it uploaded are harmless and reused. A prune deletes manifests, then
updates the index, then every ``ovf/`` object no generation (kept or set aside)
references.

What is stored is opaque to the store: the host seals every blob (compression, and
encryption at rest when configured) before a provider sees it.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple, Union

from .errors import ProviderError
from .model import (
    BackupOutcome,
    BlobUse,
    EngineIdentity,
    GenerationInfo,
    PruneResult,
    Query,
    Restorable,
    Run,
    StoreInfo,
    StoreInventory,
    VmBackup,
    utcnow,
)

__all__ = ["FORMAT", "INDEX", "Bucket", "Index", "RunState", "Store", "safe_name"]

FORMAT = 2
INDEX = "index/current.z"
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*")

#: A manifest entry: [vm id, name, kind, data center, cluster, hash, flags]; an index
#: version is the same without the id, plus its ranges of generation numbers.
_ID, _NAME, _KIND, _DC, _CLUSTER, _HASH, _FLAGS = range(7)
Note = Callable[[str], None]


def safe_name(value: str, what: str) -> str:
    """``value`` when it can be part of an object name (a hash, a run id); else an error."""
    if not _SAFE_NAME.fullmatch(value or ""):
        raise ProviderError(f"{what} {value!r} cannot be part of an object name")
    return value


# --------------------------------------------------------------------------------------
# What a backend implements
# --------------------------------------------------------------------------------------
class Bucket:
    """The primitives of one open backend namespace (a container, a bucket + prefix).

    Every method raises :class:`ProviderError` for a failure (``transient`` when a retry
    may help), naming :attr:`where` and never a secret. ``what`` is the action, for the
    message (``"uploading the OVF of VM web01"``).
    """

    #: Where, for messages: ``"container X"``, ``"bucket X"``, ``"bucket X, prefix p/"``.
    where: str = "object store"
    #: What names this namespace across connections (endpoint, container or bucket,
    #: prefix), so that one process reads an unchanged index once; None: never cached.
    identity: Optional[Tuple[Any, ...]] = None

    def get(self, name: str, what: str) -> Optional[bytes]:
        """The object's bytes; None when it (or the whole namespace) does not exist."""
        raise NotImplementedError

    def put(self, name: str, data: bytes, content_type: str, what: str) -> None:
        """Store ``data`` under ``name``, checked on the way (md5), replacing any object."""
        raise NotImplementedError

    def delete(self, name: str, what: str) -> bool:
        """Delete the object; False when it did not exist."""
        raise NotImplementedError

    def names(self, prefix: str) -> List[str]:
        """Every object name starting with ``prefix``, sorted; [] when the namespace does
        not exist."""
        raise NotImplementedError

    def copy(self, name: str, destination: str, what: str) -> None:
        """Copy one object to another name of the same namespace."""
        raise NotImplementedError

    def exists(self) -> bool:
        """Whether the namespace (container, bucket) exists."""
        raise NotImplementedError

    def create(self) -> None:
        """Create the namespace if it does not exist (idempotent)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the connection."""


# --------------------------------------------------------------------------------------
# The index
# --------------------------------------------------------------------------------------
@dataclass
class Index:
    """Every generation (oldest first) and, per VM, its versions and where they hold.

    ``runs``: ``[run id, started_at, vm count, mode, reason, cursor, datacenter]`` each
    (entries written before 0.2 lack the data center, those of 0.1 carry none); ``vms``:
    vm id -> ``[[name, kind, dc, cluster, hash, flags, [[first, last], ...]], ...]``.
    """

    runs: List[List[Any]] = field(default_factory=list)
    vms: Dict[str, List[List[Any]]] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        return zlib.compress(json.dumps({"format": FORMAT, "runs": self.runs, "vms": self.vms},
                                        separators=(",", ":")).encode("utf-8"), 6)

    @classmethod
    def from_bytes(cls, data: bytes) -> "Index":
        doc = json.loads(zlib.decompress(data))
        if doc.get("format", 0) > FORMAT:
            raise ValueError(f"index format {doc.get('format')} is newer than {FORMAT}")
        return cls(runs=doc["runs"], vms=doc["vms"])

    def add(self, run: List[Any], entries: Sequence[List[Any]]) -> None:
        """Append one generation with its manifest entries."""
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

    def remove(self, run_ids: Set[str]) -> None:
        """Drop these generations (and renumber the others)."""
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

    def hashes(self) -> Set[str]:
        return {v[4] for versions in self.vms.values() for v in versions}

    def reordered(self) -> "Index":
        """The same index with its generations sorted by time (manifests folded in late)."""
        order = sorted(range(len(self.runs)), key=lambda n: (self.runs[n][1], self.runs[n][0]))
        entries_by_run: Dict[int, List[List[Any]]] = {n: [] for n in range(len(self.runs))}
        for vm_id, versions in self.vms.items():
            for v in versions:
                for a, b in v[6]:
                    for n in range(a, b + 1):
                        entries_by_run[n].append([vm_id] + v[:6])
        out = Index()
        for n in order:
            out.add(self.runs[n], entries_by_run[n])
        return out

    def answer(self, query: Query, provider: str) -> List[Restorable]:
        """``query`` answered from the index alone (no manifest, no blob is read)."""
        runs = self.runs
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
        items: List[Restorable] = []
        candidates = list(self.vms.items())
        plain = set(query.ids_and_names)
        if query.vms and not query.globs:
            if not plain - set(self.vms):                                  # only VM ids
                candidates = [(i, self.vms[i]) for i in plain if i in self.vms]
            else:                          # names too: the VMs that ever had one of them
                candidates = [(i, versions) for i, versions in candidates
                              if i in plain or any(v[0] in plain for v in versions)]

        def item(vm_id: str, version: List[Any], n: int, total: int) -> Restorable:
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
            best: Optional[Tuple[List[Any], int]] = None
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

    def generations(self) -> List[GenerationInfo]:
        """Every generation, newest first."""
        return [GenerationInfo(id=r[0], taken_at=dt.datetime.fromisoformat(r[1]), vms=r[2],
                               mode=r[3], reason=r[4], cursor=r[5],
                               datacenter=r[6] if len(r) > 6 else None)
                for r in reversed(self.runs)]


def _ranges(numbers: List[int]) -> List[List[int]]:
    out: List[List[int]] = []
    for n in numbers:
        if out and out[-1][1] == n - 1:
            out[-1][1] = n
        else:
            out.append([n, n])
    return out


def manifest_entries(manifest: Dict[str, Any]) -> List[List[Any]]:
    """The entries of a manifest, format 2 (lists) or 1 (0.1: dicts with identities)."""
    if manifest.get("format", 1) >= 2:
        return list(manifest["vms"])
    return [[vm["id"], vm["name"], vm.get("kind", "vm"), vm.get("datacenter", ""),
             vm.get("cluster", ""), vm["ovf_hash"], ""] for vm in manifest["vms"]]


def manifest_run(manifest: Dict[str, Any]) -> List[Any]:
    return [manifest["run"], manifest["started_at"], len(manifest["vms"]),
            manifest.get("mode", "full"), manifest.get("reason", ""), manifest.get("cursor"),
            manifest.get("datacenter")]


# --------------------------------------------------------------------------------------
# A run in progress
# --------------------------------------------------------------------------------------
@dataclass
class RunState:
    """One run in progress: the store, the blobs in it, the index, the VMs written."""

    store: "Store"
    known: Set[str]
    index: Index
    fmt: int
    entries: Dict[str, List[Any]] = field(default_factory=dict)   # vm id -> manifest entry
    committed: bool = False


# --------------------------------------------------------------------------------------
# The store: every algorithm of the contract over a Bucket
# --------------------------------------------------------------------------------------
#: (namespace identity, prefix) -> (committed run ids, the index they make): see
#: :meth:`Store.index_to_read`. One entry per store this process reads.
_read_indexes: Dict[Tuple[Any, ...], Tuple[List[str], Index]] = {}


class Store:
    """The layout above, over one open :class:`Bucket`."""

    def __init__(self, bucket: Bucket):
        self.bucket = bucket

    @property
    def where(self) -> str:
        return self.bucket.where

    def close(self) -> None:
        self.bucket.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading ------------------------------------------------------------------------
    def _json(self, name: str, label: str) -> Any:
        data = self.bucket.get(name, f"reading {name}")
        if data is None:
            return None
        try:
            return json.loads(data)
        except ValueError as e:
            raise ProviderError(f"{label} in {self.where} is unreadable: "
                                f"{type(e).__name__}: {e}") from None

    def manifest(self, name: str) -> Optional[Dict[str, Any]]:
        """A manifest's JSON, or None when it is gone (a prune deleted it meanwhile)."""
        found = self._json(name, f"manifest {name}")
        if found is not None and not isinstance(found, dict):
            raise ProviderError(f"manifest {name} in {self.where} is unreadable: not an object")
        return found

    def check_format(self) -> int:
        """The store's format (0: nothing stored yet); refuses a newer one."""
        return self._format_of(self._json("store.json", "store.json"))

    def _format_of(self, doc: Any) -> int:
        if doc is None:
            return 0
        fmt = int(doc.get("format", 1)) if isinstance(doc, dict) else 1
        if fmt > FORMAT:
            raise ProviderError(f"{self.where} has format {fmt}, written by a newer "
                                f"ovirt-backup; this one reads format {FORMAT} and older. "
                                "Nothing was written; upgrade ovirt-backup-plugin")
        return fmt

    def owner(self) -> Optional[EngineIdentity]:
        return self._owner_of(self._json("store.json", "store.json"))

    @staticmethod
    def _owner_of(doc: Any) -> Optional[EngineIdentity]:
        if not isinstance(doc, dict):
            return None
        owner = doc.get("owner") if "format" in doc else doc     # 0.1: the owner itself
        return EngineIdentity.from_dict(owner) if owner else None

    def committed(self, prefix: str = "") -> List[str]:
        """The ids of the committed runs (``runs/*.json``), sorted."""
        start = len(prefix) + len("runs/")
        return sorted(n[start:-5] for n in self.bucket.names(prefix + "runs/")
                      if n.endswith(".json"))

    def index(self, prefix: str = "") -> Tuple[Index, bool]:
        """The index as the committed manifests say it is, and whether the stored index
        already said so (False: it missed manifests or named pruned ones)."""
        return self._index_of(self.committed(prefix), prefix)

    def index_to_read(self, prefix: str = "") -> Index:
        """The index, for reading only (never change it), after the format check.

        One command asks a store several times (a VM's history: who it is, every version,
        the generations' modes), so the index this process read is used again while the
        committed runs are the same ones (the index is what their manifests say): such a
        question costs one listing. The store's format was checked when that index was
        read; an answer from it interprets nothing written since. A store whose runs
        changed is checked and read again. Writing (:meth:`begin`), pruning and
        :meth:`describe` always check the format afresh."""
        committed = self.committed(prefix)
        key = None if self.bucket.identity is None else (self.bucket.identity, prefix)
        cached = _read_indexes.get(key) if key is not None else None
        if cached is not None and cached[0] == committed:
            return cached[1]
        self.check_format()
        index, _ = self._index_of(committed, prefix)
        if key is not None:
            _read_indexes[key] = (committed, index)
        return index

    def _index_of(self, committed: List[str], prefix: str) -> Tuple[Index, bool]:
        found = self.bucket.get(prefix + INDEX, "reading the index")
        index = Index()
        if found is not None:
            try:
                index = Index.from_bytes(found)
            except (ValueError, KeyError, zlib.error) as e:
                raise ProviderError(f"the index {prefix + INDEX} of {self.where} is "
                                    f"unreadable: {e}") from None
        known = {r[0] for r in index.runs}
        stale = known - set(committed)
        if stale:
            index.remove(stale)
        missing = [r for r in committed if r not in known]
        for run_id in missing:
            manifest = self.manifest(f"{prefix}runs/{run_id}.json")
            if manifest is not None:
                try:
                    index.add(manifest_run(manifest), manifest_entries(manifest))
                except (KeyError, TypeError, IndexError) as e:
                    raise ProviderError(f"manifest runs/{run_id}.json in {self.where} is "
                                        f"unreadable: {e}") from None
        if missing and index.runs != sorted(index.runs, key=lambda r: (r[1], r[0])):
            index = index.reordered()
        return index, not (stale or missing)

    def save_index(self, index: Index, prefix: str = "") -> None:
        self.bucket.put(prefix + INDEX, index.to_bytes(), "application/octet-stream",
                        "writing the index")

    # -- backup -------------------------------------------------------------------------
    def begin(self, run: Run, note: Note) -> RunState:
        """``before_backup``: check the format, create the namespace, read the index."""
        safe_name(run.id, "run id")
        fmt = self.check_format()
        if not self.bucket.exists():
            self.bucket.create()
        known = set(self.bucket.names("ovf/"))
        index, _ = self.index()
        note(f"{self.where}: {len(known)} stored OVF(s)")
        return RunState(self, known, index, fmt)

    def write(self, state: RunState, vm: VmBackup) -> bool:
        """``write_ovf``: upload the blob once per hash; remember the VM's entry."""
        name = _blob_object(vm.ovf_hash)
        new = name not in state.known
        if new:
            self.bucket.put(name, vm.blob, "application/octet-stream",
                            f"uploading the OVF of VM {vm.name}")
            state.known.add(name)
        state.entries[vm.vm_id] = _entry(vm)
        return new

    def carry(self, state: RunState, items: Sequence[Restorable]) -> List[str]:
        """``carry_over``: the unchanged VMs join the manifest :meth:`finish` writes (no
        request: the blobs were listed by :meth:`begin`); a VM whose blob is not in the
        store is handed back, to be read again."""
        lost = []
        for item in items:
            if _blob_object(item.ovf_hash) not in state.known:
                lost.append(item.vm_id)
                continue
            state.entries[item.vm_id] = _entry(item)
        return lost

    def finish(self, run: Run, state: RunState, outcome: BackupOutcome, note: Note) -> None:
        """``after_backup``: commit the run with its manifest and update the index, or
        abandon it (write nothing). Closes the store, except when a transient failure of
        the commit leaves it open for the host's retry."""
        if not outcome.ok:
            self.close()
            note(f"run abandoned: no manifest written to {self.where}")
            return
        name = f"runs/{run.id}.json"
        if not state.committed:
            manifest = {"format": FORMAT, "run": run.id, "started_at": run.started_at.isoformat(),
                        "committed_at": utcnow().isoformat(), "system": run.system,
                        "engine_url": run.engine_url, "datacenter": run.datacenter,
                        "mode": run.mode, "reason": run.reason, "cursor": run.cursor,
                        "vms": list(state.entries.values())}
            try:
                self.bucket.put(name, json.dumps(manifest, separators=(",", ":")).encode(
                    "utf-8"), "application/json", f"committing run {run.id}")
            except ProviderError as e:
                if not e.transient:   # a transient failure keeps the run open for a retry
                    self.close()
                raise
            state.committed = True
        try:
            state.index.add([run.id, run.started_at.isoformat(), len(state.entries), run.mode,
                             run.reason, run.cursor, run.datacenter],
                            list(state.entries.values()))
            self.save_index(state.index)
            if state.fmt < FORMAT:        # a new store, or one written by 0.1: record it
                owner = self.owner()
                self.bucket.put("store.json", json.dumps(
                    {"format": FORMAT, "owner": owner.to_dict() if owner else None}).encode(
                    "utf-8"), "application/json", "recording the format")
            note(f"run {run.id} committed: {len(state.entries)} VM(s) in {self.where} "
                 f"({name})")
        except ProviderError as e:
            note(f"run {run.id} committed ({name}), but the index was not updated ({e}); the "
                 "next listing reads the manifest, the next run repairs the index")
        finally:
            self.close()

    # -- listing and reading ------------------------------------------------------------
    def restorable(self, query: Query, provider: str) -> List[Restorable]:
        """``list_restorable``: the index's answer; [] for a store never written."""
        return self.index_to_read().answer(query, provider)

    def read(self, item: Restorable) -> bytes:
        """``read_ovf``: the stored blob of ``item``."""
        name = _blob_object(item.ovf_hash)
        what = f"reading the OVF of VM {item.name} ({name})"
        data = self.bucket.get(name, what)
        if data is None:
            raise ProviderError(f"{self.where}: {what} failed: not found")
        return data

    def generations(self) -> List[GenerationInfo]:
        """``list_generations``: newest first, from the index."""
        return self.index_to_read().generations()

    def forget(self, generations: Sequence[str]) -> PruneResult:
        """``forget_generations``: delete these manifests, update the index, then every
        ``ovf/`` object that no generation references, kept or set aside (every ``*.json``
        outside ``runs/`` and ``ovf/`` counts as a manifest, so a history set aside or
        copied under another prefix keeps its blobs).

        The order makes an interruption safe: a manifest *is* its generation (one object:
        the generation goes as a whole), and a blob is deleted only once no remaining
        manifest and no set-aside history references it. A failure part-way never leaves
        a generation whose OVF is gone, only unreferenced blobs, which the next prune
        deletes (every unreferenced object is collected, whoever left it). The host holds
        the system's backup lock, so no backup of this host uploads meanwhile.
        """
        self.check_format()
        gone = blobs = 0
        existing = set(self.bucket.names("runs/"))
        for run_id in generations:
            name = f"runs/{safe_name(run_id, 'run id')}.json"
            if name in existing and self.bucket.delete(name, f"deleting {name}"):
                gone += 1
        index, _ = self.index()
        self.save_index(index)
        referenced = {"ovf/" + h for h in index.hashes()}
        everything = self.bucket.names("")
        for name in everything:          # histories set aside (or copied) elsewhere
            if name.endswith(".json") and not name.startswith(("ovf/", "runs/")) \
                    and name != "store.json":
                referenced |= self._referenced(name)
        for name in everything:
            if name.startswith("ovf/") and name not in referenced:
                self.bucket.delete(name, f"deleting {name}")
                blobs += 1
        return PruneResult(generations=gone, blobs=blobs)

    def _referenced(self, name: str) -> Set[str]:
        """The blob names a manifest kept outside ``runs/`` references; one that cannot
        be read stops the pruning before any blob is deleted."""
        try:
            manifest = self.manifest(name) or {}
            return {"ovf/" + entry[_HASH] for entry in manifest_entries(manifest)}
        except ProviderError as e:
            if e.transient:
                raise
            raise ProviderError(f"{e}; no stored OVF was deleted") from None
        except (AttributeError, TypeError, KeyError, IndexError) as e:
            raise ProviderError(f"manifest {name} in {self.where} is unreadable "
                                f"({type(e).__name__}: {e}); no stored OVF was deleted") from None

    def inventory(self) -> StoreInventory:
        """``inventory_store``: every ``ovf/`` object, and what every committed manifest
        references (the manifests *are* the generations; the index, derived from them, is
        compared with them). One listing of the bucket and one read per manifest."""
        problems: List[str] = []
        uses: Dict[Tuple[str, str], List[Any]] = {}   # (hash, vm id) -> name, kind, first,
                                                      # last, count
        self.check_format()
        everything = self.bucket.names("")
        stored = tuple(n[4:] for n in everything if n.startswith("ovf/"))
        committed = sorted(n for n in everything if n.startswith("runs/") and n.endswith(".json"))
        rebuilt: List[Tuple[List[Any], List[List[Any]]]] = []
        for name in committed:
            try:
                manifest = self.manifest(name)
                if manifest is None:
                    continue                         # pruned meanwhile
                run = (manifest["started_at"], manifest["run"])      # in time order
                entries = manifest_entries(manifest)
                rebuilt.append((manifest_run(manifest), entries))
            except ProviderError as e:
                if e.transient:
                    raise
                problems.append(str(e))
                continue
            except (KeyError, TypeError, IndexError) as e:
                problems.append(f"manifest {name} in {self.where} is unreadable "
                                f"({type(e).__name__}: {e}): its generation cannot be listed")
                continue
            for entry in entries:
                use = uses.get((entry[_HASH], entry[_ID]))
                if use is None:
                    uses[(entry[_HASH], entry[_ID])] = [entry[_NAME], entry[_KIND], run, run, 1]
                else:
                    use[0], use[2], use[3] = entry[_NAME], min(use[2], run), max(use[3], run)
                    use[4] += 1
        expected = Index()
        for run_row, entries in sorted(rebuilt, key=lambda r: (r[0][1], r[0][0])):
            expected.add(run_row, entries)
        try:
            index, _ = self.index()
            if (index.runs, index.vms) != (expected.runs, expected.vms):
                problems.append(f"the index {INDEX} of {self.where} does not match the "
                                "manifests: listings may show what the generations do not hold")
        except ProviderError as e:
            if e.transient:
                raise
            problems.append(str(e))
        kept: Set[str] = set()
        for name in everything:          # histories set aside (or copied) elsewhere
            if name.endswith(".json") and not name.startswith(("ovf/", "runs/")) \
                    and name != "store.json":
                kept |= {n[4:] for n in self._referenced(name)}
        return StoreInventory(
            generations=len(rebuilt), stored=stored, kept=tuple(sorted(kept)),
            problems=tuple(problems),
            uses=tuple(BlobUse(ovf_hash=h, vm_id=vm_id, name=u[0], kind=u[1], first=u[2][1],
                               last=u[3][1], generations=u[4], location="ovf/" + h)
                       for (h, vm_id), u in uses.items()))

    # -- the store ----------------------------------------------------------------------
    def set_aside(self) -> List[str]:
        """The prefixes of the histories ``attach --fresh`` set aside."""
        return sorted({"/".join(n.split("/")[:2]) for n in self.bucket.names("set-aside/")})

    def describe(self, location: str) -> StoreInfo:
        """``describe_store``; creates nothing."""
        doc = self._json("store.json", "store.json")     # one read: format and owner
        fmt = self._format_of(doc)
        owner = self._owner_of(doc) if fmt else None
        runs = self.committed()
        aside = self.set_aside() if runs or fmt else []
        last = dt.datetime.strptime(runs[-1][:16], "%Y%m%dT%H%M%SZ").replace(
            tzinfo=dt.timezone.utc) if runs else None
        return StoreInfo(location=location, owner=owner, generations=len(runs), last_run=last,
                         set_aside=tuple(aside), format=fmt or (1 if runs else 0))

    def claim(self, owner: EngineIdentity, fresh: bool, note: Note) -> None:
        """``claim_store``: record ``owner``; with ``fresh`` set the history aside first."""
        self.check_format()
        self.bucket.create()
        if fresh:
            aside = f"set-aside/{utcnow():%Y%m%dT%H%M%SZ}"
            names = self.bucket.names("runs/") + self.bucket.names("index/")
            for name in names:      # copy first, then delete: a manifest is never lost
                self.bucket.copy(name, f"{aside}/{name}", f"setting {name} aside")
                self.bucket.delete(name, f"removing {name}")
            note(f"{sum(n.startswith('runs/') for n in names)} generation(s) set aside under "
                 f"{aside}/ in {self.where}")
        self.bucket.put("store.json", json.dumps({"format": FORMAT, "owner": owner.to_dict()})
                        .encode("utf-8"), "application/json", "recording the owner")
        note(f"{self.where} now serves {owner.system} ({owner.url})")


def _blob_object(ovf_hash: str) -> str:
    return "ovf/" + safe_name(ovf_hash, "ovf_hash")


def _entry(vm: Union[VmBackup, Restorable]) -> list:
    """A VM's entry in a run manifest (the index's entries follow the same order)."""
    return [vm.vm_id, vm.name, vm.kind, vm.datacenter, vm.cluster, vm.ovf_hash,
            ",".join(vm.flags)]
