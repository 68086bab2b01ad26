"""msd: each data center's master storage domain and its OVF_STORE, kept by the engine itself.

Only the engine writes OVF_STORE (every OvfUpdateIntervalInMinutes, 60 by default), so this
provider stores nothing of its own. When a run has captured every VM it forces an OVF_STORE
update on the master domain of each data center in scope, each data center on its own:

* a data center without storage (uninitialized) or without an active master domain is
  skipped with a note; one that fails does not stop the others; the report says per data
  center what happened (and the run is partial, exit 1, when some were updated and one
  failed);
* a 409 is read: "OVF data is currently being updated" / "Related operation is currently in
  progress" means another update is running, which is transient (the host retries the whole
  step after ``busy_wait``, and the data centers already done are not forced again); any
  other 409 ("... must be an active data domain") is permanent and reported at once;
* the engine confirms a write with its USER_UPDATE_OVF_STORE audit event (199): REST has no
  "Last Updated" and ``updateovfstore`` answers before the write. The event seen before the
  update is the baseline; reading it may fail, and never stops the update itself.

It lists the VMs and templates a data domain brought that the engine has not registered (a
domain attached from another engine) and restores them by registering them (templates
first: the host sorts them first), then renames a VM when another name is asked. It
registers what it lists as it is: no copies with new ids, and templates keep their name.

Settings (``[provider:msd]``): ``busy_wait`` (seconds a busy OVF_STORE is given before the
next attempt, default 10), ``confirm_timeout`` (seconds to wait for the confirmation event,
default 120; the run says "not confirmed" after that, it does not fail) and
``confirm_poll`` (seconds between two looks, default 5).
"""
import datetime as dt
import logging
import time
from dataclasses import dataclass, field

from ovirt_backup_plugin import hookimpl
from ovirt_backup_plugin.errors import ConflictError, EngineError, ProviderError
from ovirt_backup_plugin.model import (
    KEEPS_ENGINE,
    Option,
    ProviderDeclaration,
    Restorable,
    RestoreResult,
    VmIdentity,
)

log = logging.getLogger(__name__)

#: 409 details that mean "an OVF_STORE update is running now": worth another try.
BUSY_WORDS = ("currently being updated", "currently in progress", "try again later")
#: Data-center statuses without usable storage.
NO_STORAGE = ("uninitialized", "not_operational")


@hookimpl
def declare_provider():
    return ProviderDeclaration(
        keeps=KEEPS_ENGINE, description="the OVF_STORE of each data center's master domain",
        options=(Option("busy_wait", "duration", 10.0,
                        help="seconds a busy OVF_STORE is given before the next attempt"),
                 Option("confirm_timeout", "duration", 120.0,
                        help="seconds to wait for the engine's confirmation event"),
                 Option("confirm_poll", "duration", 5.0,
                        help="seconds between two looks for it")))


def _datacenters(engine, settings, datacenter=None):
    scope = datacenter or settings.datacenter
    return [scope] if scope else [dc.name for dc in engine.datacenters()]


@dataclass
class _Run:
    """The data centers of this run, and what happened to each so far."""

    datacenters: list
    done: dict = field(default_factory=dict)       # dc -> the report line (ok or skipped)
    failed: dict = field(default_factory=dict)     # dc -> why it failed for good


@hookimpl
def before_backup(run, engine, settings):
    return _Run(_datacenters(engine, settings, run.datacenter))


@hookimpl
def after_backup(run, state, engine, settings, outcome, note):
    if not outcome.ok:
        note("run abandoned: no OVF_STORE update forced")
        return
    busy = []
    for dc in state.datacenters:
        if dc in state.done or dc in state.failed:
            continue
        try:
            line = _force(engine, dc, settings)
        except _Busy as e:
            busy.append(f"data center {dc}: {e}")
            continue
        except (EngineError, ProviderError) as e:
            state.failed[dc] = str(e)
            note(f"OVF_STORE of data center {dc} NOT updated: {e}")
            continue
        state.done[dc] = line
        note(line)
    updated = any(line.startswith("OVF_STORE of") for line in state.done.values())
    if busy:
        raise ProviderError("OVF_STORE busy, retried later: " + "; ".join(busy),
                            transient=True, retry_after=float(settings.get("busy_wait", 10.0)),
                            partial=updated)
    if state.failed:
        raise ProviderError("OVF_STORE not updated in " + ", ".join(
            f"data center {dc} ({why})" for dc, why in state.failed.items()), partial=updated)


class _Busy(Exception):
    """An OVF_STORE update is running on the engine right now."""


