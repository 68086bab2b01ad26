"""What a restore selects beyond names on the command line: a file of VMs, exclusions.

``--from-file FILE`` holds one VM name or id per line (blank lines and ``#`` comments are
skipped; globs work as on the command line), or what ``ovirt-backup list --json`` prints
(a JSON list of items: their ``vm_id`` is taken, so a VM renamed since is still found).
``--exclude GLOB`` (repeatable) drops the selected VMs whose name matches the glob (or
whose id it is). ``--all`` selects the newest backup of every VM in scope (``--datacenter``,
``--from-cluster``).
"""
from __future__ import annotations

import fnmatch
import json
from pathlib import Path
from typing import Any, List, Sequence

from ..errors import BackupError
from ..model import Restorable

__all__ = ["exclude", "read_vm_file"]


def read_vm_file(path: str) -> List[str]:
    """The VM names, ids or globs a ``--from-file`` lists."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise BackupError(f"--from-file {path}: cannot read it: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise BackupError(f"--from-file {path}: not UTF-8 text") from None
    if text.lstrip()[:1] in ("[", "{"):
        return _from_json(path, text)
    tokens = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            tokens.append(line)
    if not tokens:
        raise BackupError(f"--from-file {path}: it names no VM (one name or id per line, "
                          "or the output of 'ovirt-backup list --json')")
    return tokens


def _from_json(path: str, text: str) -> List[str]:
    try:
        data: Any = json.loads(text)
    except ValueError as e:
        raise BackupError(f"--from-file {path}: not valid JSON: {e}") from None
    if isinstance(data, dict):
        data = data.get("vms", data.get("items", [data]))
    if not isinstance(data, list):
        raise BackupError(f"--from-file {path}: expected a JSON list (what 'list --json' prints)")
    tokens = []
    for n, entry in enumerate(data, 1):
        if isinstance(entry, str) and entry:
            tokens.append(entry)
        elif isinstance(entry, dict) and (entry.get("vm_id") or entry.get("name")):
            tokens.append(str(entry.get("vm_id") or entry.get("name")))
        else:
            raise BackupError(f"--from-file {path}: entry {n} has no vm_id or name")
    if not tokens:
        raise BackupError(f"--from-file {path}: the list is empty")
    return list(dict.fromkeys(tokens))


def exclude(items: Sequence[Restorable], globs: Sequence[str]) -> List[Restorable]:
    """``items`` without those whose name matches one of ``globs`` (or whose id is one)."""
    if not globs:
        return list(items)
    return [i for i in items
            if not any(i.vm_id == g or fnmatch.fnmatchcase(i.name, g) for g in globs)]
