"""``ovirt-backup demo``: the whole cycle against a replayed engine, with nothing to set up.

A replay engine on 127.0.0.1 serves the project's synthesized cassette (cassettes/); the
real SDK talks to it over HTTP. The demo backs up its VMs into a local SQLite catalog (the
embedded default provider), lists what is restorable, and restores one VM as two copies.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Callable, List, Optional

from .backup import run_backup
from .config import Config
from .engine import Engine, EngineSettings
from .host import provider_handles
from .plugins import get_plugin_manager
from .restore import gather, restore, select

DEMO_VM = "web01"


def cassette_dir() -> Path:
    """cassettes/ of a source checkout, or the copy installed under share/."""
    candidates = [Path(__file__).resolve().parent.parent / "cassettes",
                  Path(sys.prefix) / "share" / "ovirt-backup" / "cassettes"]
    for path in candidates:
        if (path / "demo-engine.yaml").is_file():
            return path
    raise FileNotFoundError("the demo cassettes are not installed (looked in "
                            + ", ".join(map(str, candidates)) + ")")


def demo_cassettes() -> List[Path]:
    base = cassette_dir()
    return [base / "sso.yaml", base / "demo-engine.yaml"]


def run_demo(state_dir: Optional[str] = None, echo: Callable[[str], None] = print) -> int:
    from .cli import print_listing
    from .replay import ReplayEngine

    tmp = None
    if state_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="ovirt-backup-demo-")
        state_dir = tmp.name
    os.makedirs(state_dir, exist_ok=True)
    try:
        with ReplayEngine(demo_cassettes()) as server:
            echo(f"== replay engine on {server.url} (cassettes/demo-engine.yaml, synthesized)")
            config = Config(engine=EngineSettings(url=server.url, username=server.username,
                                                  password=server.password),
                            system="demo-engine", providers=["localdb"], state_dir=state_dir)
            pm = get_plugin_manager(config.providers)
            handles = provider_handles(pm, config)
            with Engine(config.engine) as engine:
                echo("\n== 1. backup: every VM's OVF into the local catalog (localdb)")
                report = run_backup(engine, handles, system=config.system, echo=echo)

                echo("\n== 2. list: what is restorable")
                listing = gather(handles, engine)
                print_listing(listing)

                echo(f"\n== 3. restore: {DEMO_VM} as 2 copies (new ids, names {DEMO_VM}-1, -2)")
                items = select(listing, [DEMO_VM])
                outcome = restore(items, {h.name: h for h in handles}, engine, copies=2,
                                  echo=echo)
            for req in server.received:
                if req.method == "POST" and req.path.endswith("/vms"):
                    echo(f"   engine received POST /vms ({len(req.body)} bytes, OVF inside)")
        echo(f"\n== done: catalog at {Path(state_dir) / 'catalog.sqlite'}"
             + (" (temporary; use --state-dir to keep it)" if tmp else ""))
        return max(report.exit_code, outcome.exit_code)
    finally:
        if tmp is not None:
            tmp.cleanup()
