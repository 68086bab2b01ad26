"""``ovirt-backup demo``: the whole cycle against a replayed engine, with nothing to set up.

A replay engine on 127.0.0.1 serves the project's synthesized cassette (cassettes/); the
real SDK talks to it over HTTP. The demo backs up its VMs into a local SQLite catalog (the
embedded default provider), lists what is restorable, restores one VM as two copies, runs
the scheduler twice on the unchanged engine (no new OVF stored), and attaches a rebuilt
engine (new data center ids, synthesized on the spot) to the same catalog.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
from pathlib import Path
from typing import Callable, Optional

from .backup.incremental import plan_capture
from .backup.run import run_backup
from .backup.runner import Runner
from .engine import EngineSettings
from .host import Config, Session
from .model import Query
from .output import echo, print_listing
from .restore.history import history
from .restore.listing import gather, select
from .restore.restore import restore
from .stores.ownership import attach
from .testing.cassettes import demo_cassettes
from .testing.replay import ReplayEngine
from .testing.synth import SyntheticEngine, demo_engine

DEMO_VM = "web01"


def cli_demo(args: argparse.Namespace) -> int:
    """``ovirt-backup demo [--state-dir DIR]``."""
    return run_demo(state_dir=args.state_dir, echo=echo)


def run_demo(state_dir: Optional[str] = None, echo: Callable[[str], None] = print) -> int:
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
            with Session.open(config) as session:
                engine, handles = session.engine, session.handles
                echo("")
                echo("== 1. backup: every VM's OVF into the local catalog (localdb)")
                report = run_backup(engine, handles, system=config.system, echo=echo,
                                    planner=plan_capture)

                echo("")
                echo("== 2. list: what is restorable")
                listing = gather(handles, engine, Query())
                print_listing(listing, out=echo)

                echo("")
                echo(f"== 3. restore: {DEMO_VM} as 2 copies (new ids, names {DEMO_VM}-1, -2)")
                items = select(gather(handles, engine, Query(vms=(DEMO_VM,))), [DEMO_VM])
                outcome = restore(items, {h.name: h for h in handles}, engine, copies=2,
                                  echo=echo)
            for req in server.received:
                if req.method == "POST" and req.path.endswith("/vms"):
                    echo(f"   engine received POST /vms ({len(req.body)} bytes, OVF inside)")

            echo("")
            echo("== 4. scheduled runs: ovirt-backup run --every 1s --runs 2 "
                 "(the engine is unchanged: no new OVF is stored)")
            scheduled = Runner(config, lambda: Session.open(config), every=1.0, max_runs=2,
                               echo=echo).run()

        echo("")
        echo("== 5. attach: the engine is rebuilt (new data center ids) and backs up into "
             "the same catalog")
        attached = _attach_rebuilt_engine(config, echo)
        echo("")
        echo(f"== done: catalog at {Path(state_dir) / 'catalog.sqlite'}"
             + (" (temporary; use --state-dir to keep it)" if tmp else ""))
        return max(report.exit_code, outcome.exit_code, scheduled, attached)
    finally:
        if tmp is not None:
            tmp.cleanup()


def rebuilt_engine() -> SyntheticEngine:
    """The demo's Production data center as a rebuilt engine has it: a new data center id,
    and web01 (registered back with its id) given more memory and CPUs since."""
    web01 = next(vm for vm in demo_engine().vms if vm.name == "web01")
    eng = SyntheticEngine(seed=42)
    dc = eng.add_datacenter("Production")
    eng.add_cluster("prod-a", dc)
    eng.add_storage_domain("prod-data1", dc, master=True)
    eng.add_vm("web01", "prod-a", memory_mb=8192, cpus=4, id=web01.id,
               description=web01.description)
    return eng


def _attach_rebuilt_engine(config: Config, echo: Callable[[str], None]) -> int:
    assert config.engine is not None
    with tempfile.TemporaryDirectory(prefix="ovirt-backup-rebuilt-") as tmp:
        with ReplayEngine([rebuilt_engine().write_cassette(Path(tmp) / "rebuilt.yaml")]) as server:
            new = dataclasses.replace(config, engine=dataclasses.replace(config.engine,
                                                                         url=server.url))
            with Session.open(new) as session:
                engine, handles = session.engine, session.handles
                echo(f"   a backup of the rebuilt engine ({server.url}) into the old catalog:")
                refused = run_backup(engine, handles, system=new.system, echo=echo)
                echo(f"   -> refused as expected (exit code {refused.exit_code}); now "
                     "ovirt-backup attach localdb --continue:")
                attach(handles[0], engine.identity(new.system), mode="continue", echo=echo)
                report = run_backup(engine, handles, system=new.system, echo=echo)
                echo("   history of web01 across both engines:")
                history(handles, engine, "web01", echo=lambda line: echo("   " + line))
    return report.exit_code
