"""``ovirt-backup backup`` and ``run``: what the command line runs (their arguments:
:mod:`.arguments`; the work: :mod:`.runner`). Loaded only when one of them is asked for."""
from __future__ import annotations

import argparse

from ..host import Config, Session
from ..output import echo, warn
from ..progress import for_terminal
from . import runner


def cmd_backup(args: argparse.Namespace, session: Session) -> int:
    return runner.cmd_backup(args, session, echo=echo, warn=warn, progress=for_terminal())


def cmd_run(args: argparse.Namespace, config: Config) -> int:
    return runner.cmd_run(args, config, lambda: Session.open(config), echo=echo)
