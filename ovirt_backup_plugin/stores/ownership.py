"""Which engine a provider's store serves: the ownership check and ``ovirt-backup attach``.

A store (a catalog file, a Swift container) records the engine it serves, as an
:class:`~ovirt_backup_plugin.model.EngineIdentity`. Before every run the host compares it
with the engine at hand: an unclaimed store is claimed, a store of another engine is
refused for that provider (two engines writing into one store by mistake), and the admin
resolves it with ``attach``: continue the history, or set it aside and start fresh.
"""
from __future__ import annotations

from typing import Callable, Optional

from ..errors import BackupError, ProviderError
from ..host import ProviderHandle, quiet
from ..model import EngineIdentity, Note


def describe(owner: Optional[EngineIdentity]) -> str:
    if owner is None:
        return "no engine (unclaimed)"
    return f"{owner.system} ({owner.url}, data centers {', '.join(owner.datacenter_ids) or '-'})"


def ensure_owned(handle: ProviderHandle, identity: EngineIdentity, note: Note = quiet) -> None:
    """Claim an unclaimed store; refuse one that serves another engine."""
    info = handle.describe_store()
    if info is None:
        return
    if info.owner is None:
        handle.claim_store(identity, False, note)
        return
    if not info.owner.same_engine(identity):
        raise ProviderError(
            f"{handle.name}: the store {info.location} serves another engine, "
            f"{describe(info.owner)}, not {describe(identity)}. Two engines must not write "
            f"into one store: if this engine replaces that one, run "
            f"'ovirt-backup attach {handle.name}'; otherwise give this engine its own store")


def attach(handle: ProviderHandle, identity: EngineIdentity, *, mode: Optional[str],
           echo: Callable[[str], None] = print,
           ask: Optional[Callable[[str], str]] = None) -> int:
    """Attach this engine to the provider's existing store. ``mode``: continue/fresh/None."""
    info = handle.describe_store()
    if info is None:
        raise BackupError(f"provider {handle.name} keeps no store of its own to attach")
    echo(f"store {info.location}: {info.generations} generation(s)"
         + (f", last run {info.last_run:%Y-%m-%d %H:%M} UTC" if info.last_run else "")
         + f", written by {describe(info.owner)}")
    for aside in info.set_aside:
        echo(f"  set aside earlier: {aside}")
    if info.owner is None and not info.generations:
        echo("the store is empty; the next backup run claims it for "
             f"{describe(identity)}")
        if mode is None:
            return 0
    elif info.owner is not None and info.owner.same_engine(identity) and mode is None:
        echo(f"it already serves this engine ({describe(identity)}); nothing to do")
        return 0
    if mode is None:
        if ask is None:
            raise BackupError("say what to do with the existing backups: --continue (keep the "
                              "history, the next run adds a generation) or --fresh (set them "
                              "aside, not deleted, and start from scratch)")
        answer = ask("continue from the latest backup [c], start from scratch [f], "
                     "or quit [q]? ").strip().lower()
        mode = {"c": "continue", "f": "fresh"}.get(answer[:1])
        if mode is None:
            echo("nothing changed")
            return 0
    handle.claim_store(identity, mode == "fresh", echo)
    return 0
