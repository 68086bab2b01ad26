#!/usr/bin/env python3
"""Read-path benchmarks: what ``list``, ``history``, ``restore`` and ``prune`` cost on a long
history. Figures, not pass/fail tests; see benchmarks/README.md.

    python benchmarks/read_path.py                           # localdb 10,000 x 24 and x 96,
                                                             # swift 10,000 x 24 (~10 min cold)
    python benchmarks/read_path.py --vms 2000 --no-swift     # a quicker look

The stores are built through each provider's own write path (its hooks, through the host's
handle, as a backup run calls them), one generation every 15 minutes, about 1% of the VMs
changing per generation, and cached under bench-out/read-path/. The 96-generation catalog is
the 24-generation one continued, so the two are the same VMs. Each command then runs as a
measured subprocess of the real CLI (wall time, peak RSS of the process, via the wrapper of
benchmarks/measure.py); ``restore`` goes to a replay engine in its own process (5 ms per
request) that holds the other VMs of the inventory, as a target engine would.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import inventory  # noqa: E402
from measure import ReplayServer, byte_compile, run_measured  # noqa: E402

from ovirt_backup_plugin import private_dir  # noqa: E402
from ovirt_backup_plugin.errors import BackupError  # noqa: E402
from ovirt_backup_plugin.host import Session  # noqa: E402
from ovirt_backup_plugin.host.sealing import write_new_key  # noqa: E402
from ovirt_backup_plugin.model import BackupOutcome, Run, VmBackup  # noqa: E402
from ovirt_backup_plugin.ovf import ovf_hash, pack, parse_ovf, seal  # noqa: E402
from ovirt_backup_plugin.testing import synth  # noqa: E402

PASSWORD = "replay-secret"
T0 = dt.datetime(2026, 11, 1, 0, 0, tzinfo=dt.timezone.utc)
STEP = dt.timedelta(minutes=15)
BUILD_VERSION = 1                       # bump when the stores built here change
ONE_VM_TARGET = (0.5, 100.0)            # seconds, MB
LIST_TARGET_S = 2.0


def say(text: str = "") -> None:
    print(text, flush=True)


# -- the inventory and its history --------------------------------------------------------
@dataclasses.dataclass
class Corpus:
    """Every VM's current OVF and where it lives; ``changes(g)`` says who changes in g."""

    eng: synth.SyntheticEngine
    ovfs: List[str]
    seed: int
    rate: float

    def changes(self, generation: int) -> List[int]:
        if generation == 0:
            return []
        rng = random.Random(f"{self.seed}:{generation}")
        return rng.sample(range(len(self.ovfs)), max(1, int(len(self.ovfs) * self.rate)))


def corpus(n: int, rate: float, seed: int = inventory.SEED) -> Corpus:
    eng = inventory.build_engine(n, seed)
    return Corpus(eng, [vm.ovf for vm in eng.vms], seed, rate)


def changed(ovf: str, generation: int) -> str:
    """The OVF after a configuration change in ``generation`` (its comment changes)."""
    start = ovf.index("<Comment>") + len("<Comment>")
    end = ovf.index("</Comment>", start)
    return ovf[:start] + f"changed in generation {generation}" + ovf[end:]


def backups(c: Corpus, which: List[int]) -> Dict[int, VmBackup]:
    out = {}
    for n in which:
        vm, text = c.eng.vms[n], c.ovfs[n]
        identity = parse_ovf(text)
        out[n] = VmBackup(vm_id=vm.id, name=vm.name, kind="vm", datacenter=vm.cluster.datacenter.name,
                          cluster=vm.cluster.name, ovf_hash=ovf_hash(text), blob=seal(pack(text)),
                          ovf=text, identity=identity)
    return out


