"""The interactive pick of what to restore (``restore`` in a terminal with no VM named)."""
from __future__ import annotations

import re
from typing import Callable, List, Set

from ..model import Restorable
from ..terminal import table
from .listing import Listing

__all__ = ["parse_selection", "pick"]

_RANGE = re.compile(r"\A(\d+)(?:-(\d+))?\Z")


def parse_selection(text: str, count: int) -> List[int]:
    """Numbers (1-based) picked from a list of ``count``: ``"1 3 5-7"`` → [1, 3, 5, 6, 7].

    Separators are spaces or commas; ``all`` picks everything; empty text or ``q`` picks
    nothing (cancel). The result is sorted and without duplicates. Anything else raises
    ValueError with a message for the user.
    """
    text = text.strip().lower()
    if text in ("", "q", "quit"):
        return []
    if text in ("all", "*"):
        return list(range(1, count + 1))
    picked: Set[int] = set()
    for token in re.split(r"[\s,]+", text):
        match = _RANGE.match(token)
        if not match:
            raise ValueError(f"{token!r} is not a number or a range like 5-7")
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) else first
        if first > last:
            raise ValueError(f"{token!r}: a range goes from low to high (e.g. {last}-{first})")
        for n in (first, last):
            if not 1 <= n <= count:
                raise ValueError(f"{n} is not in the list (1-{count})")
        picked.update(range(first, last + 1))
    return sorted(picked)


def pick(listing: Listing, *, echo: Callable[[str], None] = print,
         read: Callable[[str], str] = input) -> List[Restorable]:
    """Show the newest generation of each VM, numbered, and read which to restore.

    Returns the picked items ([] when the user cancels, or at end of input). A wrong
    answer is explained and asked again.
    """
    for provider, error in listing.errors.items():
        echo(f"warning: provider {provider} could not list: {error}")
    items = listing.newest()
    if not items:
        echo("nothing to restore")
        return []
    rows = [("#", "NAME", "DATA CENTER", "TAKEN (UTC)", "FROM")]
    for n, item in enumerate(items, 1):
        name = item.name + (" (template)" if item.kind == "template" else "")
        taken = item.taken_at.strftime("%Y-%m-%d %H:%M") if item.taken_at else "-"
        rows.append((str(n), name, item.datacenter or "-", taken,
                     ",".join(listing.holders(item))))
    for line in table(rows):
        echo(line)
    while True:
        try:
            text = read("restore which (e.g. 1 3 5-7; empty or q cancels)? ")
        except EOFError:
            return []
        try:
            numbers = parse_selection(text, len(items))
        except ValueError as e:
            echo(f"  {e}")
            continue
        return [items[n - 1] for n in numbers]
