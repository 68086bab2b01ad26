"""Retention: which generations ``ovirt-backup prune`` keeps, and the command that applies it.

Every backup run is a *generation* in every provider that took part. The policy is
restic-like and is applied to each provider on its own, over that provider's generations
(what its ``list_generations`` gives):

* ``keep_last = N`` (``--keep-last N``): keep the newest N generations;
* ``keep_within = 30d`` (``--keep-within 30d``): keep every generation taken less than
  that long ago (the durations of :mod:`.durations`: ``12h``, ``30d``, ``2w``, ``6mo``
  months of 30 days, ``1y`` years of 365 days, combined like ``1y6mo``);
* a generation is kept when *any* rule keeps it; every other generation is removed;
* the newest generation is never removed, whatever the rules say;
* a generation whose time is unknown is never removed (its age cannot be judged).

Both settings can be given per provider in ``[provider:NAME]``; an option on the command
line overrides the same setting, and ``0`` turns a rule off. With no rule at all ``prune``
refuses to run: it would keep nothing but the newest generation.

The first part of this module is pure (policy, decisions, which VMs would be left without
any backup) and is unit-tested on its own; :func:`prune` at the end is the host's driver that
lists, prints and calls each provider's ``forget_generations`` through its
:class:`~ovirt_backup_plugin.host.ProviderHandle`.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

from .. import durations
from ..engine import Engine
from ..errors import BackupError, ConfigError
from ..host import ProviderHandle
from ..model import EPOCH, GenerationInfo, Query, Restorable, utcnow
from ..progress import NO_PROGRESS, Progress, counted
from ..restore.listing import gather

NOTHING_KEPT = "nothing would be kept by policy — give --keep-last or --keep-within"

_EPOCH = EPOCH


# --------------------------------------------------------------------------------------
# The policy
# --------------------------------------------------------------------------------------
def parse_duration(text: str) -> dt.timedelta:
    """A retention age (see :mod:`.durations`: ``30d``, ``12h``, ``2w``, ``6mo``, ``1y``);
    ``0`` turns the rule off."""
    if str(text).strip() == "0":
        return dt.timedelta(0)
    try:
        return durations.parse_duration(text)
    except ValueError as e:
        raise ConfigError(str(e)) from None


@dataclass(frozen=True)
class Policy:
    keep_last: int = 0                            # 0: rule off
    keep_within: dt.timedelta = dt.timedelta(0)   # zero: rule off
    within_text: str = ""                         # as the user wrote it, for messages

    @property
    def empty(self) -> bool:
        return not self.keep_last and not self.keep_within

    def describe(self) -> str:
        rules = []
        if self.keep_last:
            rules.append(f"the newest {self.keep_last} generation"
                         + ("s" if self.keep_last != 1 else ""))
        if self.keep_within:
            rules.append(f"every generation younger than {self.within_text}")
        return "keep " + " and ".join(rules or ["only the newest generation"])


def make_policy(options: Mapping[str, str], *, keep_last: Optional[int] = None,
                keep_within: Optional[str] = None, where: str = "settings") -> Policy:
    """The policy from a provider's settings, each rule overridden by the command line's."""
    last = keep_last if keep_last is not None else (options.get("keep_last") or None)
    within = keep_within if keep_within is not None else (options.get("keep_within") or None)
    try:
        count = int(last) if last is not None else 0
    except ValueError:
        raise ConfigError(f"{where}: keep_last {last!r} is not a whole number") from None
    if count < 0:
        raise ConfigError(f"{where}: keep_last must be 0 (off) or more, not {count}")
    try:
        age = parse_duration(within) if within is not None else dt.timedelta(0)
    except ConfigError as e:
        raise ConfigError(f"{where}: keep_within {e}") from None
    return Policy(keep_last=count, keep_within=age, within_text=str(within or "").strip())


# --------------------------------------------------------------------------------------
# Generations and decisions
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Generation:
    provider: str
    id: str
    taken_at: Optional[dt.datetime]
    vms: int = 0
    mode: str = "full"

    @property
    def when(self) -> str:
        return self.taken_at.strftime("%Y-%m-%d %H:%M") if self.taken_at else "time unknown"

    @classmethod
    def of(cls, provider: str, info: GenerationInfo) -> "Generation":
        return cls(provider, info.id, info.taken_at, info.vms, info.mode)


@dataclass(frozen=True)
class Decision:
    generation: Generation
    reasons: Tuple[str, ...]          # why it is kept; empty: it is removed

    @property
    def keep(self) -> bool:
        return bool(self.reasons)


def _order(g: Generation) -> Tuple[dt.datetime, str]:
    return (g.taken_at or _EPOCH, g.id)


def decide(gens: Sequence[Generation], policy: Policy, now: dt.datetime) -> List[Decision]:
    """Keep or remove each generation of one provider, newest first (see the module doc)."""
    if policy.empty:
        raise ConfigError(NOTHING_KEPT)
    cutoff = now - policy.keep_within
    decisions = []
    for n, g in enumerate(sorted(gens, key=_order, reverse=True)):
        reasons = []
        if n == 0:
            reasons.append("the newest generation")
        if n < policy.keep_last:
            reasons.append(f"among the newest {policy.keep_last}")
        if policy.keep_within and g.taken_at is not None and g.taken_at >= cutoff:
            reasons.append(f"younger than {policy.within_text}")
        if g.taken_at is None:
            reasons.append("time unknown")
        decisions.append(Decision(g, tuple(reasons)))
    return decisions


def left_without_backup(newest: Iterable[Restorable],
                        removed: Set[Tuple[str, str]]) -> List[Restorable]:
    """The VMs whose newest backup in every provider is removed: their newest item, by name.

    ``newest`` is the newest item of each VM in each provider (a listing of every VM with
    ``every=False``, per provider). A policy removes a provider's generations older than a
    cut-off, so a VM whose newest item in a provider is removed has nothing left there.
    """
    best: Dict[Tuple[str, str], Restorable] = {}
    survives: Set[Tuple[str, str]] = set()
    for item in newest:
        key = (item.kind, item.vm_id)
        if (item.provider, item.generation) not in removed:
            survives.add(key)
        if key not in best or (item.taken_at or _EPOCH) > (best[key].taken_at or _EPOCH):
            best[key] = item
    return sorted((i for k, i in best.items() if k not in survives),
                  key=lambda i: (i.name, i.vm_id))


# --------------------------------------------------------------------------------------
# The command (talks to providers)
# --------------------------------------------------------------------------------------
def prune(handles: Sequence[ProviderHandle], engine: Engine, *, provider: Optional[str] = None,
          keep_last: Optional[int] = None, keep_within: Optional[str] = None,
          dry_run: bool = False, now: Optional[dt.datetime] = None,
          echo: Callable[[str], None] = print,
          warn: Callable[[str], None] = print,
          progress: Progress = NO_PROGRESS) -> int:
    """Apply the retention policy to each chosen provider; 0 ok, 1 partly failed, 2 failed.

    Every policy is checked before anything is listed or removed, what would be removed is
    printed (and the VMs that would be left with no backup in any provider), then each
    provider's ``forget_generations`` is called -- unless ``dry_run``, which calls nothing
    that changes a store.
    """
    chosen = [h for h in handles if provider in (None, h.name)]
    if provider and not chosen:
        raise BackupError(f"provider {provider!r} is not enabled (enabled: "
                          f"{', '.join(h.name for h in handles) or 'none'})")
    targets = []
    for h in chosen:
        if h.implements("forget_generations"):
            targets.append(h)
        else:
            echo(f"{h.name}: skipped: it keeps no generations of its own to prune "
                 "(no forget_generations)")
    if not targets:
        echo("nothing to prune")
        return 0
    policies = {}
    for h in targets:
        policy = make_policy(h.host.retention, keep_last=keep_last, keep_within=keep_within,
                             where=f"[provider:{h.name}]")
        if policy.empty:
            raise ConfigError(f"{NOTHING_KEPT} (or set keep_last / keep_within in "
                              f"[provider:{h.name}])")
        policies[h.name] = policy

    now = now or utcnow()
    failed: List[str] = []
    plans: Dict[str, List[Generation]] = {}
    for h in targets:
        try:
            gens = [Generation.of(h.name, g) for g in h.list_generations()]
        except BackupError as e:
            warn(f"error: {h.name}: cannot list its generations, not pruned: {e}")
            failed.append(h.name)
            continue
        decisions = decide(gens, policies[h.name], now)
        remove = [d.generation for d in decisions if not d.keep]
        plans[h.name] = remove
        echo(f"{h.name}: {policies[h.name].describe()}: {len(decisions)} generation(s), "
             f"keeping {len(decisions) - len(remove)}, removing {len(remove)}")
        for d in decisions:
            g = d.generation
            if not d.keep:
                echo(f"  {'would remove' if dry_run else 'remove'} {g.id}  {g.when}  "
                     f"{g.vms} VM(s)")
            elif dry_run:
                echo(f"  keep {g.id}  {g.when}  {g.vms} VM(s)  ({', '.join(d.reasons)})")

    removed = {(p, g.id) for p, gens in plans.items() for g in gens}
    if removed:
        # The newest item of every VM in every store-keeping provider: "no backup left"
        # counts the other stores too.
        keepers = [h for h in handles if h.implements("forget_generations")]
        listing = gather(keepers, engine, Query())
        for name, error in listing.errors.items():
            warn(f"warning: {name} could not list; VMs it holds are not counted below: {error}")
        for item in left_without_backup(listing.items, removed):
            when = f" of {item.taken_at:%Y-%m-%d %H:%M}" if item.taken_at else ""
            kind = "VM" if item.kind == "vm" else item.kind
            warn(f"warning: {kind} {item.name} ({item.vm_id}) would be left with no backup "
                 f"at all: its newest backup{when} in {item.provider} is removed by the policy")

    if dry_run:
        echo("dry run: nothing was removed")
        return 1 if failed else 0
    done = 0
    busy = [h for h in targets if h.name in plans]
    echo = progress.wrap(echo)
    for h in counted(busy, progress.task("prune", total=len(busy), unit="provider")):
        remove = plans[h.name]
        # called with nothing to remove too: it collects every stored OVF no generation
        # references, also those an abandoned run or an interrupted prune left behind
        try:
            result = h.forget_generations([g.id for g in remove])
        except BackupError as e:
            warn(f"error: {e}")
            failed.append(h.name)
            continue
        done += 1
        if result.generations or result.blobs:
            echo(f"{h.name}: removed {result.generations} generation(s) and {result.blobs} "
                 "stored OVF(s) no kept generation references")
        else:
            echo(f"{h.name}: nothing to remove")
    if failed:
        return 2 if not done and len(failed) == len(targets) else 1
    return 0