def _force(engine, dc_name, settings) -> str:
    """Force one data center's master OVF_STORE; the line for the run report."""
    dc = engine.datacenter(dc_name)
    if dc.status in NO_STORAGE:
        return f"data center {dc_name} skipped: it is {dc.status} (no storage to update)"
    domains = engine.storage_domains(dc_name)
    master = next((sd for sd in domains if sd.master), None)
    if master is None:
        return (f"data center {dc_name} skipped: it has no master storage domain "
                f"({len(domains)} storage domain(s); is it initialized?)")
    if master.status not in ("active", ""):
        return (f"data center {dc_name} skipped: its master domain {master.name} is "
                f"{master.status}, not active")
    try:
        baseline = engine.ovf_store_confirmations(master.name)
    except EngineError as e:          # the confirmation read never blocks the update
        log.info("cannot read the OVF_STORE events of %s before the update: %s", master.name, e)
        baseline = None
    try:
        engine.update_ovf_store(master.id)
    except ConflictError as e:
        if any(word in str(e).lower() for word in BUSY_WORDS):
            raise _Busy(f"master domain {master.name}: {e}") from e
        raise ProviderError(f"master domain {master.name} refused the update: {e}") from e
    when = _confirmed(engine, master.name, baseline, settings)
    return (f"OVF_STORE of data center {dc_name} on master domain {master.name} updated; "
            + (f"confirmed by the engine at {when:%Y-%m-%d %H:%M:%S} UTC" if when else
               "not confirmed by the engine yet (last updated unknown)"))


def _confirmed(engine, sd_name, baseline, settings):
    """The time of a USER_UPDATE_OVF_STORE event newer than ``baseline``, polled for
    ``confirm_timeout`` seconds every ``confirm_poll``; None when none came (or the
    baseline could not be read: then a newer event cannot be told from an older one)."""
    if baseline is None:
        return None
    last = baseline[0].index if baseline else -1
    deadline = time.monotonic() + float(settings.get("confirm_timeout", 120.0))
    while True:
        try:
            events = engine.ovf_store_confirmations(sd_name)
        except EngineError as e:
            log.info("cannot read the OVF_STORE events of %s: %s", sd_name, e)
            return None
        if events and events[0].index > last and events[0].time is not None:
            return events[0].time.astimezone(dt.timezone.utc)
        if time.monotonic() >= deadline:
            return None
        time.sleep(float(settings.get("confirm_poll", 5.0)))


@hookimpl
def list_restorable(query, engine, settings):
    found: dict = {}
    problems = []
    for dc_name in _datacenters(engine, settings, query.datacenter):
        try:
            dc = engine.datacenter(dc_name)
            if dc.status in NO_STORAGE:
                continue
            for sd in engine.storage_domains(dc_name):
                if sd.type != "data":
                    continue
                for kind in ("template", "vm"):
                    for entity in engine.unregistered(sd.id, kind):
                        found.setdefault((kind, entity.id), Restorable(
                            provider=settings.name, vm_id=entity.id,
                            name=entity.name or entity.id, kind=kind,
                            generation=f"ovf_store:{sd.name}", datacenter=dc_name,
                            location=sd.id, identity=_identity(entity, kind), registers=True))
        except EngineError as e:      # one data center's trouble does not hide the others
            problems.append(f"data center {dc_name}: {e}")
    if problems and not found:
        raise ProviderError("cannot list unregistered VMs: " + "; ".join(problems))
    for problem in problems:
        log.warning("msd: %s", problem)
    return query.answer(list(found.values()))


def _identity(entity, kind):
    """What the unregistered entity tells without its OVF: enough to check its template
    (registering a VM needs its template on the engine; restore plans check it)."""
    template = getattr(entity, "template", None) if kind == "vm" else None
    return VmIdentity(id=entity.id, name=entity.name or entity.id, kind=kind,
                      template_id=(template.id or "") if template is not None else "")


@hookimpl
def restore_vm(request, engine, settings):
    item = request.item
    domain = item.generation.split(":", 1)[-1] or item.location
    if request.regenerate_ids:
        raise ProviderError(
            f"{item.name}: msd registers the {item.kind} that storage domain {domain} holds, "
            "with its own id; it cannot make copies with new ids (restore one copy without "
            "--copies, --new-ids or --name-pattern, or from a provider that keeps OVF copies)")
    if item.kind != "vm" and request.name != item.name:
        raise ProviderError(f"{item.name}: msd registers templates under their own name; "
                            f"it cannot name this one {request.name!r}")
    engine.register(item.location, item.vm_id, kind=item.kind, cluster=request.cluster,
                    allow_partial_import=request.allow_partial_import,
                    reassign_bad_macs=request.reassign_bad_macs,
                    vnic_profile_mappings=request.vnic_profile_mappings,
                    cluster_mappings=request.cluster_mappings)
    notes = []
    if item.kind == "vm" and request.name != item.name:
        engine.rename_vm(item.vm_id, request.name)
        notes.append(f"registered as {item.name}, then renamed to {request.name}")
    return RestoreResult(provider=settings.name, vm_id=item.vm_id, name=request.name,
                         notes=tuple(notes))
