"""The naive baseline: what a script written straight against ovirtsdk4 does.

    python benchmarks/baseline.py --url URL --out DIR      (password in $BENCH_ENGINE_PASSWORD)

List the VMs (``GET /vms``, no OVF), then for each VM, one after the other,
``vm_service(id).get(all_content=True)`` and write its OVF to ``DIR/<id>.ovf``.
Prints one JSON line: VMs listed, OVFs written, bytes written, seconds.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import ovirtsdk4


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--username", default="admin@internal")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    connection = ovirtsdk4.Connection(url=args.url, username=args.username,
                                      password=os.environ.get("BENCH_ENGINE_PASSWORD", ""))
    written = size = missing = 0
    try:
        vms_service = connection.system_service().vms_service()
        vms = vms_service.list()
        listed = time.perf_counter()
        for vm in vms:
            full = vms_service.vm_service(vm.id).get(all_content=True)
            conf = full.initialization.configuration if full.initialization else None
            if conf is None or not conf.data:
                missing += 1
                continue
            data = conf.data.encode("utf-8")
            (args.out / f"{vm.id}.ovf").write_bytes(data)
            written += 1
            size += len(data)
    finally:
        connection.close()
    print(json.dumps({"listed": len(vms), "written": written, "missing": missing,
                      "bytes": size, "list_seconds": round(listed - t0, 3),
                      "seconds": round(time.perf_counter() - t0, 3)}), flush=True)
    return 0 if written == len(vms) else 1


if __name__ == "__main__":
    sys.exit(main())
