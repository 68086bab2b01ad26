"""What commands print: lines, tables and listings, for a terminal or a pipe.

Every human-readable line goes through here, so that how engine-supplied text is shown is
decided in one place: :func:`echo` and :func:`warn` print one line each, with every
control, format and bidi character escaped visibly (:func:`~.terminal.safe`: a VM name
holding a newline, a CR or U+202E cannot split or rewrite a line); :func:`table` keeps
columns aligned by display width; JSON (:func:`echo_json`) escapes them as ``\\uXXXX``.
"""
from __future__ import annotations

import sys
from typing import Callable, List, Mapping, Optional, Sequence

from .model import EPOCH, GenerationInfo
from .restore.generations import mode_label
from .restore.listing import Listing
from .terminal import safe, to_json
from .terminal import table as _table

__all__ = ["echo", "warn", "table", "print_listing", "echo_json"]


def echo(text: str = "") -> None:
    """One line on stdout, made safe (a newline inside ``text`` is shown as ``\\n``)."""
    print(safe(text), flush=True)


def warn(text: str) -> None:
    """One line on stderr, made safe."""
    print(safe(text), file=sys.stderr, flush=True)


def echo_json(data: object) -> None:
    """``data`` as JSON on stdout, every non-ASCII and control character escaped."""
    print(to_json(data), flush=True)


def table(rows: Sequence[Sequence[str]]) -> List[str]:
    """Rows as aligned columns (the first row is the heading), every cell made safe."""
    return _table(rows)


def print_listing(listing: Listing, *, as_json: bool = False, every: bool = False,
                  out: Callable[[str], None] = echo,
                  generations: Optional[Mapping[str, GenerationInfo]] = None) -> None:
    """``ovirt-backup list``: the newest backup of each VM, or every generation
    (``generations``: what the providers recorded of each, to show its mode)."""
    for provider, error in listing.errors.items():
        warn(f"warning: provider {provider} could not list: {error}")
    items = sorted(listing.items, key=lambda i: (i.name, i.vm_id, i.taken_at or EPOCH)) \
        if every else listing.newest()
    if as_json:
        rows = []
        for item in items:
            d = item.to_dict()
            d["providers"] = listing.holders(item)
            d["generations"] = item.generations
            if generations is not None:
                d["mode"] = mode_label(generations.get(item.generation))
            rows.append(d)
        if out is echo:
            echo_json(rows)
        else:
            out(to_json(rows))
        return
    if not items:
        out("nothing to restore")
        return
    lines: List[Sequence[str]] = [(
        "NAME", "ID", "KIND", "DATA CENTER", "CLUSTER", "TAKEN (UTC)", "GENERATION",
        *(("MODE",) if generations is not None else ()), "FROM", "GENERATIONS", "NOTE")]
    for i in items:
        taken = i.taken_at.strftime("%Y-%m-%d %H:%M") if i.taken_at else "-"
        mode = (mode_label(generations.get(i.generation)),) if generations is not None else ()
        lines.append((i.name, i.vm_id, i.kind, i.datacenter or "-", i.cluster or "-", taken,
                      i.generation, *mode, ",".join(listing.holders(i)),
                      "-" if i.generations is None else str(i.generations),
                      ",".join(i.flags)))
    for line in table(lines):
        out(line)
