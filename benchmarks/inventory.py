"""A synthetic engine of N VMs for the benchmarks, written as a JSON vcrpy cassette.

The VMs are varied the way a real estate is (OS family, memory, vCPUs, 1-6 disks on
different interfaces, formats and storage domains, 1-4 NICs on different networks, some
descriptions), built with :class:`ovirt_backup_plugin.testing.synth.SyntheticEngine`, so every OVF
is in the engine's dialect and averages about 12 KB.

The cassette holds only what the benchmark runs ask for (in this order):

* SSO: token (right and wrong password) and logout;
* ``GET /datacenters`` and ``GET /clusters``;
* the adapter's unscoped pages ``GET /vms?all_content=true&max=100&search=page K``,
  plus the empty page after a full last one;
* ``GET /vms`` (plain list, no OVF) for the baseline's listing;
* ``GET /vms/{id}?all_content=true`` for every VM (the baseline's single reads).
* ``GET /ovirt-engine/api`` and ``GET /events`` (empty): where a sweep places its event
  cursor (benchmarks/run.py runs with ``[backup] mode = full``: every run a sweep).

No storage-domain lists and no data-center-scoped pages: nothing in the runs asks for them.
Everything is deterministic (fixed seed), so a cached cassette is reused by N.
"""
from __future__ import annotations

import json
import random
import statistics
import time
from pathlib import Path
from typing import Dict, List, Tuple

from ovirt_backup_plugin.testing import synth
from ovirt_backup_plugin.testing.synth import SynthDisk, SyntheticEngine, SynthNic

#: Bump when the generated inventory changes, so cached cassettes are not reused.
GENERATOR_VERSION = 2
SEED = 20261126
PAGE_SIZE = 100          # the engine adapter's default (EngineSettings.page_size)

# (data center, [clusters], [storage domains]); the first domain is the master.
TOPOLOGY = [
    ("Production", ["prod-a", "prod-b", "prod-c"], ["prod-data1", "prod-data2", "prod-fast"]),
    ("Staging", ["stage-a"], ["stage-data1", "stage-data2"]),
    ("Lab", ["lab", "lab-gpu"], ["lab-data1", "lab-scratch"]),
]
CLUSTER_WEIGHTS = [30, 25, 15, 12, 12, 6]
ROLES = ["web", "app", "db", "cache", "mq", "build", "ci", "mon", "log", "proxy", "ad", "file"]
OS_CHOICES = [("rhel_8x64", 30), ("rhel_9x64", 25), ("rhel_7x64", 8), ("debian_10", 8),
              ("ubuntu_18_04", 7), ("other_linux", 4), ("windows_2019x64", 10),
              ("windows_2022", 5), ("windows_10x64", 3)]
MEMORY_MB = [(1024, 8), (2048, 18), (4096, 30), (8192, 24), (16384, 12), (32768, 6), (65536, 2)]
CPUS = [(1, 10), (2, 35), (4, 30), (8, 17), (16, 8)]
DISK_COUNT = [(1, 72), (2, 18), (3, 6), (4, 2), (5, 1), (6, 1)]
NIC_COUNT = [(1, 75), (2, 19), (3, 4), (4, 2)]
NETWORKS = ["ovirtmgmt", "frontend", "backend", "storage", "dmz", "vlan-100", "vlan-200",
            "backup-net"]
DATA_INTERFACES = [("VirtIO_SCSI", 60), ("VirtIO", 28), ("SATA", 8), ("IDE", 4)]
DESCRIPTIONS = ["", "", "", "Public web front end", "PostgreSQL primary", "Build agent",
                "Monitoring & alerting", "Kafka broker", "Active Directory & DNS",
                "Internal API <v2>", "Nightly batch jobs"]


def _pick(rng: random.Random, weighted):
    values, weights = zip(*weighted)
    return rng.choices(values, weights)[0]


def build_engine(n: int, seed: int = SEED) -> SyntheticEngine:
    """A :class:`SyntheticEngine` with the fixed topology and ``n`` varied VMs."""
    rng = random.Random(f"bench:{seed}")
    eng = SyntheticEngine(seed=seed)
    clusters = []
    for dc_name, cluster_names, domain_names in TOPOLOGY:
        dc = eng.add_datacenter(dc_name, description=f"{dc_name} workloads")
        for name in cluster_names:
            clusters.append(eng.add_cluster(name, dc))
        for i, name in enumerate(domain_names):
            eng.add_storage_domain(name, dc, master=(i == 0))
    domains_of = {dc_name: names for dc_name, _, names in TOPOLOGY}
    for k in range(n):
        cluster = rng.choices(clusters, CLUSTER_WEIGHTS)[0]
        domains = domains_of[cluster.datacenter.name]
        name = f"{rng.choice(ROLES)}-{k + 1:05d}"
        os_type = _pick(rng, OS_CHOICES)
        windows = os_type.startswith("windows")
        disks = []
        for d in range(_pick(rng, DISK_COUNT)):
            boot = d == 0
            interface = ("SATA" if windows and rng.random() < 0.6 else "VirtIO_SCSI") if boot \
                else _pick(rng, DATA_INTERFACES)
            size = rng.choice([20, 30, 40, 50, 80]) if boot else rng.choice(
                [10, 50, 100, 200, 500, 1000, 2000])
            disks.append(SynthDisk(
                f"{name}_Disk{d + 1}", size_gb=size, actual_gb=max(1, int(size * rng.random())),
                interface=interface, boot=boot,
                storage_domain=domains[0] if boot else rng.choice(domains),
                volume_format="COW" if rng.random() < 0.35 else "RAW"))
        nics = []
        for j in range(_pick(rng, NIC_COUNT)):
            network = "ovirtmgmt" if j == 0 else rng.choice(NETWORKS[1:])
            profile = network if rng.random() < 0.7 else f"{network}-qos"
            nics.append(SynthNic(f"nic{j + 1}", network, profile,
                                 interface_type=5 if windows and rng.random() < 0.3 else 3))
        eng.add_vm(name, cluster, os=os_type, memory_mb=_pick(rng, MEMORY_MB),
                   cpus=_pick(rng, CPUS), disks=disks, nics=nics,
                   description=rng.choice(DESCRIPTIONS),
                   status="up" if rng.random() < 0.8 else "down")
    return eng