def build(handle, c: Corpus, first: int, last: int, say_every: int = 8) -> List[str]:
    """Generations ``first`` .. ``last - 1`` through the provider's hooks; their run ids."""
    current = backups(c, list(range(len(c.ovfs)))) if first == 0 else None
    if current is None:                      # continuing: replay the changes up to ``first``
        for g in range(1, first):
            for n in c.changes(g):
                c.ovfs[n] = changed(c.ovfs[n], g)
        current = backups(c, list(range(len(c.ovfs))))
    runs = []
    t0 = time.perf_counter()
    for g in range(first, last):
        for n in c.changes(g):
            c.ovfs[n] = changed(c.ovfs[n], g)
        current.update(backups(c, c.changes(g)))
        started = T0 + g * STEP
        run = Run(id=f"{started:%Y%m%dT%H%M%SZ}-{g:08x}", started_at=started, system="bench",
                  engine_url="https://engine.example.com/ovirt-engine/api")
        state = handle.before_backup(run, None)
        for n in range(len(c.ovfs)):
            handle.write_ovf(run, state, current[n])
        handle.after_backup(run, state, None, BackupOutcome(ok=True, written=len(c.ovfs)))
        runs.append(run.id)
        if (g + 1) % say_every == 0 or g == last - 1:
            say(f"    generation {g + 1} written ({time.perf_counter() - t0:.0f}s)")
    return runs


# -- the target engine ----------------------------------------------------------------------
def _collection(tag: str, body: str) -> str:
    return f"{synth.XML_DECL}<{tag}>\n{body}</{tag}>\n" if body else f"{synth.XML_DECL}<{tag}/>\n"


def target_cassette(c: Corpus, restored: int, path: Path) -> Path:
    """An engine that has every VM of the inventory but ``restored`` (deleted by mistake):
    what ``restore --dry-run`` and ``restore`` ask of it, and one ``POST /vms``."""
    eng, api = c.eng, synth.API
    vm = eng.vms[restored]
    out = synth.sso_interactions()
    out.append(synth.interaction("GET", f"{api}/datacenters", body=_collection(
        "data_centers", "".join(synth.datacenter_xml(dc) for dc in eng.datacenters))))
    out.append(synth.interaction("GET", f"{api}/clusters", body=_collection(
        "clusters", "".join(synth.cluster_xml(cl) for cl in eng.clusters))))
    listed = synth.interaction("GET", f"{api}/vms", body=_collection(
        "vms", "".join(synth.vm_xml(v, with_ovf=False) for n, v in enumerate(eng.vms)
                       if n != restored)))
    listed["response"]["complete_collection"] = True   # the replay answers searches over it
    out.append(listed)
    # The collision check's search, answered as the engine does (no such VM), recorded: the
    # replay would otherwise evaluate it over the 10,000-VM listing in Python, a cost of the
    # replay server (about 0.4 s) that no engine has; and every restore sample finds the
    # engine as the first one did.
    out.append(synth.interaction("GET", synth.with_query(
        f"{api}/vms", search=f"id={vm.id} or name={vm.name}"), body=_collection("vms", "")))
    identity = parse_ovf(c.ovfs[restored])
    dc = vm.cluster.datacenter
    networks = sorted({nic.network for nic in identity.nics})
    net_ids = {name: f"00000000-0000-4000-8000-{i:012d}" for i, name in enumerate(networks)}
    out.append(synth.interaction("GET", f"{api}/networks", body=_collection("networks", "".join(
        f'<network href="{api}/networks/{i}" id="{i}"><name>{name}</name>'
        f'<data_center href="{api}/datacenters/{dc.id}" id="{dc.id}"/></network>\n'
        for name, i in net_ids.items()))))
    out.append(synth.interaction("GET", f"{api}/vnicprofiles", body=_collection(
        "vnic_profiles", "".join(
            f'<vnic_profile href="{api}/vnicprofiles/p{i}" id="p{i}"><name>{nic.vnic_profile}'
            f'</name><network href="{api}/networks/{net_ids[nic.network]}" '
            f'id="{net_ids[nic.network]}"/></vnic_profile>\n'
            for i, nic in enumerate(identity.nics)))))
    out.append(synth.interaction("GET", f"{api}/templates", body=_collection(
        "templates", f'<template href="{api}/templates/{synth.ZERO}" id="{synth.ZERO}">'
                     "<name>Blank</name></template>\n")))
    for disk in identity.disks:
        out.append(synth.interaction("GET", f"{api}/disks/{disk.id}", body=synth.XML_DECL + (
            f'<disk href="{api}/disks/{disk.id}" id="{disk.id}"><alias>{disk.alias}</alias>'
            "<status>ok</status></disk>\n")))
    out.append(synth.interaction("GET", f"{api}/events", body=_collection("events", "")))
    created = dataclasses.replace(vm, ovf="")
    text = synth.vm_xml(created, with_ovf=False, indent="")
    out.append(synth.interaction("POST", f"{api}/vms", status=201, body=synth.XML_DECL + text))
    # the VM as the import made it (what the restore reads back to report what it got)
    atts = "".join(f'<disk_attachment id="{d.id}"><active>true</active><disk href="{api}/disks/'
                   f'{d.id}" id="{d.id}"/></disk_attachment>' for d in identity.disks)
    nics = "".join(f'<nic id="n{i}"><name>{nic.name}</name><linked>true</linked><plugged>true'
                   f'</plugged><vnic_profile href="{api}/vnicprofiles/p{i}" id="p{i}"/></nic>'
                   for i, nic in enumerate(identity.nics))
    out.append(synth.interaction(
        "GET", synth.with_query(f"{api}/vms/{vm.id}", follow="disk_attachments,nics"),
        body=synth.XML_DECL + text.replace("</vm>", f"<disk_attachments>{atts}</disk_attachments>"
                                           f"<nics>{nics}</nics></vm>")))
    return synth.write_interactions(path, out)


