"""ovfdir: every VM's OVF as a plain file in a directory (an example third-party provider).

Settings (``[provider:ovfdir]``):
    path   the directory (default ``<state_dir>/ovfdir``)

Layout: ``<path>/ovf/<hash>.ovf`` holds each distinct OVF once, named by its content hash;
``<path>/runs/<run id>.json`` is the manifest of one committed run (which VM had which
OVF). Both are written to a temporary file and renamed, so nobody reads half a file, and a
manifest is written only when its run succeeded, so a failed run is never listed.
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
from ovirt_backup_plugin.model import Restorable
from ovirt_backup_plugin.ovf import verified

_runs = {}   # (provider name, run id) -> the manifest's VM entries written so far


def _root(settings) -> Path:
    return Path(settings.get("path") or Path(settings.state_dir) / "ovfdir").expanduser()


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
def before_backup(run, settings):
    try:
        for sub in ("ovf", "runs"):
            (_root(settings) / sub).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ProviderError(f"cannot create {_root(settings) / sub}: {e.strerror or e}") from e
    _runs[(settings.name, run.id)] = []
    return f"writing OVF files to {_root(settings)}"


@hookimpl
def write_ovf(run, vm, settings):
    blob = _root(settings) / "ovf" / f"{vm.ovf_hash}.ovf"
    new = not blob.exists()
    if new:
        _write(blob, vm.ovf.encode("utf-8"))
    _runs[(settings.name, run.id)].append({
        "vm_id": vm.identity.id, "name": vm.identity.name, "kind": vm.identity.kind,
        "datacenter": vm.datacenter, "cluster": vm.identity.cluster, "hash": vm.ovf_hash})
    return new


@hookimpl
def after_backup(run, settings, outcome):
    vms = _runs.pop((settings.name, run.id), [])
    if not outcome.ok:
        return "run abandoned: no manifest written, the previous run stays the newest"
    manifest = {"run": run.id, "started_at": run.started_at.isoformat(), "vms": vms}
    _write(_root(settings) / "runs" / f"{run.id}.json", json.dumps(manifest, indent=1).encode())
    return f"run {run.id} committed: {len(vms)} OVF(s) in {_root(settings)}"


@hookimpl
def list_restorable(settings, datacenter):
    items = []
    for path in sorted((_root(settings) / "runs").glob("*.json"), reverse=True):
        try:
            manifest = json.loads(path.read_bytes())
        except (OSError, ValueError) as e:
            raise ProviderError(f"cannot read the manifest {path}: {e}") from e
        taken_at = dt.datetime.fromisoformat(manifest["started_at"])
        items += [Restorable(provider=settings.name, vm_id=vm["vm_id"], name=vm["name"],
                             kind=vm["kind"], generation=manifest["run"], taken_at=taken_at,
                             datacenter=vm["datacenter"], cluster=vm["cluster"],
                             ovf_hash=vm["hash"], location=f"ovf/{vm['hash']}.ovf")
                  for vm in manifest["vms"] if datacenter in (None, vm["datacenter"])]
    return items


@hookimpl
def read_ovf(item, settings):
    if item.provider != settings.name:
        return None
    path = _root(settings) / "ovf" / f"{item.ovf_hash}.ovf"
    try:
        text = path.read_bytes().decode("utf-8", "replace")   # bad bytes fail the hash check
    except OSError as e:
        raise ProviderError(f"cannot read the OVF of VM {item.name}: {e}") from e
    return verified(text, item, str(path))


@hookimpl
def restore_vm(request, engine, settings):
    if request.item.provider == settings.name:
        return engine.restore_from_ovf(request, read_ovf(request.item, settings),
                                       provider=settings.name)