def interactions(eng: SyntheticEngine, page_size: int = PAGE_SIZE) -> List[dict]:
    """Only the interactions the benchmark runs ask for (see the module docstring)."""
    v = eng.cluster_version
    out = synth.sso_interactions()
    out.append(synth.interaction("GET", f"{synth.API}/datacenters", body=synth._collection(
        "data_centers", (synth.datacenter_xml(dc, v) for dc in eng.datacenters))))
    out.append(synth.interaction("GET", f"{synth.API}/clusters", body=synth._collection(
        "clusters", (synth.cluster_xml(cl, v) for cl in eng.clusters))))
    # Unscoped pages, and the empty page after a full last page (SyntheticEngine does this).
    out += eng._vm_pages(eng.vms, page_size)
    out.append(synth.interaction("GET", f"{synth.API}/vms", body=synth._collection(
        "vms", (synth.vm_xml(vm, with_ovf=False) for vm in eng.vms))))
    for vm in eng.vms:
        out.append(synth.interaction(
            "GET", synth.with_query(f"{synth.API}/vms/{vm.id}", all_content="true"),
            body=synth.XML_DECL + synth.vm_xml(vm, with_ovf=True, indent="")))
    out += eng._feed_interactions()       # the API root and the (empty) events feed, where a
    return out                            # sweep places its cursor


def _stats(values: List[int]) -> Dict[str, float]:
    return {"mean": round(statistics.fmean(values), 1), "min": min(values),
            "max": max(values), "median": statistics.median(values)} if values else {}


def describe(eng: SyntheticEngine, items: List[dict], page_size: int = PAGE_SIZE) -> dict:
    """Facts about the inventory and its cassette (printed and stored in results.json)."""
    ovf_sizes = [len(vm.ovf.encode("utf-8")) for vm in eng.vms]
    disks = [vm.ovf.count("<Disk ") for vm in eng.vms]
    nics = [vm.ovf.count("<rasd:ResourceType>10<") for vm in eng.vms]
    pages = [i for i in items if "search=page" in i["request"]["uri"]]
    page_bytes = [len(i["response"]["body"]["string"].encode("utf-8")) for i in pages]
    return {
        "vms": len(eng.vms),
        "page_size": page_size,
        "pages": len(pages),
        "interactions": len(items),
        "ovf_bytes": _stats(ovf_sizes),
        "ovf_bytes_total": sum(ovf_sizes),
        "disks_per_vm": _stats(disks),
        "nics_per_vm": _stats(nics),
        "page_bytes": _stats(page_bytes),
        "os_families": len({vm.os for vm in eng.vms}),
        "datacenters": len(eng.datacenters),
        "clusters": len(eng.clusters),
    }


def cassette_path(work: Path, n: int, seed: int = SEED) -> Path:
    return work / "cassettes" / f"engine-n{n}-s{seed}-g{GENERATOR_VERSION}.json"


def ensure_cassette(work: Path, n: int, seed: int = SEED, *, force: bool = False,
                    log=print) -> Tuple[Path, dict]:
    """The cassette of ``n`` VMs (generated once, then reused) and its description."""
    path = cassette_path(work, n, seed)
    meta_path = path.with_suffix(".meta.json")
    if path.is_file() and meta_path.is_file() and not force:
        meta = json.loads(meta_path.read_text())
        meta["cached"] = True
        return path, meta
    t0 = time.perf_counter()
    eng = build_engine(n, seed)
    items = interactions(eng)
    meta = describe(eng, items)
    t1 = time.perf_counter()
    synth.write_interactions(path, items)        # vcrpy's JSON serializer (".json")
    meta.update(seed=seed, generator_version=GENERATOR_VERSION,
                build_seconds=round(t1 - t0, 2),
                write_seconds=round(time.perf_counter() - t1, 2),
                cassette_bytes=path.stat().st_size)
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    meta["cached"] = False
    log(f"  generated {path} in {meta['build_seconds'] + meta['write_seconds']:.1f}s")
    return path, meta


def main(argv=None) -> int:
    """``python benchmarks/inventory.py N [--work DIR] [--seed S] [--force]``: generate only."""
    import argparse

    parser = argparse.ArgumentParser(description="generate (or find) the cassette of N VMs")
    parser.add_argument("n", type=int)
    parser.add_argument("--work", type=Path,
                        default=Path(__file__).resolve().parent.parent / "bench-out")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--json", action="store_true", help="print only the description")
    args = parser.parse_args(argv)
    path, meta = ensure_cassette(args.work, args.n, args.seed, force=args.force,
                                 log=(lambda s: None) if args.json else print)
    meta["path"] = str(path)
    print(json.dumps(meta, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
