"""``ovirt-backup list``, ``restore`` and ``history``: what the command line runs (their
arguments: :mod:`.arguments`). Loaded only when one of them is asked for."""
from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import List, Optional

from ..errors import BackupError
from ..host import Session
from ..model import Query, Restorable, VnicProfileMapping
from ..output import echo, echo_json, print_listing, warn
from ..progress import for_terminal
from .arguments import CONFIRM_ABOVE
from .batch import RestoreSettings, restore_many
from .generations import generations_of
from .history import history
from .listing import gather, select
from .mapping import mapping_from_args
from .picker import pick
from .plan import make_plan, print_plan, print_summary
from .restore import RestoreOptions
from .selection import exclude, read_vm_file


def _query(args: argparse.Namespace, *, every: bool = False,
           vms: Optional[List[str]] = None) -> Query:
    vms = list(getattr(args, "vms", ()) or ()) if vms is None else vms
    return Query(vms=tuple(vms), datacenter=args.datacenter,
                 cluster=getattr(args, "cluster_filter", None),
                 at=_parse_time(args.at) if getattr(args, "at", None) else None,
                 generation=getattr(args, "generation", None), every=every,
                 limit=getattr(args, "limit", None))


def cmd_list(args: argparse.Namespace, session: Session) -> int:
    handles = session.chosen(args.provider)
    listing = gather(handles, session.engine, _query(args, every=args.generations))
    print_listing(listing, as_json=args.json, every=args.generations,
                  generations=generations_of(handles) if args.generations else None)
    return 1 if listing.errors else 0


def cmd_restore(args: argparse.Namespace, session: Session) -> int:
    wanted: List[str] = list(args.vms)
    if args.from_file:
        wanted += read_vm_file(args.from_file)
    if wanted and args.all:
        raise BackupError("give VM names (or --from-file) or --all, not both")
    interactive = sys.stdin is not None and sys.stdin.isatty()
    if not wanted and not args.all and not interactive:
        raise BackupError("name the VMs (names, ids or globs), give --all or --from-file, or "
                          "run in a terminal to pick from a list")
    settings = restore_settings(args)     # bad options fail before anything is read
    handles = session.chosen(args.provider)
    listing = gather(handles, session.engine, _query(args, vms=wanted))
    items: List[Restorable]
    if wanted:
        items = select(listing, wanted)
    elif args.all:
        for provider, error in listing.errors.items():
            warn(f"warning: provider {provider} could not list: {error}")
        items = listing.newest()
    else:
        items = pick(listing, echo=echo)
        if not items:
            echo("nothing restored")
            return 0
    items = exclude(items, args.exclude)
    if not items:
        echo("nothing to restore" + (" (every selected VM is excluded)" if args.exclude else ""))
        return 0
    by_name = {h.name: h for h in handles}
    plan_args = dict(copies=args.copies, pattern=args.name_pattern, cluster=args.cluster,
                     new_ids=args.new_ids, mapping=settings.mapping,
                     nics_unplugged=settings.nics_unplugged)
    if args.dry_run:
        plan = make_plan(items, by_name, session.engine, **plan_args)
        if args.json:
            echo_json(plan.to_dict())
        else:
            print_plan(plan, echo=echo)
        return plan.exit_code
    count = len(items) * args.copies
    if count > CONFIRM_ABOVE and not args.yes:
        if not interactive:
            raise BackupError(f"this restores {count} copies: confirm with --yes (see what "
                              "it would do with --dry-run first); nothing was changed")
        plan = make_plan(items, by_name, session.engine, **plan_args)
        print_summary(plan, echo=echo)
        try:
            answer = input(f"restore {count} copies into {session.engine.url}? [y/N] ")
        except EOFError:                  # Ctrl-D: no
            answer = ""
            echo("")
        if answer.strip().lower() not in ("y", "yes"):
            echo("nothing restored")
            return 0
    report = restore_many(items, by_name, session.engine, settings,
                          echo=(lambda line: None) if args.json else echo,
                          progress=for_terminal())
    if args.json:
        echo_json(report.to_dict())
    else:
        echo(report.summary())
    return report.exit_code


def restore_options(args: argparse.Namespace) -> RestoreOptions:
    """The options of registering a VM from a storage domain (the msd provider)."""
    mappings = []
    for text in args.vnic_profile_map:
        source, sep, target = text.partition("=")
        if not sep or not source or not target:
            raise BackupError(f"--vnic-profile-map {text!r}: use NETWORK/PROFILE=TARGET_PROFILE_ID")
        mappings.append(VnicProfileMapping(source, target))
    return RestoreOptions(allow_partial_import=not args.no_partial_import,
                          reassign_bad_macs=not args.keep_bad_macs,
                          vnic_profile_mappings=tuple(mappings))


def restore_settings(args: argparse.Namespace) -> RestoreSettings:
    if args.parallel < 1:
        raise BackupError("--parallel must be at least 1")
    if args.copies < 1:
        raise BackupError("--copies must be at least 1")
    mapping = mapping_from_args(networks=args.map_network, profiles=args.map_vnic_profile,
                                clusters=args.map_cluster, map_file=args.map_file)
    unplugged = True if args.nics_unplugged else False if args.nics_plugged else None
    return RestoreSettings(copies=args.copies, pattern=args.name_pattern, cluster=args.cluster,
                           new_ids=args.new_ids, options=restore_options(args),
                           mapping=mapping, nics_unplugged=unplugged, parallel=args.parallel,
                           wait_locked=args.wait_locked)


def cmd_history(args: argparse.Namespace, session: Session) -> int:
    return history(session.handles, session.engine, args.vm, provider=args.provider,
                   as_json=args.json, echo=echo, warn=warn, out_json=echo_json)


def _parse_time(text: str) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BackupError(f"--at {text!r} is not an ISO 8601 time (e.g. 2026-11-26T08:00)") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)
