"""``ovirt-backup prune``, ``attach``, ``check`` and ``status``: what the command line runs
(their arguments: :mod:`.arguments`). Loaded only when one of them is asked for."""
from __future__ import annotations

import argparse
import sys

from ..backup.lock import RunLock
from ..host import Session
from ..output import echo, echo_json, warn
from ..progress import for_terminal
from . import status
from .check import check
from .ownership import attach
from .retention import prune


def cmd_check(args: argparse.Namespace, session: Session) -> int:
    return check(session.chosen(args.provider), read_data=args.read_data, echo=echo, warn=warn,
                 progress=for_terminal())


def cmd_attach(args: argparse.Namespace, session: Session) -> int:
    handle = session.handle(args.provider)
    mode = "continue" if args.continue_ else "fresh" if args.fresh else None
    identity = session.engine.identity(session.config.system)
    return attach(handle, identity, mode=mode, echo=echo,
                  ask=input if sys.stdin.isatty() else None)


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