# -- measuring --------------------------------------------------------------------------------
def cli() -> List[str]:
    script = Path(sys.executable).parent / "ovirt-backup"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "ovirt_backup_plugin.cli"]


def write_config(path: Path, url: str, state_dir: Path, section: str, provider: str,
                 backup_extra: str = "") -> Path:
    path.write_text(f"[engine]\nurl = {url}\nusername = admin@internal\n"
                    "password_env = BENCH_ENGINE_PASSWORD\ntimeout = 600\n\n"
                    f"[backup]\nsystem = bench\nproviders = {provider}\nstate_dir = {state_dir}\n"
                    f"{backup_extra}\n{section}\n")
    return path


def commands(vm_name: str) -> List[Tuple[str, List[str], bool]]:
    """(label, argv after --config, one-VM command?)."""
    return [("list", ["list"], False),
            ("list --json", ["list", "--json"], False),
            ("list --generations VM", ["list", "--generations", vm_name], True),
            ("history VM", ["history", vm_name], True),
            ("restore VM --dry-run", ["restore", vm_name, "--dry-run"], True),
            ("restore VM", ["restore", vm_name], True),
            ("prune --keep-last 48 --dry-run", ["prune", "--keep-last", "48", "--dry-run"], False)]


def measure_all(label: str, config: Path, vm_name: str, server: ReplayServer, log_dir: Path,
                repeat: int) -> Dict[str, dict]:
    env = {**os.environ, "BENCH_ENGINE_PASSWORD": PASSWORD}
    results = {}
    for name, argv, one_vm in commands(vm_name):
        best = None
        for k in range(repeat):
            tag = f"{label}-{name.replace(' ', '_').replace('-', '')}-{k}"
            m = run_measured(tag, cli() + ["--config", str(config), *argv], log_dir=log_dir,
                             env=env, server_pid=server.pid)
            if best is None or m.wall_s < best.wall_s:
                best = m
        assert best is not None
        out = Path(best.stdout_path).read_text(errors="replace")
        results[name] = {"wall_s": best.wall_s, "cpu_s": round(best.cpu_s, 3),
                         "peak_rss_mb": best.peak_rss_mb, "rc": best.rc, "one_vm": one_vm,
                         "lines": out.count("\n"), "load": best.loadavg_before}
        say(f"    {name:32s} {best.wall_s:6.2f}s {best.peak_rss_mb:7.1f} MB  rc {best.rc}  "
            f"{out.count(chr(10))} lines")
    return results


def verdict(name: str, r: dict) -> str:
    if r["rc"] != 0:
        return f"rc {r['rc']}"               # it failed: its figures measure nothing
    if r["one_vm"]:
        ok = r["wall_s"] <= ONE_VM_TARGET[0] and r["peak_rss_mb"] <= ONE_VM_TARGET[1]
    elif name == "list":
        ok = r["wall_s"] <= LIST_TARGET_S
    else:
        return "-"
    return "PASS" if ok else "MISS"


