"""Per-VM cost of each stage of a backup, measured without a profiler.

cProfile inflates Python-heavy code (many small calls) much more than C code, so its
shares overstate e.g. ``dataclasses.asdict`` and understate zlib. This times each stage on
its own, on the first ``--sample`` VMs of the benchmark inventory (the same VMs), in
microseconds per VM of CPU time (``time.process_time``), and the alternatives the
suggestions in the README talk about (lxml extraction instead of the SDK's object
reader, zlib level 1, zlib with a preset dictionary).

    python benchmarks/stages.py [--sample 2000] [--json]
"""
from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Callable, Dict

sys.path.insert(0, str(Path(__file__).resolve().parent))

import inventory  # noqa: E402


def _cpu(fn: Callable[[], object], count: int, repeat: int = 3) -> float:
    """Best-of-``repeat`` CPU microseconds per item."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return round(best / count * 1e6, 1)


def measure(sample: int) -> Dict[str, object]:
    from lxml import etree
    from ovirtsdk4 import reader as sdk_reader

    from ovirt_backup_plugin.ovf import ovf_hash, parse_ovf

    eng = inventory.build_engine(sample)
    items = inventory.interactions(eng)
    pages = [i["response"]["body"]["string"].encode("utf-8") for i in items
             if "search=page" in i["request"]["uri"]]
    ovfs = [vm.ovf for vm in eng.vms]
    raw = [o.encode("utf-8") for o in ovfs]
    n = len(ovfs)
    out: Dict[str, object] = {"sample": n}
    us: Dict[str, float] = {}

    us["SDK Reader.read(page) -> types.Vm"] = _cpu(
        lambda: [sdk_reader.Reader.read(p) for p in pages], n)

    def extract(page: bytes):
        got = []
        for _, el in etree.iterparse(io.BytesIO(page), tag="vm", huge_tree=True,
                                     resolve_entities=False, no_network=True):
            cluster = el.find("cluster")
            got.append((el.get("id"), el.findtext("name"),
                        cluster.get("id") if cluster is not None else "",
                        el.findtext("initialization/configuration/data")))
            el.clear()
        return got
    us["(alt) lxml iterparse(page) -> id, name, cluster, OVF"] = _cpu(
        lambda: [extract(p) for p in pages], n)

    identities = [parse_ovf(o) for o in ovfs]
    us["parse_ovf (lxml + identity)"] = _cpu(lambda: [parse_ovf(o) for o in ovfs], n)
    us["ovf_hash"] = _cpu(lambda: [ovf_hash(o) for o in ovfs], n)
    us["identity to_dict + json.dumps"] = _cpu(
        lambda: [json.dumps(i.to_dict(), separators=(",", ":")) for i in identities], n)

    sizes: Dict[str, float] = {"ovf": sum(map(len, raw)) / n}
    us["zlib.compress level 6"] = _cpu(lambda: [zlib.compress(b, 6) for b in raw], n)
    sizes["zlib6"] = sum(len(zlib.compress(b, 6)) for b in raw) / n
    us["(alt) zlib.compress level 1"] = _cpu(lambda: [zlib.compress(b, 1) for b in raw], n)
    sizes["zlib1"] = sum(len(zlib.compress(b, 1)) for b in raw) / n
    zdict = raw[0] + raw[1]              # two OVFs of the estate as a preset dictionary

    def zd(b: bytes, level: int = 6) -> bytes:
        c = zlib.compressobj(level, zlib.DEFLATED, 15, 9, zlib.Z_DEFAULT_STRATEGY, zdict)
        return c.compress(b) + c.flush()
    us["(alt) zlib level 6 + preset dictionary (2 OVFs)"] = _cpu(
        lambda: [zd(b) for b in raw[2:]], n - 2)
    sizes["zlib6_zdict"] = sum(len(zd(b)) for b in raw[2:]) / (n - 2)
    sizes["identity_json"] = sum(len(json.dumps(i.to_dict(), separators=(",", ":")))
                                 for i in identities) / n
    out["bytes_per_vm"] = {k: round(v) for k, v in sizes.items()}

    out["localdb"] = _localdb(eng, ovfs, identities)
    out["us_per_vm"] = us
    return out


def _localdb(eng, ovfs, identities) -> Dict[str, object]:
    """The localdb provider's own hooks: a fresh catalog, then the same VMs again."""
    try:
        import datetime as dt

        from ovirt_backup_plugin.hooks import localdb
        from ovirt_backup_plugin.model import BackupOutcome, ProviderSettings, Run, VmBackup
        from ovirt_backup_plugin.ovf import ovf_hash, pack, seal
    except ImportError as e:                                 # the API moved
        return {"error": f"{type(e).__name__}: {e}"}
    backups = [VmBackup(vm_id=i.id, name=i.name, kind=i.kind, datacenter=vm.cluster.datacenter.name,
                        cluster=vm.cluster.name, ovf_hash=ovf_hash(o), blob=seal(pack(o)), ovf=o,
                        identity=i)
               for i, o, vm in zip(identities, ovfs, eng.vms)]
    result: Dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="bench-stages-") as tmp:
        settings = ProviderSettings(name="localdb", system="bench", state_dir=tmp)
        try:
            for label, k in (("write_ovf, new blobs (sealed by the host), commit", 1),
                             ("write_ovf, known blobs (INSERT OR IGNORE + vms row, commit)", 2)):
                run = Run(id=f"20261126T000000Z-0000000{k}", started_at=dt.datetime.now(dt.timezone.utc),
                          system="bench", engine_url="http://bench")
                t0 = time.process_time()
                w0 = time.perf_counter()
                state = localdb.before_backup(settings=settings)
                new = sum(1 for b in backups if localdb.write_ovf(run=run, state=state, vm=b,
                                                                  settings=settings))
                localdb.after_backup(run=run, state=state, settings=settings, note=lambda s: None,
                                     outcome=BackupOutcome(ok=True, written=len(backups),
                                                           new_blobs=new))
                result[label] = {"cpu_us_per_vm": round((time.process_time() - t0) / len(backups) * 1e6, 1),
                                 "wall_us_per_vm": round((time.perf_counter() - w0) / len(backups) * 1e6, 1),
                                 "new": new}
        except Exception as e:                               # the hooks' API moved
            result["error"] = f"{type(e).__name__}: {e}"
    return result


def print_table(r: Dict[str, object], say=print) -> None:
    say(f"\n=== Stage costs without a profiler (CPU us per VM, first {r['sample']:,} VMs) " + "=" * 8)
    for name, value in r["us_per_vm"].items():
        say(f"  {value:8.1f}  {name}")
    for name, value in r["localdb"].items():
        if isinstance(value, dict):
            say(f"  {value['cpu_us_per_vm']:8.1f}  localdb {name} (wall {value['wall_us_per_vm']:.1f})")
        else:
            say(f"  localdb: {value}")
    b = r["bytes_per_vm"]
    say(f"  bytes per VM: OVF {b['ovf']:,}, zlib-6 {b['zlib6']:,}, zlib-1 {b['zlib1']:,}, "
        f"zlib-6 + preset dictionary {b['zlib6_zdict']:,}, identity JSON {b['identity_json']:,}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=2000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = measure(args.sample)
    if args.json:
        print(json.dumps(result))
    else:
        print_table(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
