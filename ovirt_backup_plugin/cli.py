"""``ovirt-backup``: the command line.

Exit codes: 0 success, 1 partial failure (some VMs, copies or providers failed, the rest
was done), 2 failure (nothing was done: settings, engine or every provider failed).
``restore --dry-run``: 0 the plan is clean, 1 the plan has problems (collisions, missing
cluster, network, vNIC profile, disk or template), 2 no plan could be made.
"""
from __future__ import annotations

import argparse
import datetime as dt
import importlib
import logging
import os
import sys
from typing import Callable, Dict, List, Optional

from . import __version__, completion, logs
from .backup import runner
from .backup.lock import RunLock
from .backup.run import EXIT_FAILED
from .engine.transport import connection_warnings
from .errors import BackupError
from .host import Config, Session, load_config
from .host.plugins import check_provider, get_plugin_manager, installed_providers
from .host.sealing import write_new_key
from .model import Query, Restorable, VnicProfileMapping
from .output import echo, echo_json, print_listing, table, warn
from .progress import for_terminal
from .restore.batch import CONFIRM_ABOVE, DEFAULT_PARALLEL, RestoreSettings, restore_many
from .restore.generations import generations_of
from .restore.history import history
from .restore.listing import gather, select
from .restore.mapping import mapping_from_args
from .restore.picker import pick
from .restore.plan import make_plan, print_plan, print_summary
from .restore.restore import RestoreOptions
from .restore.selection import exclude, read_vm_file
from .stores import status
from .stores.check import check
from .stores.ownership import attach
from .stores.retention import prune

log = logging.getLogger("ovirt_backup_plugin")


# -- commands --------------------------------------------------------------------------
def cmd_backup(args: argparse.Namespace, session: Session) -> int:
    return runner.cmd_backup(args, session, echo=echo, warn=warn, progress=for_terminal())


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


def cmd_keygen(args: argparse.Namespace, config: Config) -> int:
    key = write_new_key(args.file)
    echo(f"wrote a new encryption key to {args.file} (mode 0600), key id {key.id}")
    echo("keep a copy offline, with the engine's own backup: without it the backups sealed "
         "with it cannot be read by anyone")
    return 0


def cmd_check(args: argparse.Namespace, session: Session) -> int:
    return check(session.chosen(args.provider), read_data=args.read_data, echo=echo, warn=warn,
                 progress=for_terminal())


def cmd_attach(args: argparse.Namespace, session: Session) -> int:
    handle = session.handle(args.provider)
    mode = "continue" if args.continue_ else "fresh" if args.fresh else None
    identity = session.engine.identity(session.config.system)
    return attach(handle, identity, mode=mode, echo=echo,
                  ask=input if sys.stdin.isatty() else None)


def cmd_history(args: argparse.Namespace, session: Session) -> int:
    return history(session.handles, session.engine, args.vm, provider=args.provider,
                   as_json=args.json, echo=echo, warn=warn, out_json=echo_json)


def cmd_prune(args: argparse.Namespace, session: Session) -> int:
    # Removing holds the system's backup lock: a running backup may still need blobs that
    # no committed generation references yet.
    lock = RunLock(session.config.state_dir, session.config.system)
    if not args.dry_run:
        lock.acquire(wait=args.wait, timeout=args.wait_timeout)
    try:
        return prune(session.handles, session.engine, provider=args.provider,
                     keep_last=args.keep_last, keep_within=args.keep_within,
                     dry_run=args.dry_run, echo=echo, warn=warn, progress=for_terminal())
    finally:
        lock.release()


def cmd_status(args: argparse.Namespace, session: Session) -> int:
    report = status.check(session.chosen(args.provider), session.engine, session.config,
                          max_age=args.max_age)
    status.print_status(report, as_json=args.json, echo=echo, warn=warn, echo_json=echo_json)
    return report.exit_code


def _max_age(text: str) -> dt.timedelta:
    seconds = runner.parse_duration(text)
    return dt.timedelta(seconds=seconds)


