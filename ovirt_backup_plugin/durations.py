"""Durations as admins write them, one grammar for every option of the product.

``30s``, ``15m`` (minutes), ``2h``, ``1d``, ``2w``, ``6mo`` (months of 30 days), ``1y``
(365 days), and sums such as ``1h30m`` or ``1y6mo``.
"""
import datetime as dt
import re

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "mo": 30 * 86400,
         "y": 365 * 86400}
EXAMPLES = "30s, 15m, 2h, 1d, 2w, 6mo, 1y, 1h30m"
_TOKEN = re.compile(r"(\d+(?:\.\d+)?)(mo|[smhdwy])")


def parse_duration(text: str, *, bare_seconds: bool = False) -> dt.timedelta:
    """The duration ``text`` means; ``bare_seconds`` also takes a plain number of seconds.

    Raises ValueError naming the accepted forms."""
    spec = str(text).strip().lower().replace(" ", "")
    if bare_seconds and re.fullmatch(r"\d+(\.\d+)?", spec):
        return dt.timedelta(seconds=float(spec))
    if not spec or _TOKEN.sub("", spec):
        raise ValueError(f"{text!r} is not a duration (use e.g. {EXAMPLES})")
    return dt.timedelta(seconds=sum(float(n) * UNITS[u] for n, u in _TOKEN.findall(spec)))
