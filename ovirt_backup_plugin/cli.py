"""``ovirt-backup``: the command line.

Exit codes: 0 success, 1 partial failure (some VMs, copies or providers failed, the rest
was done), 2 failure (nothing was done: settings, engine or every provider failed).
``restore --dry-run``: 0 the plan is clean, 1 the plan has problems (collisions, missing
cluster, network, vNIC profile, disk or template), 2 no plan could be made.
"""
from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import sys
from typing import Callable, Dict, List, Optional

from . import __version__
from .backup import runner
from .backup.lock import RunLock
from .backup.run import EXIT_FAILED
from .demo import run_demo
from .errors import BackupError
from .host import Config, Session, load_config
from .host.plugins import check_provider, get_plugin_manager, installed_providers
from .model import Query, Restorable, VnicProfileMapping
from .output import echo, print_listing, table, warn
from .restore.generations import generations_of
from .restore.history import history
from .restore.listing import gather, select
from .restore.picker import pick
from .restore.plan import make_plan, print_plan
from .restore.restore import RestoreOptions, restore
from .stores.ownership import attach
from .stores.retention import prune
from .testing.record import record_command

log = logging.getLogger("ovirt_backup_plugin")


# -- commands --------------------------------------------------------------------------
def cmd_backup(args: argparse.Namespace, session: Session) -> int:
    report = runner.guarded_backup(session, datacenter=args.datacenter, wait=args.wait,
                                   wait_timeout=args.wait_timeout, echo=echo, full=args.full)
    for line in report.skipped:
        warn(f"warning: skipped {line}")
    return report.exit_code