# -- parsing ---------------------------------------------------------------------------
RESTORE_DESCRIPTION = f"""\
Restore VMs from their newest backup (or --generation / --at): by name, id or glob, every
VM of a data center or cluster (--all --datacenter X), or those a file lists; --exclude
leaves some out. In a terminal with no VM named, filter and pick from a list.

Templates come first, then the VMs, imported --parallel K at a time, each on its own engine
connection; locks and a busy engine are retried with back-off. Every import carries a
Correlation-Id: afterwards its audit events and the created VM (its NICs, its disks) are
read, and a VM the engine degraded is reported "restored with warnings" (exit 1). Running
the same restore again skips what an earlier run of it created, and says so.

Copies (new ids) restored into the engine the backup came from get their NICs unplugged
(their guests carry the original's IP addresses): --nics-plugged keeps them. Into another
engine, map networks, vNIC profiles and clusters (--map-*). Restoring more than
{CONFIRM_ABOVE} copies prints the plan's summary and asks (--yes for scripts).

exit codes: 0 every copy restored cleanly (or already there), 1 some came back degraded or
failed, 2 nothing was restored; with --dry-run: 0 clean plan, 1 problems, 2 no plan."""

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

    r = sub.add_parser(
        "restore", help="restore VMs (by name, id, glob, data center, file) into this engine "
        "or another", formatter_class=argparse.RawDescriptionHelpFormatter,
        description=RESTORE_DESCRIPTION)
    r.add_argument("vms", nargs="*", metavar="VM", help="VM names, ids or globs like 'web*' "
                   "(quote them); none: --all, --from-file, or pick in a terminal")
    sel = r.add_argument_group("what to restore")
    sel.add_argument("--all", action="store_true", help="every VM in scope (with "
                     "--datacenter / --from-cluster: every VM there)")
    sel.add_argument("--datacenter", help="only VMs backed up in this data center")
    sel.add_argument("--from-cluster", dest="cluster_filter", metavar="CLUSTER",
                     help="only VMs backed up in this cluster (--cluster is where to restore)")
    sel.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                     help="leave out VMs whose name matches (repeat)")
    sel.add_argument("--from-file", metavar="FILE", help="VMs listed in FILE: one name, id "
                     "or glob per line, or what 'list --json' prints")
    sel.add_argument("--provider", help="restore from this provider only")
    sel.add_argument("--generation", help="restore this generation (run id)")
    sel.add_argument("--at", help="restore the newest generation at or before this time "
                     "(ISO 8601, UTC)")
    how = r.add_argument_group("how")
    how.add_argument("--dry-run", action="store_true", help="print the plan against the engine "
                     "(cluster, BIOS type, level, data center, MAC pool, collisions, templates, "
                     "networks, vNIC profiles, disks, what cannot come back) and change "
                     "nothing; exit 1 when it has problems")
    how.add_argument("--copies", type=int, default=1, help="copies of each VM (new ids, names "
                     "from --name-pattern)")
    how.add_argument("--name-pattern", help="names of copies, default '{name}-{n}'")
    how.add_argument("--cluster", help="target cluster of every copy (default: the cluster "
                     "recorded at backup, after --map-cluster)")
    how.add_argument("--new-ids", action="store_true", help="give a single copy new ids too")
    how.add_argument("--parallel", type=int, default=DEFAULT_PARALLEL, metavar="K",
                     help=f"imports in flight, each on its own engine connection (default "
                     f"{DEFAULT_PARALLEL})")
    how.add_argument("--wait-locked", type=float, default=600.0, metavar="SECONDS",
                     help="how long to follow an import the engine answered 202 (4.4, 4.5.0) "
                     "until the VM leaves image_locked (default 600)")
    how.add_argument("--json", action="store_true", help="print every copy's outcome (or the "
                     "plan) as JSON")
    how.add_argument("-y", "--yes", action="store_true", help=f"restore more than "
                     f"{CONFIRM_ABOVE} copies without asking (for scripts)")
    plug = how.add_mutually_exclusive_group()
    plug.add_argument("--nics-unplugged", action="store_true", help="restore every NIC "
                      "unplugged and unlinked")
    plug.add_argument("--nics-plugged", action="store_true", help="keep NICs as the OVF has "
                      "them, also for copies into the engine the backup came from")
    mp = r.add_argument_group("into another engine")
    mp.add_argument("--map-network", action="append", default=[], metavar="SRC=DST",
                    help="NICs on network SRC go to DST (its default profile follows; repeat)")
    mp.add_argument("--map-vnic-profile", action="append", default=[], metavar="SRC=DST",
                    help="vNIC profile SRC becomes DST; NETWORK/PROFILE or PROFILE (repeat)")
    mp.add_argument("--map-cluster", action="append", default=[], metavar="SRC=DST",
                    help="VMs of cluster SRC go to cluster DST (repeat)")
    mp.add_argument("--map-file", metavar="FILE", help="mappings in a YAML or JSON file: "
                    "networks:, vnic_profiles:, clusters: (SRC: DST); the options win")
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

    ck = sub.add_parser("check", help="check that every generation's stored OVFs are there "
                        "(--read-data: and read back whole)",
                        description="Every generation's references resolve to a stored OVF; "
                        "with --read-data every stored OVF is read once, decrypted, checked "
                        "against its hash and parsed as at backup. Problems are reported per "
                        "VM and generation (exit 1); stored OVFs no generation references are "
                        "reported too (prune collects them). Exit 0 when clean.")
    ck.add_argument("--provider", help="only this provider")
    ck.add_argument("--read-data", action="store_true",
                    help="read every stored OVF once (decrypt, hash-check, parse)")

    kg = sub.add_parser("keygen", help="write a new encryption key file (for [backup] "
                        "encryption_key_file)")
    kg.add_argument("file", metavar="FILE", help="the key file to create (never overwritten)")

    st = sub.add_parser("status", help="are the backups fresh? (exit 1 when anything is stale)",
                        description=status.DESCRIPTION,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    st.add_argument("--max-age", type=_max_age, default=status.DEFAULT_MAX_AGE,
                    metavar="DURATION", help="older than this is stale: 2h, 1d (default 1d)")
    st.add_argument("--provider", help="only this provider")
    st.add_argument("--json", action="store_true", help="machine-readable output")

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
    "history": cmd_history, "prune": cmd_prune, "check": cmd_check,
    "status": cmd_status}
#: Commands that run the test kit (a replay engine, a recording proxy): looked up by name
#: when asked for, so that no other command pays for loading vcrpy and the kit.
KIT_COMMANDS = {"demo": "ovirt_backup_plugin.demo:cli_demo",
                "record": "ovirt_backup_plugin.testing.record:cli_record"}


def kit_command(name: str) -> Callable[[argparse.Namespace], int]:
    module, _, function = KIT_COMMANDS[name].partition(":")
    command: Callable[[argparse.Namespace], int] = getattr(importlib.import_module(module),
                                                           function)
    return command


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    completion.enable(parser)
    args = parser.parse_args(argv)
    logs.setup(args.verbose)
    session = None
    try:
        if args.command == "demo":
            return kit_command("demo")(args)
        config = load_config(args.config, insecure=args.insecure)
        for line in connection_warnings(config.engine):
            warn(line)
        if args.command == "record":
            return kit_command("record")(args)
        if args.command == "keygen":
            return cmd_keygen(args, config)
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
