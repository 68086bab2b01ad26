"""The engine's audit log as a change feed: which events can change a VM's OVF, and reading them.

There is no "modified since" query for VMs, and ``db_generation`` is only in the OVF (as
``<Generation>``), so incremental capture follows the events feed (``GET /events``). What
is known about it comes from the engine's source (notes: engine-facts A, oVirt/ovirt-engine
@0111fc63; ``ALT`` = AuditLogType.java, ``rest/`` = the REST layer, ``sb/`` = the search
backend):

* ``from`` is strictly greater: the engine adds ``audit_log_id > from`` when ``from > 0``
  (sb/SyntaxChecker L935-937). Results are ``ORDER BY audit_log_id DESC``
  (SearchObjectAutoCompleter L388-394), so ``from=X&max=N`` is the *newest* N events above
  X, not the next N: this module reads one page of at most :data:`FEED_MAX` and treats a
  full page as "too much happened" (the caller sweeps) rather than paging a newest-first
  feed.
* ``from`` is read as an int (rest/AbstractBackendCollectionResource L56-62); the SDK's
  ``from_`` must be an ``int``. An event's ``id`` is ``String(audit_log_id)`` and its
  ``index`` the same cast to a Java ``int`` (EventMapper L27-28; ``audit_log_id`` is a
  ``bigint``), so ``int(event.id)`` is used, never ``event.index``.
* Dismissed events (``DELETE /events/{id}``, the UI's "clear all") are ``deleted`` and
  every event search adds ``not deleted`` (SyntaxChecker L884-888): they vanish. Events
  older than ``AuditLogAgingThreshold`` (30 days) are deleted every day
  (AuditLogCleanupManager L50-56).
* ``search`` takes ``type=CODE`` joined with ``or`` (the event fields of
  AuditLogConditionFieldAutoCompleter), so only the codes below are read.
* ``audit_log_id`` comes from a sequence at insert, in a short transaction of its own
  (AuditLogDirector L74-77): an id lower than one already seen may become visible a moment
  later (inference from PostgreSQL sequence semantics). The caller re-reads a margin.

:data:`CODES` lists every AuditLogType that can change what a VM's OVF says, with its
name and number (ALT), and what following it means: ``vm`` (the event names the VM: read
that VM again; an event of such a code that names none forces a sweep), ``vm-if-named``
(read the named VM if there is one; otherwise nothing of a VM changed) and ``sweep`` (it
may change VMs without naming them: only a sweep is honest). Run and stop events are
followed because they bump ``db_generation`` (RunVmCommand.runningSucceded L1379,
StopVmCommandBase L183), which the OVF writes as ``<Generation>`` (OvfWriter L244) and the
content hash includes. Tags are not followed: no OVF writer writes a VM's tags
(OvfWriter, OvfOvirtWriter, OvfVmWriter); permissions are, because OvfOvirtWriter writes
the users with permissions on the VM (``UserDomainsSection``), as OvfVmWriter writes
affinity groups and labels.
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from .adapter import Engine, event_index, summary_vms

__all__ = ["EventCode", "CODES", "FOLLOWED", "VM", "VM_IF_NAMED", "SWEEP", "FEED_MAX",
           "FeedEvent", "EngineStatus", "feed_search", "read_feed", "newest_events",
           "engine_status"]

VM = "vm"                    # the named VM's configuration (or db_generation) changed
VM_IF_NAMED = "vm-if-named"  # the named VM, if the event names one; nothing otherwise
SWEEP = "sweep"              # may change VMs' OVFs without naming them: sweep

#: The most events one read of the feed asks for. A full page means more happened since
#: the cursor than is worth following one by one: the caller sweeps.
FEED_MAX = 5000


@dataclass(frozen=True)
class EventCode:
    """One AuditLogType the feed follows."""

    code: int
    name: str
    effect: str
    why: str = ""


def _codes(effect: str, *pairs: Tuple[int, str], why: str = "") -> Tuple[EventCode, ...]:
    return tuple(EventCode(code, name, effect, why) for code, name in pairs)


#: Every event code that can change a VM's configuration or existence (engine-facts A1,
#: numbers from ALT). Grouped by what the engine does; ``why`` says where it is logged.
CODES: Tuple[EventCode, ...] = (
    # adding a VM: AddVm*, CloneVm, AddVmFromSnapshot (bll/AddVmCommand L1503-1516)
    *_codes(VM, (34, "USER_ADD_VM"), (37, "USER_ADD_VM_STARTED"),
            (53, "USER_ADD_VM_FINISHED_SUCCESS"), (60, "USER_ADD_VM_FINISHED_FAILURE"),
            (57, "USER_FAILED_ADD_VM"), why="AddVmCommand and its subclasses"),
    # updating a VM (bll/UpdateVmCommand L267-271, ChangeVMClusterCommand L186-192,
    # ProcessDownVmCommand L269 next-run config, UpdateClusterCommand L503 per VM)
    *_codes(VM, (35, "USER_UPDATE_VM"), (253, "SYSTEM_UPDATE_VM"),
            (250, "USER_UPDATE_VM_CLUSTER_DEFAULT_HOST_CLEARED"),
            (1200, "ENTITY_RENAMED"), (1400, "ENTITY_RENAMED_INTERNALLY"),
            why="UpdateVmCommand (a rename logs 35 and 1200)"),
    # removing a VM (bll/RemoveVmCommand L373-381); there is no USER_REMOVE_VM constant
    *_codes(VM, (113, "USER_REMOVE_VM_FINISHED"), (1130, "USER_REMOVE_VM_FINISHED_INTERNAL"),
            (172, "USER_REMOVE_VM_FINISHED_WITH_ILLEGAL_DISKS"),
            (1720, "USER_REMOVE_VM_FINISHED_ILLEGAL_DISKS_INTERNAL"), why="RemoveVmCommand"),
    # NICs (bll/network/vm/*VmInterfaceCommand)
    *_codes(VM, (932, "NETWORK_ADD_VM_INTERFACE"), (934, "NETWORK_UPDATE_VM_INTERFACE"),
            (930, "NETWORK_REMOVE_VM_INTERFACE"), why="Add/Update/RemoveVmInterfaceCommand"),
    # disks of a VM (bll/storage/disk/*)
    *_codes(VM, (78, "USER_ADD_DISK_TO_VM"), (97, "USER_ADD_DISK_TO_VM_FINISHED_SUCCESS"),
            (2016, "USER_ATTACH_DISK_TO_VM"), (2018, "USER_DETACH_DISK_FROM_VM"),
            (88, "USER_UPDATE_VM_DISK"), (371, "USER_EXTEND_DISK_SIZE_SUCCESS"),
            (377, "USER_EXTENDED_DISK_SIZE"), (2000, "USER_HOTPLUG_DISK"),
            (2002, "USER_HOTUNPLUG_DISK"), (2008, "USER_MOVED_VM_DISK"),
            (2010, "USER_MOVED_VM_DISK_FINISHED_SUCCESS"),
            why="disk commands with the VM as container (371/2008/2010: vm id UNVERIFIED; "
                "without one the run sweeps)"),
    # removing a disk attached to VMs names them only in its text (RemoveDiskCommand L558-597)
    *_codes(SWEEP, (2042, "USER_FINISHED_REMOVE_DISK_ATTACHED_TO_VMS"),
            (2043, "USER_FINISHED_REMOVE_DISK_ATTACHED_TO_VMS_NO_DOMAIN"),
            (2044, "USER_REMOVE_DISK_ATTACHED_TO_VMS_INITIATED"),
            why="RemoveDiskCommand.getAuditLogTypeValue (LUN / Cinder variants too): the VMs "
                "only in ${VmNames}, their db_generation bumped (incrementVmsGeneration)"),
    # snapshots (CreateSnapshotForVm L225-237, RemoveSnapshot L563-575, TryBackToAllSnapshots
    # L542-555, RestoreAllSnapshots L793-812)
    *_codes(VM, (45, "USER_CREATE_SNAPSHOT"), (68, "USER_CREATE_SNAPSHOT_FINISHED_SUCCESS"),
            (342, "USER_REMOVE_SNAPSHOT"), (356, "USER_REMOVE_SNAPSHOT_FINISHED_SUCCESS"),
            (46, "USER_TRY_BACK_TO_SNAPSHOT"), (71, "USER_TRY_BACK_TO_SNAPSHOT_FINISH_SUCCESS"),
            (94, "USER_COMMIT_RESTORE_FROM_SNAPSHOT_START"),
            (95, "USER_COMMIT_RESTORE_FROM_SNAPSHOT_FINISH_SUCCESS"),
            (650, "USER_UNDO_RESTORE_FROM_SNAPSHOT_START"),
            (651, "USER_UNDO_RESTORE_FROM_SNAPSHOT_FINISH_SUCCESS"), why="snapshot commands"),
    # imports (ImportVmCommandBase L831-846; ImportVmFromConfiguration, engine-facts B2)
    *_codes(VM, (1165, "IMPORTEXPORT_STARTING_IMPORT_VM"), (1152, "IMPORTEXPORT_IMPORT_VM"),
            (174, "VM_IMPORT_FROM_CONFIGURATION_EXECUTED_SUCCESSFULLY"),
            (175, "VM_IMPORT_FROM_CONFIGURATION_ATTACH_DISKS_FAILED"),
            (1198, "IMPORTEXPORT_IMPORT_VM_CUSTOM_VERSION_CHANGE"),
            (1229, "IMPORTEXPORT_IMPORT_VM_UPDATED"),
            (1188, "IMPORTEXPORT_PARTIAL_VM_MISSING_ENTITIES"), (925, "MAC_ADDRESS_IS_EXTERNAL"),
            why="imports from an export domain, a configuration or a storage domain"),
    *_codes(SWEEP, (9600, "IMPORTEXPORT_IMPORT_VM_INVALID_INTERFACES"),
            why="an import that names no VM (new AuditLogableImpl, VnicProfileHelper L131-139)"),
    # pools (AddVmToPoolCommand L21, RemoveVmFromPoolCommand L31 set the VM id)
    *_codes(VM, (306, "USER_ADD_VM_TO_POOL"), (308, "USER_REMOVE_VM_FROM_POOL"),
            why="Add/RemoveVmToPoolCommand"),
    *_codes(SWEEP, (302, "USER_ADD_VM_POOL_WITH_VMS"), (344, "USER_UPDATE_VM_POOL_WITH_VMS"),
            (304, "USER_REMOVE_VM_POOL"), why="pool commands add or remove VMs unnamed"),
    # templates: a VM's OVF carries its template's name (OvfVmWriter TemplateName)
    *_codes(VM_IF_NAMED, (48, "USER_ADD_VM_TEMPLATE"), (29, "USER_ADD_VM_TEMPLATE_SUCCESS"),
            (51, "USER_ADD_VM_TEMPLATE_FINISHED_SUCCESS"),
            why="AddVmTemplateCommand L1241-1263: the VM it was made from, when there is one"),
    *_codes(SWEEP, (49, "USER_UPDATE_VM_TEMPLATE"),
            why="UpdateVmTemplate L437: a rename changes <TemplateName> of its VMs"),
    # affinity groups and labels are written in VM OVFs (OvfVmWriter.writeAffinityGroups/
    # Labels); their commands set the cluster only (AffinityGroupCRUDCommand L63)
    *_codes(SWEEP, (10350, "USER_ADDED_AFFINITY_GROUP"), (10352, "USER_UPDATED_AFFINITY_GROUP"),
            (10354, "USER_REMOVED_AFFINITY_GROUP"), (10380, "USER_ADDED_AFFINITY_LABEL"),
            (10382, "USER_UPDATED_AFFINITY_LABEL"), (10384, "USER_REMOVED_AFFINITY_LABEL"),
            why="affinity commands name no VM"),
    # permissions: OvfOvirtWriter.writeUserData writes the users with permissions on the VM
    *_codes(SWEEP, (850, "USER_ADD_PERMISSION"), (852, "USER_REMOVE_PERMISSION"),
            why="PermissionsCommandBase sets no VM id (the object only in the text)"),
    # clusters and data centers: the OVF carries <ClusterName>, the backup the names the
    # engine reports; a DC compatibility upgrade bumps every VM's db_generation and logs
    # only 952 (UpdateStoragePoolCommand L142-158, L213-215; IncrementDbGenerationForAll...)
    *_codes(SWEEP, (811, "USER_UPDATE_CLUSTER"), (952, "USER_UPDATE_STORAGE_POOL"),
            why="cluster / data center updates (renames, compatibility upgrades) name no VM"),
    # power state: run and stop bump db_generation (A4), so <Generation> changes
    *_codes(VM, (153, "USER_STARTED_VM"), (32, "USER_RUN_VM"), (33, "USER_STOP_VM"),
            (73, "USER_INITIATED_SHUTDOWN_VM"), (61, "VM_DOWN"), (119, "VM_DOWN_ERROR"),
            why="RunVmCommand / StopVmCommandBase bump db_generation"),
)

FOLLOWED: Dict[int, EventCode] = {c.code: c for c in CODES}


def feed_search() -> str:
    """The ``search`` of the feed: every followed code, ``type=A or type=B ...`` (stable:
    sorted, so the engine's search cache sees one text, bll/SearchQuery L95)."""
    return " or ".join(f"type={code}" for code in sorted(FOLLOWED))


@dataclass(frozen=True)
class FeedEvent:
    """One event as the feed shows it."""

    id: int                                # audit_log_id (int(event.id))
    code: int
    time: Optional[_dt.datetime]
    vm_id: str = ""                        # "" when the event names no VM id
    description: str = ""

    @property
    def kind(self) -> Optional[EventCode]:
        return FOLLOWED.get(self.code)

    def label(self) -> str:
        kind = self.kind
        name = kind.name if kind else "?"
        return f"event {self.id} ({self.code} {name})"


@dataclass(frozen=True)
class EngineStatus:
    """What ``GET /ovirt-engine/api`` says: the engine's clock and its VM count (the
    summary is only there for admin users: BackendApiResource.get, BZ 1612124)."""

    time: Optional[_dt.datetime]
    vms: Optional[int]


def _event(e: Any) -> FeedEvent:
    vm = getattr(e, "vm", None)
    return FeedEvent(id=event_index(e), code=int(e.code) if e.code is not None else -1, time=e.time,
                     vm_id=str(vm.id) if vm is not None and vm.id else "",
                     description=str(e.description or "")[:200])


def read_feed(engine: Engine, after: int, *, max_: int = FEED_MAX) -> List[FeedEvent]:
    """The followed events with ``audit_log_id >= after`` (the cursor's own event included,
    so that its presence proves nothing was aged out or dismissed since), newest first; at
    most ``max_``. ``after`` 0 reads every followed event the engine still has."""
    svc = engine.system_service.events_service()
    kwargs: Dict[str, Any] = dict(search=feed_search(), max=max_)
    if after > 1:
        kwargs["from_"] = int(after) - 1
    events = engine.call("reading the events feed", lambda: svc.list(**kwargs))
    return [_event(e) for e in events]


def newest_events(engine: Engine, count: int) -> List[FeedEvent]:
    """The ``count`` newest followed events (newest first): where a sweep's cursor is."""
    svc = engine.system_service.events_service()
    events = engine.call("reading the newest events",
                         lambda: svc.list(search=feed_search(), max=count))
    return [_event(e) for e in events]


def engine_status(engine: Engine) -> EngineStatus:
    """``GET /ovirt-engine/api``: the engine's time and VM count (None when not shown)."""
    api = engine.call("reading the engine's summary", lambda: engine.system_service.get())
    return EngineStatus(time=getattr(api, "time", None), vms=summary_vms(api))
