#!/usr/bin/env python3
"""Restore benchmark: figures, not pass/fail tests.

    python benchmarks/restore.py                  # N = 200 and 1,000 VMs, 100 copies, K = 1, 4, 8
    python benchmarks/restore.py --quick          # N = 100, 20 copies, K = 1, 4
    python benchmarks/restore.py --sizes 1000 --parallel 1,4,8 --copies 100

What it does:

1. A source engine of N VMs (``benchmarks/inventory.py``: varied disks and NICs) is backed
   up into a fresh ``localdb`` through the CLI (replay server without delay).
2. The target, the rebuilt site: the same data centers, clusters and networks, the source's
   disks registered, no VM; it answers ``POST /vms`` for each VM (keeping its id) and for
   ``--copies`` copies of the first one, with the created VM and its import events, like
   every synthesized engine (``testing/synth.py``).
3. For each K: ``ovirt-backup restore --all --yes --parallel K`` (every VM: POST, the VM
   with its NICs and disks, its events by correlation id), and ``restore VM --copies C
   --yes --parallel K``, each against a fresh replay server (it remembers what was
   created: a second run would resume) in its own process with ``--delay`` per request,
   each command measured in a subprocess (wall, CPU, peak RSS; ``measure.py``).
4. Beside them, in the same run and against the same target, a plain loop of
   ``POST /vms`` written straight against the SDK: sequential, no checks. Its loop time is
   what it prints; its OVFs are built before the loop starts.

Prints a table; writes ``<work>/restore-results.json``.
"""
from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Dict, List

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

import inventory  # noqa: E402
from measure import Measurement, ReplayServer, byte_compile, run_measured  # noqa: E402

from ovirt_backup_plugin.ovf import parse_ovf  # noqa: E402
from ovirt_backup_plugin.testing import synth  # noqa: E402

PASSWORD = "replay-secret"
TARGET_RATIO = 0.35                      # K = 4 wall / K = 1 wall


def say(text: str = "") -> None:
    print(text, flush=True)


def command() -> List[str]:
    script = Path(sys.executable).parent / "ovirt-backup"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "ovirt_backup_plugin.cli"]


def write_config(path: Path, url: str, state: Path) -> Path:
    path.write_text(f"[engine]\nurl = {url}\nusername = admin@internal\n"
                    "password_env = BENCH_ENGINE_PASSWORD\ntimeout = 600\n\n"
                    f"[backup]\nsystem = bench\nproviders = localdb\nstate_dir = {state}\n")
    return path


def target_of(source: synth.SyntheticEngine, copies: int) -> synth.SyntheticEngine:
    eng = synth.SyntheticEngine(seed=4242)
    for dc in source.datacenters:
        eng.add_datacenter(dc.name)
    for cl in source.clusters:
        eng.add_cluster(cl.name, cl.datacenter.name)
    for sd in source.storage_domains:
        eng.add_storage_domain(sd.name, sd.datacenter.name, master=sd.master)
    for net in source.networks:
        eng.add_network(net.name, net.datacenter.name, profiles=list(net.profiles))
    for vm in source.vms:
        for disk in parse_ovf(vm.ovf).disks:
            eng.add_disk(disk.id, disk.alias)
    for vm in source.vms:
        eng.add_restore(vm.name, cluster=vm.cluster.name, of=vm)
    first = source.vms[0]
    for n in range(1, copies + 1):
        eng.add_restore(f"{first.name}-{n}", cluster=first.cluster.name, of=first)
    return eng


PLAIN_LOOP = r"""
import sys, time
sys.path.insert(0, sys.argv[1]); sys.path.insert(0, sys.argv[2])
import inventory, ovirtsdk4
from ovirtsdk4 import types
url, n = sys.argv[3], int(sys.argv[4])
vms = inventory.build_engine(n).vms                      # the OVFs: built before timing
conn = ovirtsdk4.Connection(url=url, username="admin@internal", password="replay-secret")
service = conn.system_service().vms_service()
t = time.perf_counter()
for vm in vms:
    service.add(types.Vm(name=vm.name, cluster=types.Cluster(name=vm.cluster.name),
                         initialization=types.Initialization(configuration=types.Configuration(
                             type=types.ConfigurationType.OVF, data=vm.ovf))))
print(f"loop {time.perf_counter() - t:.3f}")
conn.close()
"""


def measure(label: str, cassette: Path, args, argv: List[str], env: Dict[str, str],
            cfg_dir: Path, state: Path) -> Measurement:
    log_dir = args.work / "logs"
    with ReplayServer(cassette, delay=args.delay, log_path=log_dir / f"{label}.server.log",
                      password=PASSWORD) as server:
        cfg = write_config(cfg_dir / f"{label}.conf", server.url, state)
        full = [a.replace("{cfg}", str(cfg)).replace("{url}", server.url) for a in argv]
        m = run_measured(label, full, log_dir=log_dir, env=env, server_pid=server.pid, cwd=ROOT)
    if m.rc not in (0, 1):
        say(f"  {label}: exit {m.rc} (see {m.stderr_path})")
    return m


