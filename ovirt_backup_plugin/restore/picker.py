"""The interactive pick of what to restore (``restore`` in a terminal with no VM named)."""
from __future__ import annotations

import fnmatch
import re
from typing import Callable, Dict, List, Optional, Sequence, Set

from ..model import Restorable, is_glob
from ..terminal import table
from .listing import Listing

__all__ = ["PAGE", "matching", "parse_selection", "pick"]

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


#: At most this many VMs are listed at once; a larger listing is filtered first.
PAGE = 20


def _table(items: Sequence[Restorable], listing: Listing) -> List[str]:
    rows = [("#", "NAME", "DATA CENTER", "TAKEN (UTC)", "FROM", "NOTE")]
    for n, item in enumerate(items, 1):
        name = item.name + (" (template)" if item.kind == "template" else "")
        taken = item.taken_at.strftime("%Y-%m-%d %H:%M") if item.taken_at else "-"
        rows.append((str(n), name, item.datacenter or "-", taken,
                     ",".join(listing.holders(item)), ",".join(item.flags)))
    return table(rows)


def _counts(items: Sequence[Restorable]) -> str:
    by_dc: Dict[str, int] = {}
    for item in items:
        by_dc[item.datacenter or "-"] = by_dc.get(item.datacenter or "-", 0) + 1
    return ", ".join(f"{dc} {n}" for dc, n in sorted(by_dc.items()))


def matching(items: Sequence[Restorable], text: str) -> List[Restorable]:
    """The items a typed filter selects: words joined by spaces must all match; a word is
    ``dc=NAME``, ``cluster=NAME`` or a name glob (a word without ``*?[`` matches anywhere
    in the name)."""
    out = list(items)
    for word in text.split():
        key, sep, value = word.partition("=")
        if sep and key in ("dc", "datacenter"):
            out = [i for i in out if fnmatch.fnmatchcase(i.datacenter, value)]
        elif sep and key == "cluster":
            out = [i for i in out if fnmatch.fnmatchcase(i.cluster, value)]
        else:
            pattern = word if is_glob(word) else f"*{word}*"
            out = [i for i in out if fnmatch.fnmatchcase(i.name, pattern) or i.vm_id == word]
    return out


def pick(listing: Listing, *, echo: Callable[[str], None] = print,
         read: Callable[[str], str] = input, page: int = PAGE) -> List[Restorable]:
    """Let the user pick what to restore from the newest generation of each VM.

    Up to ``page`` VMs are shown numbered straight away. A larger listing is never dumped:
    the user types a filter (a name glob, ``dc=NAME``, ``cluster=NAME``) and sees how many
    match and where; at most ``page`` of them are shown numbered. Numbers pick from what is
    shown, ``all`` takes every VM that matches, ``/`` filters again. Returns the picked
    items ([] when the user cancels, or at end of input). A wrong answer is explained and
    asked again.
    """
    for provider, error in listing.errors.items():
        echo(f"warning: provider {provider} could not list: {error}")
    everything = listing.newest()
    if not everything:
        echo("nothing to restore")
        return []
    try:
        if len(everything) <= page:
            return _choose(everything, everything, listing, echo, read, page,
                           filtered=False) or []
        templates = sum(1 for i in everything if i.kind == "template")
        echo(f"{len(everything)} VMs" + (f" ({templates} templates)" if templates else "")
             + f" can be restored: {_counts(everything)}")
        while True:
            text = read("filter by name (glob like web*, dc=NAME, cluster=NAME; "
                        "q quits)? ").strip()
            if text.lower() in ("q", "quit"):
                return []
            found = matching(everything, text)
            if not found:
                echo(f"  nothing matches {text!r}")
                continue
            chosen = _choose(found, everything, listing, echo, read, page, filtered=True)
            if chosen is not None:
                return chosen
    except EOFError:
        return []


def _choose(found: List[Restorable], everything: List[Restorable], listing: Listing,
            echo: Callable[[str], None], read: Callable[[str], str], page: int, *,
            filtered: bool) -> Optional[List[Restorable]]:
    """Show up to ``page`` of ``found`` and read the pick; None: filter again."""
    shown = found[:page]
    if filtered:
        echo(f"{len(found)} match ({_counts(found)})"
             + (f"; the first {page} are shown" if len(found) > page else ""))
    for line in _table(shown, listing):
        echo(line)
    more = (f", all for all {len(found)}" if len(found) > len(shown) else ", all")
    again = "; / filters again" if filtered else ""
    while True:
        text = read(f"restore which (e.g. 1 3 5-7{more}{again}; empty or q cancels)? ")
        answer = text.strip().lower()
        if filtered and answer == "/":
            return None
        if answer in ("all", "*"):
            return list(found)
        try:
            numbers = parse_selection(text, len(shown))
        except ValueError as e:
            echo(f"  {e}")
            continue
        return [shown[n - 1] for n in numbers]
