#!/usr/bin/env python3
"""Incremental capture: what a run costs the engine, full sweep against incremental.

    python benchmarks/incremental.py                     # N = 10,000, 5 ms per request
    python benchmarks/incremental.py --n 2000 --quick    # a smoke test (no baseline)
    python benchmarks/incremental.py --baseline-ref 7ac7105   # "today": the code before it

Figures, not pass/fail. One synthetic engine of N VMs (benchmarks/inventory.py, OVFs of
about 12 KiB) with an audit log, served by the replay server in its own process with a delay
per request; the server counts requests and the bytes of their bodies (``--stats``). Each
run is ``ovirt-backup backup`` in a subprocess into one localdb catalog, measured like
benchmarks/run.py (wall, CPU, peak RSS):

1. ``today``: the full sweep of the code at ``--baseline-ref`` (git archive, run with
   ``PYTHONPATH``), into a catalog of its own -- what a backup costs before this change;
2. ``sweep``: the first run (a full sweep, which also places the event cursor);
3. ``unchanged``: the next run of the unchanged engine (incremental);
4. ``sweep again``: ``backup --full`` of the unchanged engine (a steady-state sweep);
5. ``1% changed``: 1% of the VMs changed with events (updates, NICs, disks, snapshots,
   run/stop), the engine served anew; the next run (incremental).

Targets (from the issue): ``unchanged`` at most 5% of a sweep's requests and bytes and 10%
of its wall time; ``1% changed`` at most 15% of its wall time; the sweep no slower than
``today``. Then the contract's choice measured in one process: recording 10,000 unchanged
VMs in localdb with one ``carry_over`` call, with 10,000 ``write_ovf`` calls of blobs the
catalog holds (what a per-VM reference would cost at best), and the host's read-back for a
provider without ``carry_over``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

import inventory  # noqa: E402
from measure import ReplayServer, byte_compile, run_measured  # noqa: E402

from ovirt_backup_plugin.backup import incremental as inc  # noqa: E402
from ovirt_backup_plugin.backup.capture import capture_one  # noqa: E402
from ovirt_backup_plugin.backup.run import backup_of, new_run  # noqa: E402
from ovirt_backup_plugin.engine import EngineVm  # noqa: E402
from ovirt_backup_plugin.host import Session  # noqa: E402
from ovirt_backup_plugin.model import BackupOutcome, Query  # noqa: E402
from ovirt_backup_plugin.testing import synth  # noqa: E402

PASSWORD = "replay-secret"
GENERATOR = 1


def say(text: str = "") -> None:
    print(text, flush=True)


# -- the engine ----------------------------------------------------------------------------
def interactions(eng: synth.SyntheticEngine) -> List[dict]:
    """What the runs ask (benchmarks/inventory.py): SSO, data centers, clusters, the pages,
    the VM ids, every VM on its own (the replay server composes the searches by id from
    them), the API root, the events log."""
    return inventory.interactions(eng)


def build(n: int, seed: int, changed: float, work: Path):
    """The engine, its audit log (a month of unrelated events, then nothing), the cassette
    of it, and the cassette after ``changed`` of its VMs changed with events."""
    eng = inventory.build_engine(n, seed)
    rng = random.Random(f"incremental:{seed}")
    for _ in range(500):      # a month of logins and migrations (not followed), and VMs
        if rng.random() < 0.2:            # started or stopped (followed: <Generation> + 1)
            vm = rng.choice(eng.vms)
            (eng.run_vm if vm.status != "up" else eng.stop_vm)(vm)
        else:
            eng.log_event(rng.choice([30, 31, 62, 63]))
        eng.tick(rng.randrange(60, 3600))
    eng.tick(3600)
    first = synth.write_interactions(work / f"engine-n{n}-s{seed}-g{GENERATOR}-a.json",
                                     interactions(eng))
    for vm in rng.sample(eng.vms, max(1, int(n * changed))):
        kind = rng.choice(["update", "nic", "disk", "snapshot", "run"])
        if kind == "run":
            (eng.run_vm if vm.status != "up" else eng.stop_vm)(vm)
        else:
            eng.change_vm(vm, kind)
        eng.tick(rng.randrange(1, 20))
    eng.tick(900)
    second = synth.write_interactions(work / f"engine-n{n}-s{seed}-g{GENERATOR}-b.json",
                                      interactions(eng))
    return first, second


# -- one measured run ---------------------------------------------------------------------
def config(path: Path, url: str, state: Path) -> Path:
    path.write_text(f"[engine]\nurl = {url}\nusername = admin@internal\n"
                    "password_env = BENCH_ENGINE_PASSWORD\npage_size = 100\ntimeout = 600\n\n"
                    f"[backup]\nsystem = bench\nproviders = localdb\nstate_dir = {state}\n")
    return path


def stats(path: Path) -> Dict[str, int]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {"requests": 0, "bytes_in": 0, "bytes_out": 0}


def measure(label: str, argv: List[str], server: ReplayServer, stats_path: Path, logs: Path,
            env: dict, cwd: Optional[Path] = None) -> dict:
    before = stats(stats_path)
    m = run_measured(label.replace(" ", "-"), argv, log_dir=logs, env=env,
                     server_pid=server.pid, cwd=cwd)
    after = stats(stats_path)
    out = Path(m.stdout_path).read_text()
    mode = "incremental" if "\n  incremental:" in out else "full"
    summary = [line for line in out.splitlines() if line.startswith("run ")]
    return {"label": label, "rc": m.rc, "wall_s": m.wall_s, "cpu_s": round(m.cpu_s, 2),
            "rss_mb": m.peak_rss_mb, "requests": after["requests"] - before["requests"],
            "bytes_out": after["bytes_out"] - before["bytes_out"], "mode": mode,
            "summary": summary[-1] if summary else out[-400:]}


def serve(cassette: Path, args, logs: Path, stats_path: Path) -> ReplayServer:
    stats_path.unlink(missing_ok=True)
    server = ReplayServer(cassette, delay=args.delay, log_path=logs / f"replay-{cassette.stem}.log",
                          extra_args=["--stats", str(stats_path)])
    t0 = time.perf_counter()
    server.start()
    say(f"  replay server up in {time.perf_counter() - t0:.1f}s ({server.rss_mb} MB RSS): "
        f"{cassette.name}")
    return server


def baseline(ref: str, work: Path) -> Path:
    """The sources at ``ref`` (git archive), to run "today's" full sweep."""
    target = work / f"base-{ref}"
    if not (target / "ovirt_backup_plugin").is_dir():
        target.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
        # its own built-in providers, where an import finds them before the installed ones
        shutil.copytree(target / "hooks", target / "ovirt_backup_plugin" / "hooks")
    byte_compile(target)
    return target


extra: Dict[str, dict] = {}           # the runner's per-run times, the import floor


def bench_runs(args) -> List[dict]:
    work: Path = args.work / "incremental"
    logs = work / "logs"
    work.mkdir(parents=True, exist_ok=True)
    say(f"building the engine of {args.n:,} VMs and its cassettes ...")
    t0 = time.perf_counter()
    first, second = build(args.n, args.seed, args.changed, work)
    say(f"  built in {time.perf_counter() - t0:.1f}s: {first.stat().st_size / 1e6:.0f} MB per "
        "cassette")
    env = dict(os.environ, BENCH_ENGINE_PASSWORD=PASSWORD)
    cli = [sys.executable, "-m", "ovirt_backup_plugin.cli"]
    stats_path = work / "stats.json"
    state = work / "state"
    shutil.rmtree(state, ignore_errors=True)
    samples: Dict[str, List[dict]] = {}

    def sample(label, argv, server, environ=env, cwd=None):
        samples.setdefault(label, []).append(measure(label, argv, server, stats_path, logs,
                                                     environ, cwd))

    server = serve(first, args, logs, stats_path)
    try:
        cfg = config(work / "bench.ini", server.url, state)
        base = baseline(args.baseline_ref, work) if args.baseline_ref else None
        shutil.rmtree(work / "state-today", ignore_errors=True)
        today = config(work / "today.ini", server.url, work / "state-today")
        sample("sweep", cli + ["--config", str(cfg), "backup"], server)
        for _ in range(args.repeat):         # interleaved: the machine's load hits all alike
            if base is not None:
                sample(f"today ({args.baseline_ref})", cli + ["--config", str(today), "backup"],
                       server, dict(env, PYTHONPATH=str(base)), base)
            sample("unchanged", cli + ["--config", str(cfg), "backup"], server)
            sample("sweep again", cli + ["--config", str(cfg), "backup", "--full"], server)
        # the same unchanged runs in one long-running runner: the imports are paid once
        m = run_measured("runner", cli + ["--config", str(cfg), "run", "--every", "1s", "--runs",
                                          str(args.repeat + 1)], log_dir=logs, env=env)
        per_run = [float(x) for x in re.findall(r"\(exit \d+, ([\d.]+)s\)",
                                                Path(m.stderr_path).read_text())]
        samples["runner"] = [{"label": "runner", "per_run_s": per_run}]
        m = run_measured("startup", [sys.executable, "-c", "import ovirt_backup_plugin.cli"],
                         log_dir=logs, env=env)
        samples["startup"] = [{"label": "startup", "wall_s": m.wall_s}]
    finally:
        server.stop()
    kept = work / "state-before-change"
    shutil.rmtree(kept, ignore_errors=True)
    shutil.copytree(state, kept)
    server = serve(second, args, logs, stats_path)
    try:
        cfg = config(work / "bench.ini", server.url, state)
        for _ in range(args.repeat):         # each from the same catalog
            shutil.rmtree(state)
            shutil.copytree(kept, state)
            sample(f"{args.changed:.0%} changed", cli + ["--config", str(cfg), "backup"], server)
    finally:
        server.stop()
    results = []
    for key, runs in samples.items():
        if key in ("runner", "startup"):
            extra[key] = runs[0]
            continue
        best = dict(min(runs, key=lambda r: r["wall_s"]))
        best["wall_samples"] = [r["wall_s"] for r in runs]
        results.append(best)
    order = ["today", "sweep", "unchanged", "sweep again"]
    results.sort(key=lambda r: next((n for n, o in enumerate(order)
                                     if r["label"].split(" (")[0] == o), len(order)))
    return results


def report(results: List[dict]) -> None:
    sweep = next(r for r in results if r["label"] == "sweep again")
    say("\nrun               mode         rc  requests     body bytes   wall s   CPU s  RSS MB"
        "   vs sweep (req / bytes / wall)")
    for r in results:
        ratio = (f"{r['requests'] / sweep['requests']:6.1%} / "
                 f"{r['bytes_out'] / max(1, sweep['bytes_out']):6.2%} / "
                 f"{r['wall_s'] / sweep['wall_s']:6.1%}")
        say(f"{r['label']:<17} {r['mode']:<12} {r['rc']:>2}  {r['requests']:>8,}  "
            f"{r['bytes_out']:>13,}  {r['wall_s']:>7.2f}  {r['cpu_s']:>6.2f}  {r['rss_mb']:>6.0f}"
            f"   {ratio}")
    say("")
    for r in results:
        say(f"  {r['label']}: wall samples {r['wall_samples']}; {r['summary'][:300]}")
    unchanged = next(r for r in results if r["label"] == "unchanged")
    changed = results[-1]
    say("\ntargets:")
    say(f"  unchanged: requests {unchanged['requests'] / sweep['requests']:.1%} (<= 5%), bytes "
        f"{unchanged['bytes_out'] / sweep['bytes_out']:.2%} (<= 5%), wall "
        f"{unchanged['wall_s'] / sweep['wall_s']:.1%} (<= 10%)")
    say(f"  {changed['label']}: wall {changed['wall_s'] / sweep['wall_s']:.1%} (<= 15%)")
    if "runner" in extra and "startup" in extra:
        runs = extra["runner"]["per_run_s"]
        say(f"  unchanged runs inside one runner process (run --every): {runs} s per run "
            f"(best {min(runs) / sweep['wall_s']:.1%} of the sweep's wall); "
            f"interpreter + imports of the CLI alone: {extra['startup']['wall_s']:.2f}s "
            f"({extra['startup']['wall_s'] / sweep['wall_s']:.1%})" if runs else
            "  runner: no per-run time found")
    today = next((r for r in results if r["label"].startswith("today")), None)
    first = next(r for r in results if r["label"] == "sweep")
    if today:
        say(f"  the sweep against today: first sweep {first['wall_s']:.2f}s vs "
            f"{today['wall_s']:.2f}s, steady sweep {sweep['wall_s']:.2f}s; requests "
            f"{first['requests']} vs {today['requests']}")


# -- the contract's choice: one carry_over against per-VM calls ---------------------------
class _Report:
    ok, written, new_blobs, carried = True, 0, 0, 0


class _Participant:
    def __init__(self, handle, state):
        self.handle, self.state, self.report = handle, state, _Report()


def bench_contract(n: int) -> None:
    say(f"\nthe contract's choice, {n:,} unchanged VMs into localdb (one process, no engine):")
    eng = inventory.build_engine(n, 7)
    with tempfile.TemporaryDirectory(prefix="bench-carry-") as tmp:
        def session():
            return Session.for_engine(None, system="bench", providers=["localdb"],
                                      state_dir=tmp)
        handle = session().handles[0]
        run = new_run("bench", "", None)
        state = handle.before_backup(run, session().engine)
        backups = [backup_of(EngineVm(vm.id, vm.name, vm.cluster.id, vm.cluster.datacenter.name,
                                      vm.ovf, cluster=vm.cluster.name), capture_one(vm.ovf))
                   for vm in eng.vms]
        for b in backups:
            handle.write_ovf(run, state, b)
        handle.after_backup(run, state, session().engine, BackupOutcome(ok=True))
        t0 = time.perf_counter()
        items = handle.list_restorable(Query(generation=run.id), session().engine)
        listed = time.perf_counter() - t0

        figures = {}
        for label in ("carry_over (one call)", "write_ovf per VM (blob held)",
                      "read back per VM (no carry_over)"):
            run2 = new_run("bench", "", None)
            state2 = handle.before_backup(run2, session().engine)
            t0 = time.perf_counter()
            if label.startswith("carry_over"):
                handle.carry_over(run2, state2, items)
            elif label.startswith("write_ovf"):
                for b in backups:
                    handle.write_ovf(run2, state2, b)
            else:                     # what the host does for a provider without it
                inc._read_back(run2, _Participant(handle, state2), items)
            recorded = time.perf_counter() - t0
            t0 = time.perf_counter()
            handle.after_backup(run2, state2, session().engine, BackupOutcome(ok=True))
            figures[label] = (recorded, time.perf_counter() - t0)
        say(f"  listing the newest generation (list_restorable, generation=): {listed * 1e3:.0f} ms")
        for label, (recorded, commit) in figures.items():
            say(f"  {label:<34} {recorded * 1e3:8.0f} ms, then commit {commit * 1e3:5.0f} ms")



def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=inventory.SEED)
    parser.add_argument("--delay", type=float, default=0.005, help="seconds per request")
    parser.add_argument("--changed", type=float, default=0.01, help="share of VMs changed")
    parser.add_argument("--baseline-ref", default="7ac7105",
                        help="git ref of 'today' (empty: skip)")
    parser.add_argument("--work", type=Path, default=ROOT / "bench-out")
    parser.add_argument("--repeat", type=int, default=3, help="samples of each run (the "
                        "fastest is reported)")
    parser.add_argument("--quick", action="store_true", help="no baseline, no contract part")
    parser.add_argument("--no-contract", action="store_true")
    args = parser.parse_args(argv)
    byte_compile(ROOT / "ovirt_backup_plugin", ROOT / "hooks")   # as installed
    if args.quick:
        args.baseline_ref, args.no_contract, args.repeat = "", True, 1
    say(f"incremental capture, {args.n:,} VMs, {args.delay * 1e3:.0f} ms per request, "
        f"{dt.datetime.now():%Y-%m-%d %H:%M}, load {os.getloadavg()[0]:.2f}")
    results = bench_runs(args)
    report(results)
    (args.work / "incremental" / "results.json").write_text(json.dumps(results, indent=2))
    if not args.no_contract:
        bench_contract(args.n)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
