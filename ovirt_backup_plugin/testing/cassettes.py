"""Where the project's own cassettes are: ``cassettes/`` of a checkout, or under share/."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import List

__all__ = ["cassette_dir", "demo_cassettes"]


def cassette_dir() -> Path:
    """cassettes/ of a source checkout, or the copy installed under share/."""
    candidates = [Path(__file__).resolve().parent.parent.parent / "cassettes",
                  Path(sys.prefix) / "share" / "ovirt-backup" / "cassettes"]
    for path in candidates:
        if (path / "demo-engine.yaml").is_file():
            return path
    raise FileNotFoundError("the demo cassettes are not installed (looked in "
                            + ", ".join(map(str, candidates)) + ")")


def demo_cassettes() -> List[Path]:
    base = cassette_dir()
    return [base / "sso.yaml", base / "demo-engine.yaml"]
