"""debug: records every hook call and every OVF in a directory, for developers.

Hidden from ``ovirt-backup providers`` unless ``--all`` is given. Settings: ``path`` (the
directory, default ``<state_dir>/debug``).

Layout: ``calls.log`` (one readable line per hook call, its arguments summarised) and
``<run id>/<vm name>_<vm id>.ovf`` (each OVF exactly as received). File names are made
safe and bounded: the VM name keeps letters, digits, ``.``, ``_`` and ``-`` (anything else,
control characters and separators included, becomes ``_``) and at most 100 characters of
it; the VM id keeps the names unique. It keeps nothing restorable. The OVFs hold what the
engine sent (cloud-init passwords too): folders are 0700 and files 0600.
"""
import datetime as dt
import re
from pathlib import Path

from ovirt_backup_plugin import hookimpl, private_dir, private_file, write_private
from ovirt_backup_plugin.model import KEEPS_NOTHING, Option, ProviderDeclaration

NAME_CHARS = 100        # of the VM name in a file name; with the id, far below NAME_MAX


@hookimpl
def declare_provider():
    return ProviderDeclaration(
        keeps=KEEPS_NOTHING, description="records hook calls and OVFs (for developers)",
        options=(Option("path", "path", help="the directory (default <state_dir>/debug)"),))


def _dir(settings) -> Path:
    path = Path(settings.get("path") or Path(settings.state_dir) / "debug")
    return private_dir(path)


def _log(settings, hook, **fields):
    line = " ".join(f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}"
                    for k, v in fields.items())
    with private_file(_dir(settings) / "calls.log", "a") as f:
        f.write(f"{dt.datetime.now().isoformat(timespec='seconds')} {hook} {line}\n")


def file_name(name: str, vm_id: str) -> str:
    """``<safe name>_<id>.ovf``: no separator or control character, bounded, unique by id."""
    safe = re.sub(r"[^\w.-]", "_", name, flags=re.ASCII).lstrip(".")[:NAME_CHARS] or "vm"
    return f"{safe}_{re.sub(r'[^0-9A-Za-z-]', '_', vm_id)[:64]}.ovf"


@hookimpl
def before_backup(run, settings, note):
    _log(settings, "before_backup", run=run.id, system=run.system, scope=run.datacenter or "all")
    note(f"recording hook calls in {_dir(settings)}")


@hookimpl
def write_ovf(run, vm, settings):
    target = _dir(settings) / run.id / file_name(vm.name, vm.vm_id)
    private_dir(target.parent)
    write_private(target, vm.ovf.encode("utf-8", "surrogateescape"))
    _log(settings, "write_ovf", run=run.id, vm=vm.name, id=vm.vm_id,
         datacenter=vm.datacenter, hash=vm.ovf_hash[:12], bytes=len(vm.ovf))
    return True


@hookimpl
def after_backup(run, settings, outcome):
    _log(settings, "after_backup", run=run.id, ok=outcome.ok, written=outcome.written,
         reason=outcome.reason)
