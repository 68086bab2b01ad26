"""Reading a cProfile dump: top functions, and where the time goes by category."""
from __future__ import annotations

import io
import pstats
from pathlib import Path
from typing import Callable, Dict, List, Tuple

Key = Tuple[str, int, str]          # (file, line, function) as pstats keys entries


def _file(key: Key) -> str:
    return key[0].replace("\\", "/")


def _in(path_part: str, *funcs: str) -> Callable[[Key], bool]:
    return lambda k: path_part in _file(k) and (not funcs or k[2] in funcs)


def _builtin(*needles: str) -> Callable[[Key], bool]:
    return lambda k: k[0] == "~" and any(n in k[2] for n in needles)


#: Categories, in display order. Each is measured by the *cumulative* time of the matching
#: functions (summed, nested matches counted once), except "builtin" ones, which have no
#: callees and are summed by own time. The categories do not overlap in this program:
#: HTTP waits end before the SDK parses the body, localdb's sqlite/zlib/json are siblings.
CATEGORIES: List[Tuple[str, Callable[[Key], bool]]] = [
    ("HTTP: pycurl send/wait (incl. the 5 ms server delay)",
     _in("ovirtsdk4/__init__.py", "send", "wait", "close")),
    ("SDK XML parsing (ovirtsdk4 readers -> types.Vm)",
     _in("ovirtsdk4/service.py", "_internal_read_body")),
    ("OVF parse (lxml, ovf.parse_ovf)", _in("ovirt_backup_plugin/ovf/parse.py", "parse_ovf")),
    ("ovf_hash (regex normalize + sha256)", _in("ovirt_backup_plugin/ovf/digest.py", "ovf_hash")),
    ("zlib.compress (localdb)", _builtin("zlib.compress")),
    ("sqlite (localdb execute/commit)", _builtin("sqlite3")),
    ("seal (ovf.seal: the blob providers store)", _in("ovirt_backup_plugin/ovf/seal.py", "seal")),
    ("imports / interpreter start-up", _in("importlib._bootstrap", "_find_and_load")),
]


def categorize(prof_path: Path) -> Dict[str, object]:
    """Seconds per category. A function's time counts once: its cumulative time minus what
    it got from callers in the same category (cProfile already folds recursion)."""
    stats = pstats.Stats(str(prof_path))
    total = stats.total_tt
    out: Dict[str, float] = {}
    for name, match in CATEGORIES:
        seconds = 0.0
        for key, (_cc, _nc, tt, ct, callers) in stats.stats.items():
            if not match(key):
                continue
            if key[0] == "~":
                seconds += tt
                continue
            nested = sum(c[3] for caller, c in callers.items() if caller != key and match(caller))
            seconds += ct - nested
        out[name] = round(seconds, 3)
    out["other (Python glue: pluggy, backup loop, SDK objects, ...)"] = round(
        max(0.0, total - sum(out.values())), 3)
    return {"total_s": round(total, 3), "categories": out}


def top_text(prof_path: Path, sort: str, limit: int = 25) -> str:
    buf = io.StringIO()
    stats = pstats.Stats(str(prof_path), stream=buf)
    stats.strip_dirs().sort_stats(sort).print_stats(limit)
    return buf.getvalue()


def top_entries(prof_path: Path, sort: str, limit: int = 25) -> List[dict]:
    stats = pstats.Stats(str(prof_path))
    stats.sort_stats(sort)
    rows = []
    for key in stats.fcn_list[:limit]:
        cc, nc, tt, ct, _ = stats.stats[key]
        rows.append({"function": pstats.func_std_string(key), "ncalls": nc,
                     "tottime": round(tt, 3), "cumtime": round(ct, 3)})
    return rows


def summarize(prof_path: Path, out_dir: Path, stem: str, limit: int = 25) -> Dict[str, object]:
    """Write ``<stem>-cumulative.txt`` and ``<stem>-tottime.txt``; return the figures."""
    files = {}
    for sort in ("cumulative", "tottime"):
        path = out_dir / f"{stem}-{sort}.txt"
        path.write_text(top_text(prof_path, sort, limit))
        files[sort] = str(path)
    result = categorize(prof_path)
    result.update(files=files, prof=str(prof_path),
                  top_cumulative=top_entries(prof_path, "cumulative", limit),
                  top_tottime=top_entries(prof_path, "tottime", limit))
    return result
