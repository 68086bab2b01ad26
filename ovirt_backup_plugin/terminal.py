"""Text that is safe to show on a terminal: engine-supplied strings escaped visibly.

A VM name, a description, a cluster or network name or an engine fault text is chosen by
whoever can edit the engine. Shown raw, a carriage return, an escape sequence, a C1
control (U+009B is a one-character CSI), NEL (U+0085), a line or paragraph separator, a
newline or a bidi override (U+202E) rewrites or splits the lines around it. :func:`safe`
shows every such character as a visible escape instead (``\\r``, ``\\x1b``, ``\\x9b``,
``\\u202e``): everything :meth:`str.isprintable` refuses -- controls (Cc), format
characters (Cf: bidi controls, zero-width characters), separators other than the space,
surrogates (bytes that were not UTF-8), private-use and unassigned code points.

:func:`width` is how many terminal cells a (safe) text takes -- East Asian wide characters
take two, combining marks none -- so that :func:`table` keeps its columns aligned and a row
on one line. JSON output is escaped by :func:`to_json` (every non-ASCII character as
``\\uXXXX``) and needs none of this.
"""
from __future__ import annotations

import json
import unicodedata
from typing import Any, List, Sequence

__all__ = ["safe", "width", "table", "to_json"]

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(ch: str) -> str:
    named = _NAMED.get(ch)
    if named:
        return named
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def safe(text: object) -> str:
    """``text`` with every character that could move the cursor, change the terminal's
    state, reorder or split the line shown as a visible escape."""
    text = text if isinstance(text, str) else str(text)
    if text.isprintable():
        return text
    return "".join(ch if ch == " " or ch.isprintable() else _escape(ch) for ch in text)


def width(text: str) -> int:
    """Terminal cells ``text`` takes (after :func:`safe`)."""
    if text.isascii():
        return len(text)
    cells = 0
    for ch in text:
        if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me"):
            continue
        cells += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return cells


def table(rows: Sequence[Sequence[object]]) -> List[str]:
    """Rows as aligned columns (the first row is the heading), every cell made safe: a row
    is always one line."""
    if not rows:
        return []
    cells = [[safe(c) for c in r] for r in rows]
    widths = [max(width(r[c]) for r in cells) for c in range(len(cells[0]))]
    return ["  ".join(v + " " * (w - width(v)) for v, w in zip(r, widths)).rstrip()
            for r in cells]


def to_json(data: Any) -> str:
    """``data`` as indented JSON with every non-ASCII and control character escaped
    (``\\u202e``, ``\\u009b``, ``\\u007f``): safe on a terminal, exact for a program."""
    return json.dumps(data, indent=2, ensure_ascii=True).replace("\x7f", "\\u007f")
