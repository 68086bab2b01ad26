"""The command line of ``prune``, ``attach``, ``check`` and ``status``: their arguments,
help and defaults, apart from the code that runs them (:mod:`.commands`), so that the
parser of every command loads none of it."""
from __future__ import annotations

import argparse
import datetime as dt

from ..backup.arguments import add_lock_arguments, parse_duration

DEFAULT_MAX_AGE = dt.timedelta(days=1)      # engine-backup alerts after a day without one
STATUS_DESCRIPTION = """\
Per provider that keeps generations: its newest committed generation and its age, and
how many VMs it covers (read from its index: cheap at any size); providers that could
not be read; and the VMs the engine still lists whose newest backup is older than
--max-age (skipped run after run: the engine withheld the OVF, or it did not parse).

exit codes:
  0  everything is fresh
  1  something is stale: a provider's newest generation is older than --max-age, a
     provider has no generation or could not be read, or a VM has no recent backup
  2  settings errors"""


def _max_age(text: str) -> dt.timedelta:
    return dt.timedelta(seconds=parse_duration(text))


def add_parsers(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """``prune``, ``attach``, ``check`` and ``status``."""
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
    add_lock_arguments(pn)

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

    st = sub.add_parser("status", help="are the backups fresh? (exit 1 when anything is stale)",
                        description=STATUS_DESCRIPTION,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    st.add_argument("--max-age", type=_max_age, default=DEFAULT_MAX_AGE,
                    metavar="DURATION", help="older than this is stale: 2h, 1d (default 1d)")
    st.add_argument("--provider", help="only this provider")
    st.add_argument("--json", action="store_true", help="machine-readable output")
