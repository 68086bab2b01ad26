"""Benchmark of ``ovirt-backup check``: 10,000 VMs x 96 generations in ``localdb``.

Self-contained (it shares nothing with the other benchmark scripts). It builds a catalog
through localdb's own hooks, as the host calls them (a session's provider handle:
``before_backup`` / ``write_ovf`` / ``after_backup`` per generation), with about 1% of the
VMs changing per generation, then runs ``ovirt-backup check`` and ``check --read-data`` as
real processes and prints wall time, CPU time and peak RSS (``ru_maxrss`` of the child,
measured by ``os.wait4``), and the ``--read-data`` time against the number of distinct
blobs. Target: ``check`` at most 10 s.

    python benchmarks/check.py                         # 10,000 x 96, about 2 minutes to build
    python benchmarks/check.py --vms 1000 --generations 24 --encrypt
    python benchmarks/check.py --work bench-out/check  # keep (and reuse) the catalog

The catalog is cached in the work dir under its parameters; ``--rebuild`` makes it anew.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ovirt_backup_plugin import private_dir  # noqa: E402
from ovirt_backup_plugin.host import Session  # noqa: E402
from ovirt_backup_plugin.host.sealing import write_new_key  # noqa: E402
from ovirt_backup_plugin.model import BackupOutcome, Run, VmBackup  # noqa: E402
from ovirt_backup_plugin.ovf import ovf_hash, pack, seal  # noqa: E402
from ovirt_backup_plugin.testing import synth  # noqa: E402

BASE_ID = "11111111-2222-3333-4444-555555555555"


def ovf_of(template: str, vm_id: str, name: str, version: int) -> str:
    """A distinct, valid OVF per VM and version, made from one synthesized OVF."""
    text = template.replace(BASE_ID, vm_id).replace("<Name>base</Name>", f"<Name>{name}</Name>")
    return re.sub(r"<Description>[^<]*</Description>",
                  f"<Description>version {version}</Description>", text, count=1)


def build(path: Path, vms: int, generations: int, change: float, key_file: str) -> None:
    template = synth.make_ovf(BASE_ID, "base", description="x", memory_mb=4096,
                              disks=[synth.SynthDisk("base_Disk1", boot=True)],
                              nics=[synth.SynthNic()])
    backup = {"encryption_key_file": key_file} if key_file else {}
    section = {"path": str(path), **({"encrypt": "yes"} if key_file else {})}
    session = Session.for_engine(None, system="bench", providers=["localdb"],
                                 state_dir=str(path.parent), provider_options={"localdb": section},
                                 **backup)
    handle = session.handles[0]
    rng = random.Random(13)
    ids = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(vms)]
    versions = [0] * vms
    current = {}

    def backup_of(n: int) -> VmBackup:
        text = ovf_of(template, ids[n], f"vm{n:05d}", versions[n])
        return VmBackup(vm_id=ids[n], name=f"vm{n:05d}", kind="vm", datacenter="DC",
                        cluster="Default", ovf_hash=ovf_hash(text), blob=seal(pack(text)),
                        ovf=text)

    start = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
    started = time.perf_counter()
    for g in range(generations):
        changed = range(vms) if g == 0 else rng.sample(range(vms), max(1, int(vms * change)))
        for n in changed:
            versions[n] += g > 0
            current[n] = backup_of(n)
        when = start + dt.timedelta(minutes=15 * g)
        run = Run(id=f"{when:%Y%m%dT%H%M%SZ}-{g:08x}", started_at=when, system="bench",
                  engine_url="http://engine")
        state = handle.before_backup(run, session.engine)
        for n in range(vms):
            handle.write_ovf(run, state, current[n])
        handle.after_backup(run, state, session.engine, BackupOutcome(ok=True, written=vms))
        print(f"  generation {g + 1}/{generations} written "
              f"({time.perf_counter() - started:.0f}s)", end="\r", flush=True)
    print()


def measure(argv) -> dict:
    t = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = proc.stdout.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    return {"wall": time.perf_counter() - t, "rc": os.waitstatus_to_exitcode(status),
            "cpu": usage.ru_utime + usage.ru_stime, "rss_mb": usage.ru_maxrss / 1024,
            "out": out}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--vms", type=int, default=10_000)
    p.add_argument("--generations", type=int, default=96)
    p.add_argument("--change", type=float, default=0.01, help="share of VMs changed per "
                   "generation (default 0.01)")
    p.add_argument("--encrypt", action="store_true", help="localdb with encrypt = yes")
    p.add_argument("--work", default=str(ROOT / "bench-out" / "check"))
    p.add_argument("--rebuild", action="store_true")
    args = p.parse_args()

    work = Path(args.work) / (f"{args.vms}x{args.generations}-{args.change:g}"
                              + ("-enc" if args.encrypt else ""))
    private_dir(work)
    catalog = work / "catalog.sqlite"
    key_file = work / "backup.key"
    if args.encrypt and not key_file.exists():
        write_new_key(str(key_file))
    if args.rebuild and catalog.exists():
        for f in work.glob("catalog.sqlite*"):
            f.unlink()
    if not catalog.exists():
        print(f"building {args.vms:,} VMs x {args.generations} generations "
              f"({args.change:.0%} changing per generation) through localdb's hooks")
        t = time.perf_counter()
        build(catalog, args.vms, args.generations, args.change,
              str(key_file) if args.encrypt else "")
        print(f"  built in {time.perf_counter() - t:.1f}s, {catalog.stat().st_size / 1e6:.0f} MB")
    config = work / "bench.conf"
    config.write_text("[backup]\nsystem = bench\nproviders = localdb\n"
                      f"state_dir = {work}\n"
                      + (f"encryption_key_file = {key_file}\n" if args.encrypt else "")
                      + f"[provider:localdb]\npath = {catalog}\n"
                      + ("encrypt = yes\n" if args.encrypt else ""))
    cli = [sys.executable, "-m", "ovirt_backup_plugin.cli", "--config", str(config), "check"]
    print(f"{'command':<22} {'wall':>8} {'cpu':>8} {'peak RSS':>9}  exit")
    results = {}
    for label, argv in (("check", cli), ("check --read-data", cli + ["--read-data"])):
        r = results[label] = measure(argv)
        print(f"{label:<22} {r['wall']:7.2f}s {r['cpu']:7.2f}s {r['rss_mb']:7.0f} MB  {r['rc']}")
        if r["rc"] != 0:
            print(r["out"][-2000:])
    summary = re.search(r"(\d+) reference\(s\) of (\d+) VM\(s\) to (\d+) distinct",
                        results["check"]["out"])
    read = re.search(r"read (\d+) stored OVF\(s\).* in ([\d.]+)s", results["check --read-data"]["out"])
    if summary and read:
        refs, vms, blobs = (int(x) for x in summary.groups())
        blobs_read, seconds = int(read.group(1)), float(read.group(2))
        print(f"\n{refs:,} references of {vms:,} VMs to {blobs:,} distinct blobs")
        print(f"--read-data: {blobs_read:,} blobs read in {seconds:.2f}s "
              f"({seconds / max(blobs_read, 1) * 1e3:.3f} ms per blob, "
              f"{blobs_read / max(seconds, 1e-9):,.0f} blobs/s); whole command "
              f"{results['check --read-data']['wall']:.2f}s")
    target = results["check"]["wall"] <= 10
    print(f"target: check at most 10 s: {'met' if target else 'NOT met'}")
    return 0 if target else 1


if __name__ == "__main__":
    sys.exit(main())
