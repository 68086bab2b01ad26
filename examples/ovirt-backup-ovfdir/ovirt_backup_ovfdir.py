"""ovfdir: every VM's OVF as a plain file in a directory (an example third-party provider).

Settings (``[provider:ovfdir]``): ``path``, the directory (default ``<state_dir>/ovfdir``).

Layout: ``<path>/ovf/<hash>`` holds each distinct OVF once, as the host sealed it, named by
its content hash; ``<path>/runs/<run id>.json`` is the manifest of one committed run (which
VM had which OVF). Both are written to a temporary file and renamed, so nobody reads half a
file, and a manifest is written only when its run succeeded, so a failed run is never
listed; it records the run's mode, reason and event cursor, so that the next run can be
incremental (``carry_over`` adds the unchanged VMs to the manifest). Listing reads every
manifest and lets the host's ``Query.answer`` pick: fine for a directory of a few hundred
generations; a provider meant for large histories keeps an index (see the built-in
``swift``). ``list_generations`` and ``forget_generations`` make ``prune`` work.
"""
import contextlib
import datetime as dt
import errno
import json
import os
import tempfile
from pathlib import Path

from ovirt_backup_plugin import hookimpl
from ovirt_backup_plugin.errors import ProviderError
from ovirt_backup_plugin.model import (
    KEEPS_OVF,
    GenerationInfo,
    Option,
    ProviderDeclaration,
    PruneResult,
    Restorable,
)


@hookimpl
def declare_provider():
    return ProviderDeclaration(keeps=KEEPS_OVF, description="OVF files in a directory",
                               options=(Option("path", "path", help="the directory"),))


def _root(settings) -> Path:
    return Path(settings.get("path") or Path(settings.state_dir) / "ovfdir")


def _write(target: Path, data: bytes) -> None:
    """Write ``target`` atomically: a temporary file beside it, synced, then renamed."""
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except OSError as e:
        if tmp:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        # a disk that is full stays full; a network share that timed out may answer again
        raise ProviderError(f"cannot write {target}: {e.strerror or e}", transient=e.errno in (
            errno.EAGAIN, errno.ETIMEDOUT, errno.ESTALE)) from e


@hookimpl
def before_backup(settings, note):
    try:
        for sub in ("ovf", "runs"):
            (_root(settings) / sub).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ProviderError(f"cannot create {_root(settings) / sub}: {e.strerror or e}") from e
    note(f"writing OVF files to {_root(settings)}")
    return []                     # this run's manifest entries, handed back to write_ovf


@hookimpl
def write_ovf(vm, state, settings):
    blob = _root(settings) / "ovf" / vm.ovf_hash
    new = not blob.exists()
    if new:
        _write(blob, vm.blob)
    state.append({"vm_id": vm.vm_id, "name": vm.name, "kind": vm.kind,
                  "datacenter": vm.datacenter, "cluster": vm.cluster, "hash": vm.ovf_hash,
                  "flags": list(vm.flags)})
    return new


@hookimpl
def carry_over(items, state, settings):
    """An incremental run's unchanged VMs: their entries join this run's manifest (the
    OVF files are already here; one that is not is handed back to be read again)."""
    lost = []
    for item in items:
        if not (_root(settings) / "ovf" / item.ovf_hash).exists():
            lost.append(item.vm_id)
            continue
        state.append({"vm_id": item.vm_id, "name": item.name, "kind": item.kind,
                      "datacenter": item.datacenter, "cluster": item.cluster,
                      "hash": item.ovf_hash, "flags": list(item.flags)})
    return lost


@hookimpl
def after_backup(run, state, settings, outcome, note):
    if not outcome.ok:
        note("run abandoned: no manifest written, the previous run stays the newest")
        return
    manifest = {"run": run.id, "started_at": run.started_at.isoformat(), "vms": state,
                "mode": run.mode, "reason": run.reason, "cursor": run.cursor,
                "datacenter": run.datacenter}
    _write(_root(settings) / "runs" / f"{run.id}.json", json.dumps(manifest, indent=1).encode())
    note(f"run {run.id} committed: {len(state)} OVF(s) in {_root(settings)}")


def _manifests(settings):
    for path in sorted((_root(settings) / "runs").glob("*.json"), reverse=True):
        try:
            yield path, json.loads(path.read_bytes())
        except (OSError, ValueError) as e:
            raise ProviderError(f"cannot read the manifest {path}: {e}") from e


@hookimpl
def list_restorable(query, settings):
    items = []
    for _, manifest in _manifests(settings):
        taken_at = dt.datetime.fromisoformat(manifest["started_at"])
        items += [Restorable(provider=settings.name, vm_id=vm["vm_id"], name=vm["name"],
                             kind=vm["kind"], generation=manifest["run"], taken_at=taken_at,
                             datacenter=vm["datacenter"], cluster=vm["cluster"],
                             ovf_hash=vm["hash"], location=f"ovf/{vm['hash']}",
                             flags=tuple(vm.get("flags", ())))
                  for vm in manifest["vms"]]
    return query.answer(items)


@hookimpl
def list_generations(settings):
    """Every committed run, newest first, with what an incremental run builds on (its
    mode, reason, event cursor and scope)."""
    gens = [GenerationInfo(id=m["run"], taken_at=dt.datetime.fromisoformat(m["started_at"]),
                           vms=len(m["vms"]), mode=m.get("mode", "full"),
                           reason=m.get("reason", ""), cursor=m.get("cursor"),
                           datacenter=m.get("datacenter")) for _, m in _manifests(settings)]
    return sorted(gens, key=lambda g: (g.taken_at, g.id), reverse=True)


@hookimpl
def forget_generations(settings, generations):
    """Delete the manifests, then every OVF file no remaining manifest references."""
    gone = 0
    for run_id in generations:
        path = _root(settings) / "runs" / f"{run_id}.json"
        if "/" not in run_id and path.exists():
            path.unlink()
            gone += 1
    kept = {vm["hash"] for _, m in _manifests(settings) for vm in m["vms"]}
    blobs = 0
    for blob in (_root(settings) / "ovf").glob("*"):
        if blob.name not in kept and not blob.name.startswith("."):
            blob.unlink()
            blobs += 1
    return PruneResult(generations=gone, blobs=blobs)


@hookimpl
def read_ovf(item, settings):
    try:
        return (_root(settings) / "ovf" / item.ovf_hash).read_bytes()
    except OSError as e:
        raise ProviderError(f"cannot read the OVF of VM {item.name}: {e.strerror or e}") from e