def summary_of(m: Measurement) -> Dict[str, object]:
    try:
        report = json.loads(Path(m.stdout_path).read_text())
        return {"restored": report["restored"], "with_warnings": report["with_warnings"],
                "failed": report["failed"]}
    except (OSError, ValueError, KeyError):
        return {}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="200,1000")
    parser.add_argument("--copies", type=int, default=100)
    parser.add_argument("--parallel", default="1,4,8")
    parser.add_argument("--delay", type=float, default=0.005)
    parser.add_argument("--work", type=Path, default=ROOT / "bench-out" / "restore")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    byte_compile(ROOT / "ovirt_backup_plugin", ROOT / "hooks")   # as installed
    if args.quick:
        args.sizes, args.copies, args.parallel = "100", 20, "1,4"
    sizes = [int(s) for s in args.sizes.split(",")]
    ks = [int(k) for k in args.parallel.split(",")]
    if args.work.exists():
        shutil.rmtree(args.work)
    args.work.mkdir(parents=True)
    env = dict(__import__("os").environ, BENCH_ENGINE_PASSWORD=PASSWORD)
    say(f"restore benchmark: sizes {sizes}, {args.copies} copies, K {ks}, delay "
        f"{args.delay * 1000:g} ms per request; {platform.python_version()}, "
        f"{__import__('os').cpu_count()} cores")
    rows = []
    for n in sizes:
        work = args.work / f"n{n}"
        work.mkdir()
        state = work / "state"
        say(f"\n== N = {n}: building and backing up the source ...")
        source = inventory.build_engine(n)
        src_cassette = synth.write_interactions(work / "source.json", inventory.interactions(source))
        backup = measure(f"n{n}-backup", src_cassette, argparse.Namespace(
            work=args.work, delay=0.0), [*command(), "--config", "{cfg}", "backup"], env, work, state)
        say(f"  backup: {backup.wall_s:.1f} s (exit {backup.rc})")
        t = time.perf_counter()
        target = target_of(source, args.copies)
        cassette = target.write_cassette(work / "target.json")
        say(f"  target cassette: {len(target.restores)} restores, built in "
            f"{time.perf_counter() - t:.1f} s")
        first = source.vms[0].name
        sweep = ks if n == max(sizes) else [k for k in ks if k == 4] or ks[:1]
        for k in sweep:
            m = measure(f"n{n}-all-k{k}", cassette, args,
                        [*command(), "--config", "{cfg}", "restore", "--all", "--yes", "--json",
                         "--parallel", str(k)], env, work, state)
            rows.append({"what": f"{n} VMs", "n": n, "k": k, **m.to_dict(), **summary_of(m)})
            say(f"  restore --all, K={k}: {m.wall_s:.2f} s wall, {m.cpu_s:.2f} s CPU, "
                f"{m.peak_rss_mb:.0f} MB peak ({summary_of(m)})")
            if n == max(sizes):
                m = measure(f"n{n}-copies-k{k}", cassette, args,
                            [*command(), "--config", "{cfg}", "restore", first, "--copies",
                             str(args.copies), "--yes", "--json", "--parallel", str(k)],
                            env, work, state)
                rows.append({"what": f"{args.copies} copies", "n": args.copies, "k": k,
                             **m.to_dict(), **summary_of(m)})
                say(f"  restore --copies {args.copies}, K={k}: {m.wall_s:.2f} s wall, "
                    f"{m.cpu_s:.2f} s CPU, {m.peak_rss_mb:.0f} MB peak ({summary_of(m)})")
        plain = measure(f"n{n}-plain-loop", cassette, args,
                        [sys.executable, "-c", PLAIN_LOOP, str(HERE), str(ROOT), "{url}", str(n)],
                        env, work, state)
        loop = next((float(line.split()[1]) for line in
                     Path(plain.stdout_path).read_text().splitlines()
                     if line.startswith("loop ")), None)
        rows.append({"what": f"{n} VMs, plain POST loop", "n": n, "k": 1, "loop_s": loop,
                     **plain.to_dict()})
        say(f"  plain loop of POST /vms (SDK, sequential, no checks): {loop} s "
            f"({plain.wall_s:.1f} s with building the OVFs)")
    say("\n| what | K | wall s | CPU s | peak RSS MB | vs K=1 | vs plain loop |")
    say("|---|---|---|---|---|---|---|")
    for r in rows:
        if "loop_s" in r:
            say(f"| {r['what']} | 1 | {r['loop_s']} (loop) | {r['cpu_s']} | {r['peak_rss_mb']} | | 1.00 |")
            continue
        base = next((x for x in rows if x["what"] == r["what"] and x.get("k") == 1
                     and "loop_s" not in x), None)
        loop = next((x["loop_s"] for x in rows if "loop_s" in x and x["n"] == r["n"]), None)
        vs_k1 = f"{r['wall_s'] / base['wall_s']:.2f}" if base else ""
        vs_loop = f"{r['wall_s'] / loop:.2f}" if loop else ""
        say(f"| {r['what']} | {r['k']} | {r['wall_s']} | {r['cpu_s']} | {r['peak_rss_mb']} | "
            f"{vs_k1} | {vs_loop} |")
    four = next((r for r in rows if r["what"] == f"{max(sizes)} VMs" and r["k"] == 4), None)
    one = next((r for r in rows if r["what"] == f"{max(sizes)} VMs" and r["k"] == 1), None)
    if four and one:
        ratio = four["wall_s"] / one["wall_s"]
        say(f"\nK=4 / K=1 at {max(sizes)} VMs: {ratio:.2f} (target at most {TARGET_RATIO})")
    (args.work / "restore-results.json").write_text(json.dumps(rows, indent=2))
    say(f"results: {args.work / 'restore-results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