def _query(args: argparse.Namespace, *, every: bool = False) -> Query:
    return Query(vms=tuple(getattr(args, "vms", ()) or ()), datacenter=args.datacenter,
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
    interactive = sys.stdin is not None and sys.stdin.isatty()
    if not wanted and not interactive:
        raise BackupError("name the VMs, or run in a terminal to pick from a list")
    handles = session.chosen(args.provider)
    listing = gather(handles, session.engine, _query(args))
    items: List[Restorable]
    if wanted:
        items = select(listing, wanted)
    else:
        items = pick(listing, echo=echo)
        if not items:
            echo("nothing restored")
            return 0
    by_name = {h.name: h for h in handles}
    if args.dry_run:
        plan = make_plan(items, by_name, session.engine, copies=args.copies,
                         pattern=args.name_pattern, cluster=args.cluster, new_ids=args.new_ids)
        print_plan(plan, echo=echo)
        return plan.exit_code
    outcome = restore(items, by_name, session.engine, copies=args.copies,
                      pattern=args.name_pattern, cluster=args.cluster, new_ids=args.new_ids,
                      echo=echo, options=restore_options(args))
    echo(f"restored {len(outcome.restored)}, failed {len(outcome.failed)}")
    return outcome.exit_code


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


def cmd_providers(args: argparse.Namespace, config: Config) -> int:
    enabled = set(config.providers)
    rows = [("NAME", "DISTRIBUTION", "VERSION", "ENABLED", "KIND", "KEEPS")]
    for info in sorted(installed_providers().values(), key=lambda i: (not i.builtin, i.name)):
        if info.hidden and not args.all and info.name not in enabled:
            continue
        try:
            keeps = check_provider(get_plugin_manager([info.name]), info.name).keeps
        except BackupError as e:
            keeps = f"unusable: {e}"
        rows.append((info.name, info.distribution, info.version,
                     "yes" if info.name in enabled else "no",
                     "built-in" if info.builtin else "plugin", keeps))
    for line in table(rows):
        echo(line)
    return 0


def cmd_attach(args: argparse.Namespace, session: Session) -> int:
    handle = session.handle(args.provider)
    mode = "continue" if args.continue_ else "fresh" if args.fresh else None
    identity = session.engine.identity(session.config.system)
    return attach(handle, identity, mode=mode, echo=echo,
                  ask=input if sys.stdin.isatty() else None)


def cmd_history(args: argparse.Namespace, session: Session) -> int:
    return history(session.handles, session.engine, args.vm, provider=args.provider,
                   as_json=args.json, echo=echo, warn=warn)


def cmd_prune(args: argparse.Namespace, session: Session) -> int:
    # Removing holds the system's backup lock: a running backup may still need blobs that
    # no committed generation references yet.
    lock = RunLock(session.config.state_dir, session.config.system)
    if not args.dry_run:
        lock.acquire(wait=args.wait, timeout=args.wait_timeout)
    try:
        return prune(session.handles, session.engine, provider=args.provider,
                     keep_last=args.keep_last, keep_within=args.keep_within,
                     dry_run=args.dry_run, echo=echo, warn=warn)
    finally:
        lock.release()


# -- parsing ---------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ovirt-backup", description=(
        "Back up oVirt/RHV/OLVM VM configurations (OVF) to backup providers and restore them."))
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument("-c", "--config", help="settings file (default: $OVIRT_BACKUP_CONFIG)")
    p.add_argument("--insecure", action="store_true",
                   help="do not verify the engine's TLS certificate (warns; for tests only)")
    p.add_argument("-v", "--verbose", action="count", default=0)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    d = sub.add_parser("demo", help="back up and restore a replayed engine; needs nothing")
    d.add_argument("--state-dir", help="keep the demo catalog here (default: a temp dir)")

    b = sub.add_parser("backup", help="back up every VM's OVF to the enabled providers")
    b.add_argument("--datacenter", help="only this data center (default: all)")
    b.add_argument("--full", action="store_true", help="read every VM's OVF (a full sweep), "
                   "even when [backup] mode = auto would follow the engine's events")
    runner.add_lock_arguments(b)
    runner.add_run_parser(sub)

    ls = sub.add_parser("list", help="list what is restorable",
                        description="The newest backup of each VM (or every generation), "
                        "answered from each provider's index.")
    ls.add_argument("vms", nargs="*", metavar="VM", help="only these VMs: names, ids or "
                    "globs like 'web*' (default: all)")
    ls.add_argument("--datacenter")
    ls.add_argument("--cluster", dest="cluster_filter", metavar="CLUSTER")
    ls.add_argument("--provider", help="only this provider")
    ls.add_argument("--at", help="as it was at this time (ISO 8601, UTC)")
    ls.add_argument("--generation", help="only this generation (run id)")
    ls.add_argument("--limit", type=int, metavar="N", help="at most N items, newest first")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.add_argument("--generations", action="store_true",
                    help="every generation, not only the newest per VM")

    r = sub.add_parser("restore", help="restore VMs (by name, id or glob) into the engine")
    r.add_argument("vms", nargs="*", metavar="VM", help="VM names, ids or globs; none: pick "
                   "from a numbered list (in a terminal)")
    r.add_argument("--dry-run", action="store_true", help="print the plan against the engine "
                   "(collisions, missing cluster, networks, vNIC profiles, disks, templates) "
                   "and change nothing; exit 1 when it has problems")
    r.add_argument("--copies", type=int, default=1, help="copies of each VM (new ids, names "
                   "from --name-pattern)")
    r.add_argument("--name-pattern", help="names of copies, default '{name}-{n}'")
    r.add_argument("--cluster", help="target cluster (default: the cluster recorded at backup)")
    r.add_argument("--new-ids", action="store_true", help="give a single copy new ids too")
    r.add_argument("--provider", help="restore from this provider only")
    r.add_argument("--generation", help="restore this generation (run id)")
    r.add_argument("--at", help="restore the newest generation at or before this time "
                   "(ISO 8601, UTC)")
    r.add_argument("--datacenter")
    reg = r.add_argument_group("registering from a storage domain (msd)")
    reg.add_argument("--vnic-profile-map", action="append", default=[],
                     metavar="NETWORK/PROFILE=PROFILE_ID",
                     help="map a vNIC profile of the source to one of this engine (repeat)")
    reg.add_argument("--no-partial-import", action="store_true",
                     help="fail when a disk of the VM is missing (default: import without it)")
    reg.add_argument("--keep-bad-macs", action="store_true",
                     help="do not reassign MACs outside this engine's MAC pools")

    hi = sub.add_parser("history", help="when a VM's configuration changed, and what changed")
    hi.add_argument("vm", metavar="VM", help="VM name or id")
    hi.add_argument("--provider", help="only this provider's generations")
    hi.add_argument("--json", action="store_true", help="machine-readable output")

    pn = sub.add_parser("prune", help="remove old generations by a retention policy",
                        description="A generation is kept if it is among the newest N "
                        "generations of its provider (--keep-last) or younger than a duration "
                        "(--keep-within); the newest generation is always kept. Defaults: "
                        "keep_last / keep_within in [provider:NAME]; an option here overrides "
                        "the setting, 0 turns a rule off. With no rule, prune refuses to run.")
    pn.add_argument("--provider", help="only this provider")
    pn.add_argument("--keep-last", type=int, metavar="N", help="keep the newest N generations")
    pn.add_argument("--keep-within", metavar="DURATION", help="keep generations younger than "
                    "this: 30d, 12h, 2w, 6mo (months), 1y, 1y6mo")
    pn.add_argument("--dry-run", action="store_true", help="print what would be removed; "
                    "change nothing")
    runner.add_lock_arguments(pn)

    at = sub.add_parser("attach", help="attach this engine to a provider's existing store")
    at.add_argument("provider")
    how = at.add_mutually_exclusive_group()
    how.add_argument("--continue", dest="continue_", action="store_true",
                     help="keep the history; the next run adds a generation")
    how.add_argument("--fresh", action="store_true",
                     help="set the existing backups aside (not deleted) and start from scratch")

    pr = sub.add_parser("providers", help="list installed backup providers")
    pr.add_argument("--all", action="store_true", help="also hidden ones (debug)")

    rec = sub.add_parser("record", help="run a command against the engine and record its "
                         "traffic (secrets scrubbed) into a vcrpy cassette for replay")
    rec.add_argument("--cassette", required=True, metavar="FILE",
                     help="the cassette to write (.yaml, or .json)")
    rec.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- COMMAND",
                     help="the ovirt-backup command to record, after --")
    return p


