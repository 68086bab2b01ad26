"""debug: records every hook call and every OVF in a directory, for developers.

Hidden from ``ovirt-backup providers`` unless ``--all`` is given. Settings:
    path   the directory (default ``<state_dir>/debug``)

Layout: ``calls.log`` (one readable line per hook call, with its arguments summarised) and
``<run id>/<vm name>_<vm id>.ovf`` (each OVF exactly as received). It lists nothing, so
nothing is ever restored from it.
"""
import datetime as dt
import re
from pathlib import Path

from ovirt_backup_plugin import hookimpl


def _dir(settings) -> Path:
    path = Path(settings.get("path") or Path(settings.state_dir) / "debug").expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def _log(settings, hook, **fields):
    line = " ".join(f"{k}={v}" for k, v in fields.items())
    with open(_dir(settings) / "calls.log", "a", encoding="utf-8") as f:
        f.write(f"{dt.datetime.now().isoformat(timespec='seconds')} {hook} {line}\n")


@hookimpl
def before_backup(run, settings):
    _log(settings, "before_backup", run=run.id, system=run.system, scope=run.datacenter or "all")
    return f"recording hook calls in {_dir(settings)}"


@hookimpl
def write_ovf(run, vm, settings):
    name = re.sub(r"[^\w.-]", "_", vm.identity.name)
    target = _dir(settings) / run.id / f"{name}_{vm.identity.id}.ovf"
    target.parent.mkdir(exist_ok=True)
    target.write_text(vm.ovf, encoding="utf-8")
    _log(settings, "write_ovf", run=run.id, vm=vm.identity.name, id=vm.identity.id,
         datacenter=vm.datacenter, hash=vm.ovf_hash[:12], bytes=len(vm.ovf))
    return True


@hookimpl
def after_backup(run, settings, outcome):
    _log(settings, "after_backup", run=run.id, ok=outcome.ok, written=outcome.written,
         reason=repr(outcome.reason))


@hookimpl
def list_restorable(settings, datacenter):
    _log(settings, "list_restorable", datacenter=datacenter or "all")
    return []
