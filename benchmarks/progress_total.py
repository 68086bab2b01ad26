"""What a progress bar's total costs: the engine's API summary against listing every VM.

A backup's first page does not say how many VMs follow. Two ways to know the total before
the run: ``GET /ovirt-engine/api`` (the root, whose ``summary`` the engine computes with one
COUNT; admin users only) or ``GET /vms`` without ``all_content`` (every VM, without its
OVF). Both are asked of a replay engine of N synthesized VMs through the real SDK::

    .venv/bin/python benchmarks/progress_total.py [N ...]      # default 1000 10000

Prints, per N: wall time (best of 3) and response size of each. The synthesized ``<vm>``
is smaller than a real engine's (see the real recordings under shared/real-engine), so the
listing's real cost is higher still; the summary's does not grow with N at all.
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from ovirt_backup_plugin.engine import Engine, EngineSettings
from ovirt_backup_plugin.testing import synth
from ovirt_backup_plugin.testing.replay import ReplayEngine


def cassette(n: int, directory: Path) -> Path:
    eng = synth.SyntheticEngine(seed=n)
    dc = eng.add_datacenter("DC1")
    eng.add_cluster("c1", dc)
    eng.add_storage_domain("data", dc, master=True)
    for i in range(n):
        eng.add_vm(f"vm{i:05d}", "c1")
    listing = synth.interaction("GET", f"{synth.API}/vms", body=synth._collection(
        "vms", (synth.vm_xml(vm, with_ovf=False) for vm in eng.vms)))
    items = synth.sso_interactions() + [eng.add_api_summary(), listing]
    return synth.write_interactions(directory / f"total-{n}.json", items)


def best(fn, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main(argv: list) -> int:
    sizes = [int(a) for a in argv] or [1000, 10000]
    print(f"{'VMs':>7}  {'GET /api (summary)':>22}  {'GET /vms (no OVF)':>22}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            path = cassette(n, Path(tmp))
            with ReplayEngine([path], password="bench") as server:
                engine = Engine(EngineSettings(url=server.url, password="bench", retries=0))
                assert engine.vm_count() == n
                summary = best(engine.vm_count)
                vms = engine.system_service.vms_service()
                assert len(vms.list()) == n
                listing = best(vms.list)
                engine.close()
            api_kb = _body_kb(path, "/ovirt-engine/api")
            vms_kb = _body_kb(path, "/ovirt-engine/api/vms")
            print(f"{n:>7}  {summary * 1000:>9.1f} ms {api_kb:>8.1f} KB  "
                  f"{listing * 1000:>9.1f} ms {vms_kb:>8.1f} KB")
    return 0


def _body_kb(path: Path, uri_path: str) -> float:
    doc = json.loads(path.read_text())
    for item in doc["interactions"]:
        if item["request"]["uri"].split("?")[0].endswith(uri_path):
            return len(item["response"]["body"]["string"].encode()) / 1024
    return 0.0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
