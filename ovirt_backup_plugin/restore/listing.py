"""What is restorable: one query asked of every provider, the answers merged.

:func:`gather` asks each provider's ``list_restorable`` the same
:class:`~ovirt_backup_plugin.model.Query`, narrowed to that provider's data-center scope
(a provider scoped elsewhere is not asked), and checks every answer against the query.
:class:`Listing` merges the answers: the newest item of each VM across providers, and which
providers hold the same content. :func:`select` turns what the user typed (names, ids,
globs) into the items to restore, one per VM.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple

from ..engine import Engine
from ..errors import BackupError
from ..host import ProviderHandle
from ..model import EPOCH, Query, Restorable, is_glob

log = logging.getLogger(__name__)

__all__ = ["Listing", "gather", "select", "scoped_query"]


@dataclass
class Listing:
    items: List[Restorable] = field(default_factory=list)
    errors: Dict[str, str] = field(default_factory=dict)     # provider -> why it could not list
    _holders: Optional[Dict[Tuple[str, str], Set[str]]] = field(default=None, repr=False)

    def newest(self) -> List[Restorable]:
        """The newest item of every VM across providers: templates first, then by name."""
        best: Dict[Tuple[str, str], Restorable] = {}
        for item in self.items:
            key = (item.kind, item.vm_id)
            if key not in best or _when(item) > _when(best[key]):
                best[key] = item
        return sorted(best.values(), key=lambda i: (i.kind != "template", i.name, i.vm_id))

    def holders(self, item: Restorable) -> List[str]:
        """Providers holding the same content of the same VM (where a copy comes from)."""
        if self._holders is None:
            self._holders = {}
            for i in self.items:
                if i.ovf_hash:
                    self._holders.setdefault((i.vm_id, i.ovf_hash), set()).add(i.provider)
        return sorted(self._holders.get((item.vm_id, item.ovf_hash), set()) or {item.provider})


def scoped_query(query: Query, handle: ProviderHandle) -> Optional[Query]:
    """``query`` within the provider's data-center scope; None when they do not meet."""
    scope = handle.settings.datacenter
    if not scope:
        return query
    if query.datacenter not in (None, scope):
        return None
    return dataclasses.replace(query, datacenter=scope)


def gather(handles: Iterable[ProviderHandle], engine: Engine, query: Query) -> Listing:
    """Ask every provider ``query``; a provider that fails is reported in ``errors``."""
    listing = Listing()
    for h in handles:
        if not h.implements("list_restorable"):
            continue
        asked = scoped_query(query, h)
        if asked is None:
            continue
        try:
            answer = h.list_restorable(asked, engine)
        except BackupError as e:
            listing.errors[h.name] = str(e)
            log.error("provider %s cannot list: %s", h.name, e)
            continue
        if any(i.provider != h.name or i.registers != h.registers for i in answer):
            answer = [dataclasses.replace(i, provider=h.name, registers=h.registers)
                      for i in answer]
        checked = asked.answer(answer)
        if len(checked) != len(answer):
            log.debug("provider %s answered %d item(s) outside the query", h.name,
                      len(answer) - len(checked))
        listing.items += checked
    return listing


def select(listing: Listing, wanted: Sequence[str]) -> List[Restorable]:
    """The newest item of each VM ``wanted`` names (names, ids or globs), templates first.

    A name or id that matches nothing, or a name that several VMs had, is an error; a glob
    may match any number of VMs (none is an error too).
    """
    newest = listing.newest()
    chosen: Dict[Tuple[str, str], Restorable] = {}
    for token in wanted:
        matches = [i for i in newest if Query(vms=(token,)).selects(i.vm_id, i.name)]
        if not matches:
            raise BackupError(f"no backup of a VM {'matching' if is_glob(token) else 'named or with id'} "
                              f"{token!r}" + (f" (providers that could not list: "
                                              f"{', '.join(listing.errors)})" if listing.errors else ""))
        ids = {i.vm_id for i in matches}
        if len(ids) > 1 and not is_glob(token):
            raise BackupError(f"{token!r} names {len(ids)} different VMs ({', '.join(sorted(ids))}); "
                              "pick one by id")
        chosen.update(((i.kind, i.vm_id), i) for i in matches)
    return sorted(chosen.values(), key=lambda i: (i.kind != "template", i.name, i.vm_id))


def _when(item: Restorable) -> float:
    return (item.taken_at or EPOCH).timestamp()