# -- the stores ---------------------------------------------------------------------------------
def localdb_store(work: Path, n: int, gens: int, rate: float, base: Optional[Path]) -> Path:
    """A catalog of ``gens`` generations (continuing ``base`` when given); cached."""
    directory = work / f"localdb-n{n}-g{gens}-r{rate}-v{BUILD_VERSION}"
    if (directory / "done").is_file():
        say(f"  localdb {n:,} x {gens}: cached in {directory}")
        return directory
    if directory.exists():
        shutil.rmtree(directory)
    private_dir(directory)  # it holds OVFs: private, as the product makes its own
    first = 0
    if base is not None:
        shutil.copy(base / "catalog.sqlite", directory / "catalog.sqlite")
        first = json.loads((base / "done").read_text())["generations"]
    say(f"  localdb {n:,} x {gens}: building generations {first + 1}-{gens} through its hooks")
    session = Session.for_engine(None, system="bench", providers=["localdb"],
                                 state_dir=str(directory),
                                 provider_options={"localdb": {"path": str(directory / "catalog.sqlite")}})
    t0 = time.perf_counter()
    build(session.handles[0], corpus(n, rate), first, gens)
    (directory / "done").write_text(json.dumps({"generations": gens, "build_s": round(
        time.perf_counter() - t0, 1)}))
    return directory


def swift_key(work: Path) -> Path:
    """The encryption key of the swift store (swift seals encrypted by default: off host)."""
    key = work / "swift-bench.key"
    if not key.is_file():
        write_new_key(str(key))
    return key


def swift_store(work: Path, n: int, gens: int, rate: float, env: Dict[str, str]) -> Dict[str, str]:
    container = f"bench-read-path-n{n}-g{gens}-v{BUILD_VERSION}"
    section = {"auth_url": env["SWIFT_AUTH_URL"], "user": env["SWIFT_USER"],
               "key_env": "BENCH_SWIFT_KEY", "container": container, "timeout": "120"}
    os.environ["BENCH_SWIFT_KEY"] = env["SWIFT_KEY"]
    marker = work / f"{container}.done"
    session = Session.for_engine(None, system="bench", providers=["swift"], state_dir=str(work),
                                 provider_options={"swift": section},
                                 encryption_key_file=str(swift_key(work)))
    if marker.is_file():
        try:
            held = len(session.handles[0].list_generations())
        except BackupError:
            held = 0
        if held == gens:
            say(f"  swift {n:,} x {gens}: cached in container {container}")
            return section
        say(f"  swift {n:,} x {gens}: the cached container holds {held} generation(s) (the "
            "loopback Swift this script starts wipes its data when it stops)")
    say(f"  swift {n:,} x {gens}: building through its hooks into container {container}")
    build(session.handles[0], corpus(n, rate), 0, gens, say_every=4)
    marker.write_text("done\n")
    return section


def start_swift(work: Path) -> Tuple[Dict[str, str], Optional[Path]]:
    if all(os.environ.get(v) for v in ("SWIFT_AUTH_URL", "SWIFT_USER", "SWIFT_KEY")):
        return dict(os.environ), None
    saio = work / "saio"
    env = {**os.environ, "SAIO_PORTS": "auto"}
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "start-saio.sh"), str(saio)], env=env,
                          capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"start-saio.sh failed:\n{proc.stderr[-2000:]}")
    found = dict(os.environ)
    for line in proc.stdout.splitlines():
        if line.startswith("export ") and "=" in line:
            key, _, value = line[7:].partition("=")
            found[key] = value.strip("'\"")
    return found, saio


