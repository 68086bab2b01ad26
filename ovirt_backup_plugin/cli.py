"""``ovirt-backup``: the command line.

Exit codes: 0 success, 1 partial failure (some VMs, copies or providers failed, the rest
was done), 2 failure (nothing was done: settings, engine or every provider failed).
``restore --dry-run``: 0 the plan is clean, 1 the plan has problems (collisions, missing
cluster, network, vNIC profile, disk or template), 2 no plan could be made.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from typing import Callable, List, Optional

from . import __version__, completion, logs
from .backup import arguments as backup_arguments
from .engine.transport import connection_warnings
from .errors import EXIT_FAILED, BackupError
from .host import Config, Session, load_config
from .host.plugins import check_provider, get_plugin_manager, installed_providers
from .host.sealing import write_new_key
from .output import echo, table, warn
from .restore import arguments as restore_arguments
from .stores import arguments as store_arguments

log = logging.getLogger("ovirt_backup_plugin")


# -- commands --------------------------------------------------------------------------
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
    backup_arguments.add_parsers(sub)
    restore_arguments.add_parsers(sub)
    store_arguments.add_parsers(sub)

    kg = sub.add_parser("keygen", help="write a new encryption key file (for [backup] "
                        "encryption_key_file)")
    kg.add_argument("file", metavar="FILE", help="the key file to create (never overwritten)")

    pr = sub.add_parser("providers", help="list installed backup providers")
    pr.add_argument("--all", action="store_true", help="also hidden ones (debug)")

    rec = sub.add_parser("record", help="run a command against the engine and record its "
                         "traffic (secrets scrubbed) into a vcrpy cassette for replay")
    rec.add_argument("--cassette", required=True, metavar="FILE",
                     help="the cassette to write (.yaml, or .json)")
    rec.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- COMMAND",
                     help="the ovirt-backup command to record, after --")
    return p


#: What each command runs, by ``module:function``. A command's module is imported when that
#: command is asked for (pip's habit): ``backup`` does not load the restore code, ``list``
#: neither the capture nor the restore code; each part keeps its commands' arguments in a
#: light module of its own (``backup/arguments.py``, ...) that the parser above uses.
#: These run with a session (settings read, providers registered):
COMMANDS = {
    "backup": "ovirt_backup_plugin.backup.commands:cmd_backup",
    "list": "ovirt_backup_plugin.restore.commands:cmd_list",
    "restore": "ovirt_backup_plugin.restore.commands:cmd_restore",
    "history": "ovirt_backup_plugin.restore.commands:cmd_history",
    "attach": "ovirt_backup_plugin.stores.commands:cmd_attach",
    "prune": "ovirt_backup_plugin.stores.commands:cmd_prune",
    "check": "ovirt_backup_plugin.stores.commands:cmd_check",
    "status": "ovirt_backup_plugin.stores.commands:cmd_status"}
#: These with the settings only (``run`` opens a session per run):
CONFIG_COMMANDS = {"run": "ovirt_backup_plugin.backup.commands:cmd_run"}
#: Commands that run the test kit (a replay engine, a recording proxy): no other command
#: pays for loading vcrpy and the kit.
KIT_COMMANDS = {"demo": "ovirt_backup_plugin.demo:cli_demo",
                "record": "ovirt_backup_plugin.testing.record:cli_record"}


def command(target: str) -> Callable[..., int]:
    """The function ``module:function`` names, its module imported now."""
    module, _, function = target.partition(":")
    found: Callable[..., int] = getattr(importlib.import_module(module), function)
    return found


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    completion.enable(parser)
    args = parser.parse_args(argv)
    logs.setup(args.verbose)
    session = None
    try:
        if args.command == "demo":
            return command(KIT_COMMANDS["demo"])(args)
        config = load_config(args.config, insecure=args.insecure)
        for line in connection_warnings(config.engine):
            warn(line)
        if args.command == "record":
            return command(KIT_COMMANDS["record"])(args)
        if args.command == "keygen":
            return cmd_keygen(args, config)
        if args.command == "providers":
            return cmd_providers(args, config)
        if args.command in CONFIG_COMMANDS:
            return command(CONFIG_COMMANDS[args.command])(args, config)
        session = Session.open(config)
        return command(COMMANDS[args.command])(args, session)
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


if __name__ == "__main__":
    sys.exit(main())
