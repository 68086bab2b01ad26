"""The command line of ``backup`` and ``run``: their arguments and help, apart from the
code that runs them (:mod:`.runner`), so that the parser of every command loads none of it."""
from __future__ import annotations

import argparse

from .. import durations

DEFAULT_WAIT_TIMEOUT = 3600.0

RUN_EPILOG = """\
exit codes:
  0  every run that finished was ok (also: stopped by SIGTERM/SIGINT after ok runs)
  1  the worst finished run was partial (some VMs or providers failed, the rest was done)
  2  the worst finished run failed, or the runner could not start (settings, lock busy)
  130  a second SIGINT/SIGTERM interrupted a run at once
With --once: the exit code of that one run.

signals: SIGTERM or SIGINT between runs exits at once; during a run, the run stops at the
next VM and is abandoned (no half generation is kept), then the runner exits. A run
abandoned this way does not count in the exit code.

interval: 30s, 15m, 2h, 1d, 1h30m or plain seconds; at least 1s (below 1m it warns).
Runs never overlap; the next one starts one interval after the previous one started."""


def parse_duration(text: str) -> float:
    """Seconds in a duration (see :mod:`.durations`) or a plain number; at least 1s."""
    try:
        seconds = durations.parse_duration(text, bare_seconds=True).total_seconds()
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    if seconds < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is shorter than one second")
    return seconds


def add_lock_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--wait", action="store_true",
                        help="when another backup of this system is running, wait for it "
                             "(default: fail with exit code 2)")
    parser.add_argument("--wait-timeout", type=parse_duration, default=DEFAULT_WAIT_TIMEOUT,
                        metavar="DURATION",
                        help="give up waiting after this long (default 1h)")


def add_run_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> argparse.ArgumentParser:
    r = sub.add_parser(
        "run", help="back up now and then every interval, in the foreground (a service)",
        description="Back up now, then every --every interval, until SIGTERM/SIGINT; or\n"
                    "once (--once, for systemd timers). Each run's summary is logged; with\n"
                    "[backup] events = yes it is also posted to the engine's Events tab.",
        epilog=RUN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    when = r.add_mutually_exclusive_group(required=True)
    when.add_argument("--every", type=parse_duration, metavar="DURATION",
                      help="interval between the starts of two runs: 30s, 15m, 2h, 1d")
    when.add_argument("--once", action="store_true", help="one run; exit with its code")
    r.add_argument("--runs", type=int, metavar="N",
                   help="stop after N runs (default: run until stopped)")
    r.add_argument("--datacenter", help="only this data center (default: all)")
    add_lock_arguments(r)
    return r


def add_parsers(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """``backup`` and ``run``."""
    b = sub.add_parser("backup", help="back up every VM's OVF to the enabled providers")
    b.add_argument("--datacenter", help="only this data center (default: all)")
    b.add_argument("--full", action="store_true", help="read every VM's OVF (a full sweep), "
                   "even when [backup] mode = auto would follow the engine's events")
    add_lock_arguments(b)
    add_run_parser(sub)