# -- main ----------------------------------------------------------------------------------------
def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--vms", type=int, default=10_000)
    p.add_argument("--generations", default="24,96", help="localdb generation counts")
    p.add_argument("--swift-generations", type=int, default=24)
    p.add_argument("--no-swift", action="store_true")
    p.add_argument("--rate", type=float, default=0.01, help="share of VMs changing per generation")
    p.add_argument("--delay", type=float, default=0.005, help="replay server delay per request")
    p.add_argument("--repeat", type=int, default=2, help="samples per command (fastest reported)")
    p.add_argument("--work", type=Path, default=ROOT / "bench-out" / "read-path")
    args = p.parse_args(argv)
    byte_compile(ROOT / "ovirt_backup_plugin", ROOT / "hooks")   # as installed
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    gens = sorted(int(g) for g in args.generations.split(","))
    c = corpus(args.vms, args.rate)
    counts: Dict[int, int] = {}
    for g in range(1, max(gens + [args.swift_generations])):
        for n in c.changes(g):
            counts[n] = counts.get(n, 0) + 1
    pick = max(sorted(counts), key=lambda n: counts[n])           # the VM that changed most
    vm_name = c.eng.vms[pick].name
    say(f"== read path: {args.vms:,} VMs, {args.rate:.0%} changing per generation; one-VM "
        f"commands use {vm_name} (changed {counts.get(pick, 0)} times)")
    cassette = target_cassette(c, pick, work / f"target-n{args.vms}-{pick}.json")
    results: Dict[str, Dict[str, dict]] = {}
    with ReplayServer(cassette, delay=args.delay, log_path=work / "replay.log",
                      password=PASSWORD) as server:
        say(f"  target engine: replay server at {server.url} ({args.delay * 1000:g} ms/request)")
        base = None
        for g in gens:
            store = localdb_store(work, args.vms, g, args.rate, base)
            base = store
            config = write_config(work / f"localdb-{g}.ini", server.url, store / "state",
                                  f"[provider:localdb]\npath = {store / 'catalog.sqlite'}",
                                  "localdb")
            size = (store / "catalog.sqlite").stat().st_size / 1e6
            say(f"  localdb {args.vms:,} x {g} ({size:.0f} MB catalog):")
            results[f"localdb x{g}"] = measure_all(f"localdb{g}", config, vm_name, server,
                                                   work / "logs", args.repeat)
        if not args.no_swift:
            env, saio = start_swift(work)
            try:
                section = swift_store(work, args.vms, args.swift_generations, args.rate, env)
                text = "[provider:swift]\n" + "".join(f"{k} = {v}\n" for k, v in section.items())
                config = write_config(work / "swift.ini", server.url, work / "swift-state", text,
                                      "swift", f"encryption_key_file = {swift_key(work)}")
                say(f"  swift {args.vms:,} x {args.swift_generations}:")
                results[f"swift x{args.swift_generations}"] = measure_all(
                    "swift", config, vm_name, server, work / "logs", args.repeat)
            finally:
                if saio is not None:
                    subprocess.run(["bash", str(ROOT / "scripts" / "stop-saio.sh"), str(saio)],
                                   capture_output=True, timeout=120)
    print_table(results, gens)
    (work / "results.json").write_text(json.dumps(results, indent=2))
    say(f"\nfigures: {work / 'results.json'}")
    return 0


def print_table(results: Dict[str, Dict[str, dict]], gens: List[int]) -> None:
    say("\n=== Read path: wall s / peak RSS MB (target: one-VM commands <= 0.5 s and 100 MB; "
        "list <= 2 s) ===")
    stores = list(results)
    header = f"{'command':32s}" + "".join(f"{s:>22s}" for s in stores)
    if len(gens) >= 2:
        header += f"{'x' + str(gens[-1]) + '/x' + str(gens[0]):>12s}"
    say(header)
    for name in next(iter(results.values())):
        row = f"{name:32s}"
        for s in stores:
            r = results[s][name]
            row += f"{r['wall_s']:7.2f}s {r['peak_rss_mb']:6.1f}MB {verdict(name, r):>5s}"
        if len(gens) >= 2:
            a, b = results[f"localdb x{gens[0]}"][name], results[f"localdb x{gens[-1]}"][name]
            row += f"{b['wall_s'] / a['wall_s']:11.2f}x"
        say(row)
    say("(x96/x24: time of the 96-generation catalog against the 24-generation one: flat is ~1)")


if __name__ == "__main__":
    sys.exit(main())
