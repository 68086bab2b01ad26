"""Shell completion of ``ovirt-backup`` (argcomplete, the optional extra ``completion``).

Once per shell (bash; zsh with ``bashcompinit``)::

    pip install 'ovirt-backup-plugin[completion]'
    eval "$(register-python-argcomplete ovirt-backup)"

Commands and options complete from the parser; ``--provider`` and ``attach PROVIDER``
from the installed providers; VM names (``restore``, ``list``, ``history``) from the
providers that keep their catalog on this host (``localdb``), so completing never waits
for an engine or a remote store. Without argcomplete, or outside completion, nothing of
this runs: :func:`enable` returns at once unless the shell asked for completions.
"""
from __future__ import annotations

import argparse
import os
from typing import Any, List

from .host import Session, load_config
from .host.plugins import HIDDEN_PROVIDERS, installed_providers
from .model import Query

__all__ = ["enable", "provider_names", "vm_names"]

VM_LIMIT = 200


def provider_names(prefix: str, **_: Any) -> List[str]:
    return sorted(n for n in installed_providers() if n.startswith(prefix)
                  and n not in HIDDEN_PROVIDERS)


def vm_names(prefix: str, parsed_args: Any = None, **_: Any) -> List[str]:
    """VM names from the local catalogs (providers not ``off_host``); [] on any trouble."""
    try:
        config = load_config(getattr(parsed_args, "config", None))
        session = Session.open(config)
    except Exception:
        return []
    names: set = set()
    try:
        for h in session.handles:
            if h.declaration.off_host or not h.keeps_ovf:
                continue
            query = Query(vms=(glob_escape(prefix) + "*",), limit=VM_LIMIT)
            try:
                names.update(i.name for i in h.list_restorable(query, session.engine))
            except Exception:
                continue
    finally:
        session.close()
    return sorted(names)


def glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def enable(parser: argparse.ArgumentParser) -> None:
    """Answer the shell's completion request, if this is one (argcomplete exits then)."""
    if "_ARGCOMPLETE" not in os.environ:
        return
    try:
        import argcomplete
    except ImportError:
        return
    for action in _actions(parser):
        if action.dest == "provider":
            action.completer = provider_names     # type: ignore[attr-defined]
        elif action.dest in ("vms", "vm"):
            action.completer = vm_names           # type: ignore[attr-defined]
    argcomplete.autocomplete(parser)


def _actions(parser: argparse.ArgumentParser) -> List[argparse.Action]:
    found = list(parser._actions)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found += _actions(sub)
    return found
