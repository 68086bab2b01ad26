"""Listing what is restorable across providers, picking VMs, and restoring copies of them."""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from .engine import Engine
from .errors import BackupError
from .host import ProviderHandle
from .model import Restorable, RestoreRequest

log = logging.getLogger(__name__)

DEFAULT_PATTERN = "{name}-{n}"


@dataclass
class Listing:
    items: List[Restorable] = field(default_factory=list)
    errors: Dict[str, str] = field(default_factory=dict)     # provider → why it could not list

    def newest(self) -> List[Restorable]:
        """The newest generation of each VM across all providers, sorted by name."""
        best: Dict[Tuple[str, str], Restorable] = {}
        for item in self.items:
            key = (item.kind, item.vm_id)
            if key not in best or _when(item) > _when(best[key]):
                best[key] = item
        return sorted(best.values(), key=lambda i: (i.kind != "template", i.name, i.vm_id))

    def holders(self, item: Restorable) -> List[str]:
        """Providers holding the same content of the same VM (where a copy comes from)."""
        return sorted({i.provider for i in self.items
                       if i.vm_id == item.vm_id and i.ovf_hash == item.ovf_hash and i.ovf_hash}
                      or {item.provider})


def gather(handles: Iterable[ProviderHandle], engine: Engine,
           datacenter: Optional[str] = None) -> Listing:
    listing = Listing()
    for h in handles:
        try:
            listing.items += h.call("list_restorable", engine=engine, datacenter=datacenter) or []
        except BackupError as e:
            listing.errors[h.name] = str(e)
            log.error("provider %s cannot list: %s", h.name, e)
    return listing


def select(listing: Listing, wanted: Sequence[str], *, provider: Optional[str] = None,
           generation: Optional[str] = None, at: Optional[dt.datetime] = None) -> List[Restorable]:
    """Pick one item per wanted VM (name or id): the newest matching the filters."""
    chosen: List[Restorable] = []
    for token in wanted:
        matches = [i for i in listing.items if token in (i.vm_id, i.name)]
        if not matches:
            raise BackupError(f"no backup of a VM named or with id {token!r}"
                              + (f" (providers that could not list: {', '.join(listing.errors)})"
                                 if listing.errors else ""))
        ids = {i.vm_id for i in matches}
        if len(ids) > 1:
            raise BackupError(f"{token!r} names {len(ids)} different VMs ({', '.join(sorted(ids))}); "
                              "pick one by id")
        if provider:
            matches = [i for i in matches if i.provider == provider]
        if generation:
            matches = [i for i in matches if i.generation == generation]
        if at:
            matches = [i for i in matches if i.taken_at and i.taken_at <= at]
        if not matches:
            raise BackupError(f"no backup of {token!r} matches the provider/generation/time asked")
        chosen.append(max(matches, key=_when))
    # templates before the VMs that may be based on them
    return sorted(chosen, key=lambda i: i.kind != "template")


def copy_names(item: Restorable, copies: int, pattern: Optional[str],
               new_ids: bool = False) -> List[Tuple[str, bool]]:
    """(name, regenerate_ids) for each copy.

    One copy keeps its ids (and its name, unless a pattern renames it) unless ``new_ids``;
    several copies always get new ids, and names from the pattern."""
    if copies < 1:
        raise BackupError("--copies must be at least 1")
    if copies == 1 and not pattern:
        return [(item.name, new_ids)]
    pattern = pattern or DEFAULT_PATTERN
    if copies > 1 and "{n}" not in pattern:
        raise BackupError(f"--name-pattern {pattern!r} needs {{n}} to give {copies} copies "
                          "unique names")
    try:
        names = [pattern.format(name=item.name, n=n, id=item.vm_id) for n in range(1, copies + 1)]
    except (KeyError, IndexError, ValueError) as e:
        raise BackupError(f"--name-pattern {pattern!r}: use {{name}}, {{n}} and {{id}} ({e})")
    return [(name, new_ids or copies > 1) for name in names]


@dataclass
class RestoreOutcome:
    restored: List[str] = field(default_factory=list)
    failed: List[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if self.failed:
            return 2 if not self.restored else 1
        return 0


def restore(items: Sequence[Restorable], handles: Dict[str, ProviderHandle], engine: Engine, *,
            copies: int = 1, pattern: Optional[str] = None, cluster: Optional[str] = None,
            new_ids: bool = False, echo: Callable[[str], None] = print,
            register_options: Optional[dict] = None) -> RestoreOutcome:
    """Restore each item (templates first) as ``copies`` copies.

    ``register_options`` (``allow_partial_import``, ``reassign_bad_macs``,
    ``vnic_profile_mappings``) go into every request; only registering providers use them.
    """
    from .plan import TemplateCheck        # plan imports this module

    outcome = RestoreOutcome()
    templates = TemplateCheck(engine)      # registering a VM needs its template there
    for item in items:
        handle = handles.get(item.provider)
        target_cluster = cluster or item.cluster or (item.identity.cluster if item.identity else "")
        echo(f"restoring {item.kind} {item.name} ({item.vm_id}) from {item.provider}, "
             f"generation {item.generation}")
        try:
            missing = templates.missing(item)
        except BackupError as e:
            missing = f"cannot check its template: {e}"
        if missing:
            outcome.failed.append(f"{item.name}: skipped: {missing}")
            echo(f"  SKIPPED {item.name}: {missing}")
            continue
        disks = item.identity.disks if item.identity else ()
        if disks and not item.registers:
            aliases = ", ".join(d.alias or d.id for d in disks)
            echo(f"  note: its OVF references {len(disks)} disk(s) ({aliases}); the engine "
                 "re-attaches only disks that still exist on its storage, it never creates or "
                 "copies disks")
        for name, regenerate in copy_names(item, copies, pattern, new_ids):
            request = RestoreRequest(item=item, name=name, cluster=target_cluster or None,
                                     regenerate_ids=regenerate, **(register_options or {}))
            try:
                if handle is None:
                    raise BackupError(f"provider {item.provider!r} is not enabled here")
                result = handle.call("restore_vm", request=request, engine=engine, retry=False)
                if result is None:
                    raise BackupError(f"provider {item.provider} did not restore {item.name}")
            except BackupError as e:
                outcome.failed.append(f"{name}: {e}")
                echo(f"  FAILED {name}: {e}")
                continue
            outcome.restored.append(name)
            templates.restored_ok(item)
            echo(f"  restored {name} as VM {result.vm_id} in cluster "
                 f"{target_cluster or '(from the OVF)'}"
                 + (" with new ids" if regenerate else ""))
            for note in result.notes:
                echo(f"  note: {note}")
    return outcome


def _when(item: Restorable) -> dt.datetime:
    return item.taken_at or dt.datetime.min.replace(tzinfo=dt.timezone.utc)
