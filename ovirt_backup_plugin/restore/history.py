"""``ovirt-backup history VM``: when a VM's configuration changed, and what changed.

Every generation that holds the VM comes from one query per provider (all enabled
providers, or one): the VM named (or with that id) is found first, then every generation of
that VM id, under former names too. Oldest first; a generation held by several providers
counts once. Consecutive generations with the same ``ovf_hash`` form one *period* -- the
configuration did not change -- and between two periods the change is described with
:func:`~ovirt_backup_plugin.ovf.diff_identities` (memory, CPUs, disks, NICs, ...). One OVF is
read per period, checked as a restore checks it.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence

from ..engine import Engine
from ..errors import BackupError
from ..host import ProviderHandle
from ..model import Query, Restorable, VmIdentity
from ..ovf import diff_identities
from ..terminal import to_json
from .generations import generations_of, mode_label
from .listing import gather

log = logging.getLogger(__name__)

IdentityOf = Callable[[Restorable], VmIdentity]
_EPOCH = dt.datetime.min.replace(tzinfo=dt.timezone.utc)


@dataclass
class Period:
    """Consecutive generations with the same configuration (oldest first)."""

    items: List[Restorable]
    changes: List[str] = field(default_factory=list)   # from the previous period
    note: str = ""                                     # why the change could not be described

    @property
    def first(self) -> Restorable:
        return self.items[0]

    @property
    def last(self) -> Restorable:
        return self.items[-1]

    def to_dict(self) -> Dict[str, Any]:
        return {"from": _iso(self.first), "to": _iso(self.last),
                "first_generation": self.first.generation,
                "last_generation": self.last.generation, "generations": len(self.items),
                "ovf_hash": self.first.ovf_hash, "changes": self.changes,
                **({"note": self.note} if self.note else {})}


@dataclass
class History:
    vm_id: str
    name: str                       # the newest name
    kind: str
    providers: List[str]
    periods: List[Period]
    first: Optional[VmIdentity] = None
    modes: Dict[str, str] = field(default_factory=dict)   # generation -> full / incremental

    def _mode(self, item: Restorable) -> str:
        mode = self.modes.get(item.generation)
        return f", {mode}" if mode else ""

    def _counts(self, period: Period) -> Dict[str, int]:
        counts: Dict[str, int] = {}
        for item in period.items:
            mode = self.modes.get(item.generation)
            if mode:
                counts[mode] = counts.get(mode, 0) + 1
        return counts

    @property
    def generations(self) -> int:
        return sum(len(p.items) for p in self.periods)

    def to_dict(self) -> Dict[str, Any]:
        return {"vm_id": self.vm_id, "name": self.name, "kind": self.kind,
                "providers": self.providers, "generations": self.generations,
                "periods": [dict(p.to_dict(), **({"modes": self._counts(p)} if self.modes
                                                 else {})) for p in self.periods]}

    def lines(self) -> List[str]:
        first, last = self.periods[0].first, self.periods[-1].last
        kind = "VM" if self.kind == "vm" else self.kind
        out = [f"{kind} {self.name} ({self.vm_id}): {self.generations} generation(s) from "
               f"{_when(first)} to {_when(last)}, oldest first ({', '.join(self.providers)})"]
        for n, period in enumerate(self.periods):
            head = period.first
            if n == 0:
                summary = f": {_summary(self.first)}" if self.first else ""
                out.append(f"{_when(head)}  first backup (generation {head.generation}"
                           f"{self._mode(head)}){summary}")
            else:
                out.append(f"{_when(head)}  changed (generation {head.generation}"
                           f"{self._mode(head)}):")
                out += [f"    {change}" for change in period.changes]
                if period.note:
                    out.append(f"    ({period.note})")
            if len(period.items) > 1:
                counts = ", ".join(f"{n} {mode}" for mode, n in sorted(self._counts(period).items()))
                out.append(f"{_when(head)} → {_when(period.last)} unchanged "
                           f"({len(period.items)} generations" + (f": {counts})" if counts else ")"))
        return out


def _iso(item: Restorable) -> Optional[str]:
    return item.taken_at.isoformat() if item.taken_at else None


def _when(item: Restorable) -> str:
    return item.taken_at.strftime("%Y-%m-%d %H:%M") if item.taken_at else "(time unknown)"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _summary(i: VmIdentity) -> str:
    parts = [i.os or "OS ?", f"{i.memory_mb} MB" if i.memory_mb is not None else "memory ?",
             _plural(i.cpus, "CPU") if i.cpus is not None else "CPUs ?",
             _plural(len(i.disks), "disk"), _plural(len(i.nics), "NIC")]
    if i.cluster:
        parts.append(f"cluster {i.cluster}")
    return ", ".join(parts)


def vm_items(items: Sequence[Restorable], token: str) -> List[Restorable]:
    """Every item of the one VM named ``token`` (name or id) — also under former names."""
    ids = {i.vm_id for i in items if token in (i.vm_id, i.name)}
    if not ids:
        raise BackupError(f"no backup of a VM named or with id {token!r}")
    if len(ids) > 1:
        raise BackupError(f"{token!r} names {len(ids)} different VMs ({', '.join(sorted(ids))}); "
                          "pick one by id")
    return [i for i in items if i.vm_id in ids]


def one_per_generation(items: Sequence[Restorable]) -> List[Restorable]:
    """One item per generation (the first provider listed that holds it), oldest first."""
    chosen: Dict[str, Restorable] = {}
    for item in items:
        chosen.setdefault(item.generation, item)
    return sorted(chosen.values(), key=lambda i: (i.taken_at or _EPOCH, i.generation))


def build_history(items: Sequence[Restorable], token: str, identity_of: IdentityOf) -> History:
    """The periods of one VM; ``identity_of`` gives an item's identity (it may raise
    :class:`BackupError`: the change is then reported as not describable)."""
    mine = vm_items(items, token)
    ordered = one_per_generation(mine)
    periods: List[Period] = []
    for item in ordered:
        if periods and periods[-1].last.ovf_hash == item.ovf_hash:
            periods[-1].items.append(item)
        else:
            periods.append(Period([item]))

    def identity(item: Restorable) -> Optional[VmIdentity]:
        try:
            return identity_of(item)
        except BackupError as e:
            log.warning("cannot read the configuration of %s, generation %s: %s",
                        item.name, item.generation, e)
            return None

    first = before = identity(periods[0].first)
    for period in periods[1:]:
        after = identity(period.first)
        if before is None or after is None:
            period.note = "the OVF of this or the previous generation could not be read"
        else:
            period.changes = diff_identities(before, after)
            if not period.changes:
                period.note = "the OVF changed in fields this summary does not track"
        before = after
    newest = ordered[-1]
    return History(vm_id=newest.vm_id, name=newest.name, kind=newest.kind,
                   providers=sorted({i.provider for i in mine}), periods=periods, first=first)


def history(handles: Sequence[ProviderHandle], engine: Engine, token: str, *,
            provider: Optional[str] = None, as_json: bool = False,
            echo: Callable[[str], None] = print,
            warn: Callable[[str], None] = print,
            out_json: Optional[Callable[[object], None]] = None) -> int:
    """The ``history`` command: 0, or 1 when a provider could not list. ``--json`` goes to
    ``out_json`` (default: ``echo`` of the escaped JSON text)."""
    chosen = [h for h in handles if provider in (None, h.name)]
    if provider and not chosen:
        raise BackupError(f"provider {provider!r} is not enabled (enabled: "
                          f"{', '.join(h.name for h in handles) or 'none'})")
    named = gather(chosen, engine, Query(vms=(token,), every=True))
    ids = sorted({i.vm_id for i in named.items})
    listing = gather(chosen, engine, Query(vms=tuple(ids), every=True)) if ids else named
    for name, error in {**named.errors, **listing.errors}.items():
        warn(f"warning: provider {name} could not list: {error}")
    by_name = {h.name: h for h in chosen}

    def identity_of(item: Restorable) -> VmIdentity:
        if item.identity is not None:
            return item.identity
        handle = by_name[item.provider]
        if not handle.keeps_ovf:
            raise BackupError(f"provider {item.provider} cannot hand out the OVF of {item.name}")
        return handle.read_checked(item).identity

    result = build_history(named.items if not ids else
                           [i for i in listing.items if i.vm_id in ids], token, identity_of)
    result.modes = {g: mode_label(info) for g, info in generations_of(chosen).items()}
    if as_json:
        if out_json is not None:
            out_json(result.to_dict())
        else:
            echo(to_json(result.to_dict()))
    else:
        for line in result.lines():
            echo(line)
    return 1 if listing.errors or named.errors else 0