COMMANDS: Dict[str, Callable[[argparse.Namespace, Session], int]] = {
    "backup": cmd_backup, "list": cmd_list, "restore": cmd_restore, "attach": cmd_attach,
    "history": cmd_history, "prune": cmd_prune}


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=[logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)],
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if args.insecure:
        warn("warning: --insecure: the engine's TLS certificate is NOT verified")
    session = None
    try:
        if args.command == "demo":
            return run_demo(state_dir=args.state_dir, echo=echo)
        if args.command == "record":
            return record_command(args.config, args.cassette, args.argv, insecure=args.insecure)
        config = load_config(args.config, insecure=args.insecure)
        if args.command == "providers":
            return cmd_providers(args, config)
        if args.command == "run":
            return runner.cmd_run(args, config, lambda: Session.open(config), echo=echo)
        session = Session.open(config)
        return COMMANDS[args.command](args, session)
    except BackupError as e:
        warn(f"error: {e}")
        return EXIT_FAILED
    except KeyboardInterrupt:
        warn("interrupted")
        return 130
    except BrokenPipeError:
        # the reader went away (``| head``): end quietly, as other tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    finally:
        if session is not None:
            session.close()


def _parse_time(text: str) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BackupError(f"--at {text!r} is not an ISO 8601 time (e.g. 2026-11-26T08:00)") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


if __name__ == "__main__":
    sys.exit(main())
