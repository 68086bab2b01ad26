#!/usr/bin/env python3
"""Backup benchmarks: figures, not pass/fail tests. See benchmarks/README.md.

    python benchmarks/run.py                      # N = 1,000 and 10,000 (several minutes)
    python benchmarks/run.py --quick              # N = 200
    python benchmarks/run.py --sizes 1000 --no-profile

For each N: a synthetic engine of N VMs (cached JSON cassette) is served by the replay
server in its own process with a 5 ms delay per request; then, each as a measured
subprocess: ``ovirt-backup backup`` into a fresh localdb, the naive SDK baseline (list,
then one GET per VM), and ``ovirt-backup backup`` again on the unchanged engine.
Optionally a cProfile of one backup. Prints tables; writes bench-out/results.json.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import inventory  # noqa: E402
import profiling  # noqa: E402
import stages  # noqa: E402
from measure import Measurement, ReplayServer, byte_compile, run_measured  # noqa: E402

PASSWORD = "replay-secret"          # ReplayEngine's default; served via $BENCH_ENGINE_PASSWORD
TARGET_SPEEDUP = 10.0               # baseline wall / backup wall, at N = 10,000
TARGET_RSS_MB = 300.0               # peak RSS of a backup run
TARGET_NEW_BLOBS_AGAIN = 0          # blobs written by a backup of an unchanged engine
SUMMARY_RE = re.compile(r"^run (?P<run>\S+): (?P<status>\w+); (?P<backed>\d+)/(?P<seen>\d+) VMs"
                        r"(?P<rest>.*)$", re.M)
PROVIDER_RE = re.compile(r"(?P<name>[\w.-]+) (?P<ok>ok|FAILED) \((?P<written>\d+) written, "
                         r"(?P<new>\d+) new\)")


def say(text: str = "") -> None:
    print(text, flush=True)


# -- helpers -----------------------------------------------------------------------------
def backup_command() -> List[str]:
    script = Path(sys.executable).parent / "ovirt-backup"
    if script.is_file():
        return [str(script)]
    found = shutil.which("ovirt-backup")
    return [found] if found else [sys.executable, "-m", "ovirt_backup_plugin.cli"]


def write_config(path: Path, url: str, state_dir: Path, system: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "# written by benchmarks/run.py\n"
        f"[engine]\nurl = {url}\nusername = admin@internal\n"
        "password_env = BENCH_ENGINE_PASSWORD\npage_size = 100\ntimeout = 600\n\n"
        f"[backup]\nsystem = {system}\nproviders = localdb\nstate_dir = {state_dir}\n"
        "mode = full\n")   # every run a sweep (what this compares); incremental.py: the rest
    return path


def fresh_dir(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def catalog_counts(state_dir: Path) -> Dict[str, int]:
    db_path = state_dir / "catalog.sqlite"
    if not db_path.exists():
        return {"blobs": 0, "runs": 0, "vm_rows": 0}
    db = sqlite3.connect(db_path)
    try:
        return {t if t != "vms" else "vm_rows": db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                for t in ("blobs", "runs", "vms")}
    finally:
        db.close()


def parse_summary(stdout: str) -> dict:
    matches = list(SUMMARY_RE.finditer(stdout))
    if not matches:
        return {}
    m = matches[-1]
    out = {"line": m.group(0), "status": m.group("status"), "vms_backed_up": int(m.group("backed")),
           "vms_seen": int(m.group("seen"))}
    for p in PROVIDER_RE.finditer(m.group("rest")):
        out[p.group("name")] = {"ok": p.group("ok") == "ok", "written": int(p.group("written")),
                                "new": int(p.group("new"))}
    return out


def generate(n: int, args):
    """The cached cassette of ``n`` VMs, generated in a subprocess (it takes ~1 GB at 10,000)."""
    path = inventory.cassette_path(args.work, n, args.seed)
    if not path.is_file() or args.regenerate:
        say(f"  generating the cassette of {n:,} VMs ...")
    argv = [sys.executable, str(HERE / "inventory.py"), str(n), "--work", str(args.work),
            "--seed", str(args.seed), "--json"] + (["--force"] if args.regenerate else [])
    done = subprocess.run(argv, check=True, stdout=subprocess.PIPE, text=True)
    meta = json.loads(done.stdout.strip().splitlines()[-1])
    if not meta.get("cached"):
        say(f"  generated in {meta['build_seconds'] + meta['write_seconds']:.1f}s")
    return Path(meta.pop("path")), meta


def best(samples: List[Measurement]) -> Measurement:
    """The fastest of repeated samples (least disturbed by other load); RSS: the highest."""
    fastest = min(samples, key=lambda m: m.wall_s)
    fastest.extra["peak_rss_mb_max"] = max(m.peak_rss_mb for m in samples)
    fastest.extra["wall_samples"] = [m.wall_s for m in samples]
    return fastest


def code_fingerprint() -> dict:
    """What code is measured: git HEAD plus a hash of the working-tree sources (the tree may
    be edited while the benchmark runs; a change between measurements is reported)."""
    import hashlib

    digest = hashlib.sha256()
    files = sorted([*ROOT.glob("ovirt_backup_plugin/**/*.py"), *ROOT.glob("hooks/*.py"),
                    ROOT / "setup.cfg"])
    for path in files:
        if path.is_file():
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    head = ""
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return {"git_head": head, "sources_sha256": digest.hexdigest()[:12]}


def measured(label, argv, **kw) -> Measurement:
    code = code_fingerprint()
    m = run_measured(label, argv, **kw)
    after = code_fingerprint()
    m.extra["code"] = code
    if after != code:
        m.extra["code_after"] = after
        say(f"      note: the sources (edited concurrently) changed during {label}: "
            f"{code['git_head']}/{code['sources_sha256']} -> "
            f"{after['git_head']}/{after['sources_sha256']}")
    return m


def fmt_mb(b: float) -> str:
    return f"{b / 1e6:.1f} MB"


# -- one size ----------------------------------------------------------------------------
def bench_size(n: int, args, env) -> dict:
    work: Path = args.work
    say(f"\n=== N = {n:,} VMs " + "=" * 60)
    cassette, meta = generate(n, args)
    ovf = meta["ovf_bytes"]
    say(f"  cassette {cassette.name}{' (cached)' if meta.get('cached') else ''}: "
        f"{fmt_mb(meta['cassette_bytes'])}, {meta['interactions']:,} interactions, "
        f"{meta['pages']} pages of {meta['page_size']}")
    say(f"  OVF size: mean {ovf['mean'] / 1024:.1f} KiB ({ovf['mean']:,.0f} B), median "
        f"{ovf['median'] / 1024:.1f} KiB, min {ovf['min'] / 1024:.1f}, max {ovf['max'] / 1024:.1f} KiB; "
        f"disks/VM {meta['disks_per_vm']['mean']} (1-{meta['disks_per_vm']['max']}), "
        f"NICs/VM {meta['nics_per_vm']['mean']} (1-{meta['nics_per_vm']['max']}); "
        f"page body mean {fmt_mb(meta['page_bytes']['mean'])}")

    out_dir = work / f"n{n}"
    out_dir.mkdir(parents=True, exist_ok=True)
    result: dict = {"n": n, "inventory": meta, "cassette": str(cassette)}
    server = ReplayServer(cassette, delay=args.delay, log_path=out_dir / "replay-server.log",
                          password=PASSWORD)
    server.start()
    try:
        say(f"  replay server pid {server.pid} at {server.url} (delay {args.delay * 1000:g} ms/request),"
            f" loaded in {server.startup_s:.1f}s, RSS {server.rss_mb} MB")
        result["server"] = {"startup_s": round(server.startup_s, 2), "rss_mb": server.rss_mb,
                            "delay_s": args.delay}
        cmd = backup_command()
        fresh_runs, baseline_runs, again_runs = [], [], []
        counts_before = counts_after = {}
        for r in range(args.repeat):
            tag = f"-{r + 1}" if args.repeat > 1 else ""
            state = fresh_dir(out_dir / f"state{tag}")
            cfg = write_config(out_dir / f"backup{tag}.ini", server.url, state, f"bench-n{n}")

            say(f"  [{r + 1}/{args.repeat}] backup (fresh localdb) ...")
            m = measured(f"backup-fresh{tag}", cmd + ["--config", str(cfg), "backup"],
                             log_dir=out_dir, env=env, server_pid=server.pid)
            m.extra["summary"] = parse_summary(Path(m.stdout_path).read_text())
            m.extra["catalog"] = catalog_counts(state)
            fresh_runs.append(m)
            say(f"      {m.wall_s:.2f}s, {m.peak_rss_mb} MB, rc {m.rc}: "
                f"{m.extra['summary'].get('line', '(no summary line)')}")

            say(f"  [{r + 1}/{args.repeat}] naive baseline (list + one GET per VM) ...")
            ovf_dir = fresh_dir(out_dir / "baseline-ovfs")
            b = measured(f"baseline{tag}", [sys.executable, str(HERE / "baseline.py"),
                                                "--url", server.url, "--out", str(ovf_dir)],
                             log_dir=out_dir, env=env, server_pid=server.pid)
            lines = Path(b.stdout_path).read_text().strip().splitlines()
            b.extra["report"] = json.loads(lines[-1]) if lines else {}
            baseline_runs.append(b)
            say(f"      {b.wall_s:.2f}s, {b.peak_rss_mb} MB, rc {b.rc}: {b.extra['report']}")
            if not args.keep_ovfs:
                shutil.rmtree(ovf_dir, ignore_errors=True)

            say(f"  [{r + 1}/{args.repeat}] backup again (unchanged engine, same localdb) ...")
            counts_before = catalog_counts(state)
            a = measured(f"backup-again{tag}", cmd + ["--config", str(cfg), "backup"],
                             log_dir=out_dir, env=env, server_pid=server.pid)
            counts_after = catalog_counts(state)
            a.extra["summary"] = parse_summary(Path(a.stdout_path).read_text())
            a.extra["catalog_before"], a.extra["catalog_after"] = counts_before, counts_after
            a.extra["new_blob_rows"] = counts_after["blobs"] - counts_before["blobs"]
            again_runs.append(a)
            say(f"      {a.wall_s:.2f}s, {a.peak_rss_mb} MB, rc {a.rc}: "
                f"{a.extra['summary'].get('line', '(no summary line)')}; blobs "
                f"{counts_before['blobs']} -> {counts_after['blobs']}")

        fresh, base, again = best(fresh_runs), best(baseline_runs), best(again_runs)
        result.update(backup=fresh.to_dict(), baseline=base.to_dict(), again=again.to_dict())
        result["speedup"] = round(base.wall_s / fresh.wall_s, 2) if fresh.wall_s else None
        result["speedup_again"] = round(base.wall_s / again.wall_s, 2) if again.wall_s else None
        # Without contention the runs are sequential request/answer loops: wall is about the
        # client's CPU + the server's CPU + requests x delay. Robust to other people's load.
        requests = {"backup": meta["pages"] + 4, "baseline": n + 3, "again": meta["pages"] + 4}
        model = {k: round(m.cpu_s + (m.server_cpu_s or 0.0) + requests[k] * args.delay, 2)
                 for k, m in (("backup", fresh), ("baseline", base), ("again", again))}
        result["model"] = {"requests": requests, "wall_s": model,
                           "speedup": round(model["baseline"] / model["backup"], 2),
                           "speedup_again": round(model["baseline"] / model["again"], 2)}
        new_blobs_again = max(m.extra["new_blob_rows"] for m in again_runs)
        summary_new = [m.extra["summary"].get("localdb", {}).get("new") for m in again_runs]
        result["new_blobs_again"] = new_blobs_again
        result["new_blobs_again_summary"] = summary_new
        result["checks"] = {
            "backup_rc0": all(m.rc == 0 for m in fresh_runs + again_runs),
            "backup_wrote_all": all(m.extra["summary"].get("localdb", {}).get("written") == n
                                    for m in fresh_runs + again_runs),
            "baseline_wrote_all": all(m.extra["report"].get("written") == n for m in baseline_runs),
            "unmatched_requests": Path(server.log_path).read_text(errors="replace").count(
                "no recorded interaction"),
        }
        codes = {json.dumps(m.extra.get("code_after", m.extra["code"]), sort_keys=True)
                 for m in fresh_runs + baseline_runs + again_runs}
        codes |= {json.dumps(m.extra["code"], sort_keys=True)
                  for m in fresh_runs + baseline_runs + again_runs}
        result["checks"]["same_code_throughout"] = len(codes) == 1
        result["code"] = fresh.extra["code"]
        result["server"]["rss_mb_end"] = server.current_rss_mb()

        if args.profile_size == n:
            result["profile"] = profile_backup(n, server, cmd, out_dir, env, args)
    finally:
        server.stop()
    print_size_table(result)
    return result


def profile_backup(n: int, server: ReplayServer, cmd, out_dir: Path, env, args) -> dict:
    say(f"  profiling one backup (cProfile, fresh localdb) at N = {n:,} ...")
    state = fresh_dir(out_dir / "state-profile")
    cfg = write_config(out_dir / "backup-profile.ini", server.url, state, f"bench-n{n}")
    prof = args.work / f"profile-n{n}.prof"
    m = measured("backup-profile", [sys.executable, "-m", "cProfile", "-o", str(prof), "-m",
                                        "ovirt_backup_plugin.cli", "--config", str(cfg), "backup"],
                     log_dir=out_dir, env=env, server_pid=server.pid)
    summary = parse_summary(Path(m.stdout_path).read_text())
    say(f"      {m.wall_s:.2f}s under the profiler, {m.peak_rss_mb} MB: {summary.get('line')}")
    figures = profiling.summarize(prof, args.work, f"profile-n{n}")
    figures.update(wall_s=m.wall_s, peak_rss_mb=m.peak_rss_mb, summary=summary)
    if args.profile_again:
        prof2 = args.work / f"profile-n{n}-again.prof"
        m2 = measured("backup-profile-again", [
            sys.executable, "-m", "cProfile", "-o", str(prof2), "-m", "ovirt_backup_plugin.cli",
            "--config", str(cfg), "backup"], log_dir=out_dir, env=env, server_pid=server.pid)
        again = profiling.summarize(prof2, args.work, f"profile-n{n}-again")
        again.update(wall_s=m2.wall_s, peak_rss_mb=m2.peak_rss_mb)
        figures["again"] = again
    return figures


# -- printing ----------------------------------------------------------------------------
def _verdict(ok: Optional[bool]) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "MISS")


def print_size_table(r: dict) -> None:
    n = r["n"]
    rows = [("measurement", "wall s", "CPU s", "peak RSS MB", "server CPU s", "fs writes MB",
             "waits/preempts", "load", "result")]
    for key, label in (("backup", "ovirt-backup backup (fresh)"),
                       ("baseline", "naive SDK baseline"),
                       ("again", "ovirt-backup backup (again)")):
        m = r[key]
        if key == "baseline":
            rep = m["extra"]["report"]
            what = f"{rep.get('written', '?')} OVFs, {rep.get('bytes', 0) / 1e6:.1f} MB written"
        else:
            s = m["extra"]["summary"].get("localdb", {})
            what = f"{s.get('written', '?')} written, {s.get('new', '?')} new"
            if key == "again":
                cb, ca = m["extra"]["catalog_before"], m["extra"]["catalog_after"]
                what += f"; blobs {cb['blobs']} -> {ca['blobs']}"
        rows.append((label, f"{m['wall_s']:.2f}", f"{m['cpu_s']:.2f}", f"{m['peak_rss_mb']:.1f}",
                     "-" if m["server_cpu_s"] is None else f"{m['server_cpu_s']:.2f}",
                     "-" if m["blocks_out"] is None else f"{m['blocks_out'] * 512 / 1e6:.1f}",
                     f"{m['vol_ctx_switches']}/{m['invol_ctx_switches']}",
                     f"{m['loadavg_before'][0]:.2f}", what))
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    say(f"\n  N = {n:,}: results")
    for i, row in enumerate(rows):
        say("  " + "  ".join(v.rjust(w) if 0 < c < 8 else v.ljust(w)
                             for c, (v, w) in enumerate(zip(row, widths))).rstrip())
        if i == 0:
            say("  " + "  ".join("-" * w for w in widths))
    say(f"  speedup baseline/backup: {r['speedup']}x (again: {r['speedup_again']}x); "
        f"per VM: backup {r['backup']['wall_s'] / n * 1000:.2f} ms, baseline "
        f"{r['baseline']['wall_s'] / n * 1000:.2f} ms")
    mo = r["model"]
    say(f"  contention-free model (CPU + server CPU + requests x delay): backup "
        f"{mo['wall_s']['backup']:.2f}s, baseline {mo['wall_s']['baseline']:.2f}s, again "
        f"{mo['wall_s']['again']:.2f}s -> speedup {mo['speedup']}x (again {mo['speedup_again']}x)")
    say(f"  checks: {r['checks']}")


def print_targets(results: List[dict]) -> None:
    say("\n=== Targets " + "=" * 66)
    rows = [("N", "backup s", "baseline s", "speedup", ">=10x", "model speedup", "RSS fresh MB", "RSS again MB",
             "baseline RSS MB", "<300MB", "again s", "new blobs again", "=0")]
    for r in results:
        rss_ok = max(r["backup"]["peak_rss_mb"], r["again"]["peak_rss_mb"]) < TARGET_RSS_MB
        speed_ok = r["speedup"] >= TARGET_SPEEDUP if r["n"] >= 10_000 else None
        rows.append((f"{r['n']:,}", f"{r['backup']['wall_s']:.2f}", f"{r['baseline']['wall_s']:.2f}",
                     f"{r['speedup']:.1f}x",
                     _verdict(speed_ok) if speed_ok is not None
                     else ("(" + _verdict(r['speedup'] >= TARGET_SPEEDUP) + ")"),
                     f"{r['model']['speedup']:.1f}x",
                     f"{r['backup']['peak_rss_mb']:.1f}", f"{r['again']['peak_rss_mb']:.1f}",
                     f"{r['baseline']['peak_rss_mb']:.1f}", _verdict(rss_ok),
                     f"{r['again']['wall_s']:.2f}",
                     f"{r['new_blobs_again']} (summary: {r['new_blobs_again_summary'][0]})",
                     _verdict(r["new_blobs_again"] == TARGET_NEW_BLOBS_AGAIN)))
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    for i, row in enumerate(rows):
        say("  " + "  ".join(v.rjust(w) for v, w in zip(row, widths)))
        if i == 0:
            say("  " + "  ".join("-" * w for w in widths))
    say("  (speedup target applies at N = 10,000; at other N the verdict is in parentheses;"
        " model speedup: from CPU times and request count, see the per-N tables)")


def print_profile(p: dict, n: int, what: str = "one ovirt-backup backup (fresh)") -> None:
    say(f"\n=== Profile: {what} at N = {n:,} (cProfile) " + "=" * 20)
    say(f"  wall {p['wall_s']:.2f}s under the profiler (profiled total {p['total_s']:.2f}s), "
        f"peak RSS {p['peak_rss_mb']} MB")
    total = p["total_s"] or 1.0
    for name, secs in p["categories"].items():
        say(f"  {secs:8.2f}s  {100 * secs / total:5.1f}%  {name}")
    for sort in ("cumulative", "tottime"):
        say(f"\n  top {len(p['top_' + sort])} by {sort} (full listing: {p['files'][sort]})")
        say(f"  {'ncalls':>9} {'tottime':>8} {'cumtime':>8}  function")
        for row in p["top_" + sort]:
            fn = row["function"].replace(str(ROOT) + "/", "")
            fn = re.sub(r"^.*/site-packages/", "", fn)
            say(f"  {row['ncalls']:>9} {row['tottime']:8.3f} {row['cumtime']:8.3f}  {fn}")


# -- main --------------------------------------------------------------------------------
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000",
                        help="comma-separated VM counts (default 1000,10000)")
    parser.add_argument("--quick", action="store_true", help="N = 200 only (overrides --sizes)")
    parser.add_argument("--work", type=Path, default=ROOT / "bench-out",
                        help="work dir: cassettes, state, logs, results (default bench-out/)")
    parser.add_argument("--delay", type=float, default=0.005,
                        help="replay server delay per request, seconds (default 0.005)")
    parser.add_argument("--seed", type=int, default=inventory.SEED)
    parser.add_argument("--repeat", type=int, default=1,
                        help="samples per measurement; the fastest is reported (default 1)")
    parser.add_argument("--regenerate", action="store_true", help="ignore cached cassettes")
    parser.add_argument("--profile-size", type=int, default=None,
                        help="profile a backup at this N (default 10000 if measured, else the "
                             "largest N)")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--profile-again", action="store_true",
                        help="also profile the second backup (unchanged engine)")
    parser.add_argument("--no-stages", action="store_true",
                        help="skip the per-stage timings without profiler (benchmarks/stages.py)")
    parser.add_argument("--stages-sample", type=int, default=1000,
                        help="VMs timed per stage (default 1000)")
    parser.add_argument("--keep-ovfs", action="store_true",
                        help="keep the baseline's OVF files (bench-out/nN/baseline-ovfs)")
    args = parser.parse_args(argv)
    byte_compile(ROOT / "ovirt_backup_plugin", ROOT / "hooks")   # as installed
    sizes = [200] if args.quick else [int(s.replace("_", "")) for s in args.sizes.split(",") if s]
    if args.no_profile:
        args.profile_size = None
    elif args.profile_size is None:
        args.profile_size = 10_000 if 10_000 in sizes else max(sizes)
    elif args.profile_size not in sizes:
        sizes.append(args.profile_size)
    args.work = args.work.resolve()
    args.work.mkdir(parents=True, exist_ok=True)

    env = dict(os.environ, BENCH_ENGINE_PASSWORD=PASSWORD)
    env.pop("OVIRT_BACKUP_CONFIG", None)
    import ovirtsdk4.version
    meta = {
        "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(), "cpus": os.cpu_count(), "python": platform.python_version(),
        "platform": platform.platform(), "ovirtsdk4": ovirtsdk4.version.VERSION,
        "delay_s": args.delay, "page_size": inventory.PAGE_SIZE, "repeat": args.repeat,
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        "targets": {"speedup_at_10000": TARGET_SPEEDUP, "peak_rss_mb": TARGET_RSS_MB,
                    "new_blobs_again": TARGET_NEW_BLOBS_AGAIN},
    }
    say(f"ovirt-backup benchmarks: sizes {sizes}, delay {args.delay * 1000:g} ms/request, "
        f"{meta['cpus']} CPUs, load {meta['loadavg_start']}, python {meta['python']}, "
        f"ovirtsdk4 {meta['ovirtsdk4']}; work dir {args.work}")
    results_path = args.work / "results.json"
    results: List[dict] = []
    t0 = time.perf_counter()
    for n in sizes:
        results.append(bench_size(n, args, env))
        meta["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
        meta["elapsed_s"] = round(time.perf_counter() - t0, 1)
        results_path.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    stage_costs = None
    if not args.no_stages:
        say(f"\n  timing each stage without a profiler ({args.stages_sample:,} VMs) ...")
        done = subprocess.run([sys.executable, str(HERE / "stages.py"), "--json", "--sample",
                               str(args.stages_sample)], stdout=subprocess.PIPE, text=True)
        if done.returncode == 0:
            stage_costs = json.loads(done.stdout.strip().splitlines()[-1])
            stage_costs["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
        else:
            say("  stage timings failed (see stderr above)")
        results_path.write_text(json.dumps({"meta": meta, "results": results,
                                            "stages": stage_costs}, indent=2) + "\n")
    print_targets(results)
    for r in results:
        if "profile" in r:
            print_profile(r["profile"], r["n"])
            if "again" in r["profile"]:
                print_profile(r["profile"]["again"], r["n"], "the second backup (again)")
    if stage_costs:
        stages.print_table(stage_costs, say)
    say(f"\nfigures: {results_path} (load at start {meta['loadavg_start']}, at end "
        f"{meta['loadavg_end']}; {meta['elapsed_s']}s in all)")
    ok = all(r["checks"]["backup_rc0"] and r["checks"]["backup_wrote_all"]
             and r["checks"]["baseline_wrote_all"] for r in results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
