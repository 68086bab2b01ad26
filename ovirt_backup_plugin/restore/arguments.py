"""The command line of ``list``, ``restore`` and ``history``: their arguments, help and
defaults, apart from the code that runs them (:mod:`.commands`), so that the parser of
every command loads none of it."""
from __future__ import annotations

import argparse

#: Imports in flight by default, from benchmarks/restore.py (README): at 5 ms per request
#: a restore of 1,000 VMs takes 0.27 of the sequential time at K=4 and 0.17 at K=8; K=8
#: doubles the imports (locking, database-heavy commands) the engine runs at once.
DEFAULT_PARALLEL = 4
#: Restores of more copies than this print the plan's summary and ask first (``--yes``).
CONFIRM_ABOVE = 5

RESTORE_DESCRIPTION = f"""\
Restore VMs from their newest backup (or --generation / --at): by name, id or glob, every
VM of a data center or cluster (--all --datacenter X), or those a file lists; --exclude
leaves some out. In a terminal with no VM named, filter and pick from a list.

Templates come first, then the VMs, imported --parallel K at a time, each on its own engine
connection; locks and a busy engine are retried with back-off. Every import carries a
Correlation-Id: afterwards its audit events and the created VM (its NICs, its disks) are
read, and a VM the engine degraded is reported "restored with warnings" (exit 1). Running
the same restore again skips what an earlier run of it created, and says so.

Copies (new ids) restored into the engine the backup came from get their NICs unplugged
(their guests carry the original's IP addresses): --nics-plugged keeps them. Into another
engine, map networks, vNIC profiles and clusters (--map-*). Restoring more than
{CONFIRM_ABOVE} copies prints the plan's summary and asks (--yes for scripts).

exit codes: 0 every copy restored cleanly (or already there), 1 some came back degraded or
failed, 2 nothing was restored; with --dry-run: 0 clean plan, 1 problems, 2 no plan."""


def add_parsers(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """``list``, ``restore`` and ``history``."""
    ls = sub.add_parser("list", help="list what is restorable",
                        description="The newest backup of each VM (or every generation), "
                        "answered from each provider's index.")
    ls.add_argument("vms", nargs="*", metavar="VM", help="only these VMs: names, ids or "
                    "globs like 'web*' (default: all)")
    ls.add_argument("--datacenter")
    ls.add_argument("--cluster", dest="cluster_filter", metavar="CLUSTER")
    ls.add_argument("--provider", help="only this provider")
    ls.add_argument("--at", help="as it was at this time (ISO 8601, UTC)")
    ls.add_argument("--generation", help="only this generation (run id)")
    ls.add_argument("--limit", type=int, metavar="N", help="at most N items, newest first")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.add_argument("--generations", action="store_true",
                    help="every generation, not only the newest per VM")

    r = sub.add_parser(
        "restore", help="restore VMs (by name, id, glob, data center, file) into this engine "
        "or another", formatter_class=argparse.RawDescriptionHelpFormatter,
        description=RESTORE_DESCRIPTION)
    r.add_argument("vms", nargs="*", metavar="VM", help="VM names, ids or globs like 'web*' "
                   "(quote them); none: --all, --from-file, or pick in a terminal")
    sel = r.add_argument_group("what to restore")
    sel.add_argument("--all", action="store_true", help="every VM in scope (with "
                     "--datacenter / --from-cluster: every VM there)")
    sel.add_argument("--datacenter", help="only VMs backed up in this data center")
    sel.add_argument("--from-cluster", dest="cluster_filter", metavar="CLUSTER",
                     help="only VMs backed up in this cluster (--cluster is where to restore)")
    sel.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                     help="leave out VMs whose name matches (repeat)")
    sel.add_argument("--from-file", metavar="FILE", help="VMs listed in FILE: one name, id "
                     "or glob per line, or what 'list --json' prints")
    sel.add_argument("--provider", help="restore from this provider only")
    sel.add_argument("--generation", help="restore this generation (run id)")
    sel.add_argument("--at", help="restore the newest generation at or before this time "
                     "(ISO 8601, UTC)")
    how = r.add_argument_group("how")
    how.add_argument("--dry-run", action="store_true", help="print the plan against the engine "
                     "(cluster, BIOS type, level, data center, MAC pool, collisions, templates, "
                     "networks, vNIC profiles, disks, what cannot come back) and change "
                     "nothing; exit 1 when it has problems")
    how.add_argument("--copies", type=int, default=1, help="copies of each VM (new ids, names "
                     "from --name-pattern)")
    how.add_argument("--name-pattern", help="names of copies, default '{name}-{n}'")
    how.add_argument("--cluster", help="target cluster of every copy (default: the cluster "
                     "recorded at backup, after --map-cluster)")
    how.add_argument("--new-ids", action="store_true", help="give a single copy new ids too")
    how.add_argument("--parallel", type=int, default=DEFAULT_PARALLEL, metavar="K",
                     help=f"imports in flight, each on its own engine connection (default "
                     f"{DEFAULT_PARALLEL})")
    how.add_argument("--wait-locked", type=float, default=600.0, metavar="SECONDS",
                     help="how long to follow an import the engine answered 202 (4.4, 4.5.0) "
                     "until the VM leaves image_locked (default 600)")
    how.add_argument("--json", action="store_true", help="print every copy's outcome (or the "
                     "plan) as JSON")
    how.add_argument("-y", "--yes", action="store_true", help=f"restore more than "
                     f"{CONFIRM_ABOVE} copies without asking (for scripts)")
    plug = how.add_mutually_exclusive_group()
    plug.add_argument("--nics-unplugged", action="store_true", help="restore every NIC "
                      "unplugged and unlinked")
    plug.add_argument("--nics-plugged", action="store_true", help="keep NICs as the OVF has "
                      "them, also for copies into the engine the backup came from")
    mp = r.add_argument_group("into another engine")
    mp.add_argument("--map-network", action="append", default=[], metavar="SRC=DST",
                    help="NICs on network SRC go to DST (its default profile follows; repeat)")
    mp.add_argument("--map-vnic-profile", action="append", default=[], metavar="SRC=DST",
                    help="vNIC profile SRC becomes DST; NETWORK/PROFILE or PROFILE (repeat)")
    mp.add_argument("--map-cluster", action="append", default=[], metavar="SRC=DST",
                    help="VMs of cluster SRC go to cluster DST (repeat)")
    mp.add_argument("--map-file", metavar="FILE", help="mappings in a YAML or JSON file: "
                    "networks:, vnic_profiles:, clusters: (SRC: DST); the options win")
    reg = r.add_argument_group("registering from a storage domain (msd)")
    reg.add_argument("--vnic-profile-map", action="append", default=[],
                     metavar="NETWORK/PROFILE=PROFILE_ID",
                     help="map a vNIC profile of the source to one of this engine (repeat)")
    reg.add_argument("--no-partial-import", action="store_true",
                     help="fail when a disk of the VM is missing (default: import without it)")
    reg.add_argument("--keep-bad-macs", action="store_true",
                     help="do not reassign MACs outside this engine's MAC pools")

    hi = sub.add_parser("history", help="when a VM's configuration changed, and what changed")
    hi.add_argument("vm", metavar="VM", help="VM name or id")
    hi.add_argument("--provider", help="only this provider's generations")
    hi.add_argument("--json", action="store_true", help="machine-readable output")
