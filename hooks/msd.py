"""msd: the data center's master storage domain and its OVF_STORE, kept by the engine itself.

Only the engine writes OVF_STORE (every OvfUpdateIntervalInMinutes, 60 by default), so this
provider stores nothing of its own. On backup it forces an OVF_STORE update on the master
domain of each data center in scope, once per run, and reports when the engine confirmed
the write: REST has no "Last Updated" (the OVF_STORE disks' REST description is the plain
label; the JSON stamp lives on storage) and ``updateovfstore`` answers before the write, so
the confirmation is the engine's USER_UPDATE_OVF_STORE audit event (199) newer than the one
seen before the update. It lists the VMs and templates a data
domain brought that the engine has not registered (a domain attached from another engine)
and restores them by registering them (templates first: the host sorts them first), then
renames a VM when another name is asked.

Settings (``[provider:msd]``):
    datacenter     only this data center (default: all)
    retries        attempts after "OVF data is currently being updated" (409), default 2
    retry_delay    seconds before the first retry, doubled each time (default 0.5)
    busy_wait      seconds a 409 waits at least before the next attempt (default 10: the
                   engine is writing that OVF_STORE right now)
    confirm_timeout  seconds to wait for the engine's confirmation event (default 120; the
                   run reports "not confirmed" after that, it does not fail)
    confirm_poll   seconds between two looks for it (default 5)

A retry of ``before_backup`` (the host's, after a 409) does not force again the data
centers this run has already updated: it goes on with the one that was busy.

It registers what it lists as it is: no copies with new ids, and templates keep their name
(the engine adapter renames VMs only).
"""
from ovirt_backup_plugin import hookimpl
from ovirt_backup_plugin.errors import ConfigError, ConflictError, ProviderError
from ovirt_backup_plugin.model import Restorable, RestoreResult, VmIdentity

BUSY_WAIT = 10.0   # seconds to give a running OVF_STORE update before asking again

# The run in progress and the messages of the data centers it has already updated, so a
# retried before_backup goes on where the 409 stopped it. One run at a time is kept.
_progress = {"run": None, "done": {}, "baselines": {}}


def _datacenters(engine, settings, datacenter=None):
    scope = datacenter or settings.datacenter
    return [scope] if scope else [dc.name for dc in engine.datacenters()]


def _busy_wait(settings) -> float:
    value = settings.get("busy_wait", str(BUSY_WAIT))
    try:
        wait = float(value)
    except ValueError:
        wait = -1.0
    if wait < 0:
        raise ConfigError(f"[provider:{settings.name}] busy_wait = {value!r}: give seconds "
                          "(a number, 0 or more)")
    return wait


@hookimpl
def before_backup(run, engine, settings):
    busy_wait = _busy_wait(settings)
    if _progress["run"] != run.id:
        _progress.update(run=run.id, done={}, baselines={})
    done, baselines = _progress["done"], _progress["baselines"]
    for dc in _datacenters(engine, settings, run.datacenter):
        if dc in done:
            continue
        master = engine.master_domain(dc)
        if dc not in baselines:                      # once per run, not per attempt
            baselines[dc] = engine.ovf_store_confirmations(master.name)
        try:
            engine.update_ovf_store(master.id)
        except ConflictError as e:
            raise ProviderError(f"OVF_STORE of data center {dc} (master domain {master.name}) "
                                f"is busy: {e}", transient=True, retry_after=busy_wait) from e
        when = _confirmed(engine, master.name, baselines[dc], settings)
        done[dc] = (f"OVF_STORE of data center {dc} on master domain {master.name} updated; "
                    + (f"confirmed by the engine at {when:%Y-%m-%d %H:%M:%S} UTC" if when else
                       "not confirmed by the engine yet (last updated unknown)"))
    return list(done.values())


def _confirmed(engine, sd_name, baseline, settings):
    """The time of a USER_UPDATE_OVF_STORE event newer than ``baseline``, polled for
    ``confirm_timeout`` seconds (default 120) every ``confirm_poll`` (default 5)."""
    import datetime as dt
    import time

    last = baseline[0][0] if baseline else -1
    deadline = time.monotonic() + float(settings.get("confirm_timeout", "120"))
    while True:
        events = engine.ovf_store_confirmations(sd_name)
        if events and events[0][0] > last:
            return events[0][1].astimezone(dt.timezone.utc)
        if time.monotonic() >= deadline:
            return None
        time.sleep(float(settings.get("confirm_poll", "5")))


@hookimpl
def list_restorable(engine, settings, datacenter):
    found = {}
    for dc in _datacenters(engine, settings, datacenter):
        for sd in engine.storage_domains(dc):
            if sd.type != "data":
                continue
            for kind in ("template", "vm"):
                for entity in engine.unregistered(sd.id, kind):
                    found.setdefault((kind, entity.id), Restorable(registers=True, 
                        provider=settings.name, vm_id=entity.id, name=entity.name or entity.id,
                        kind=kind, generation=f"ovf_store:{sd.name}", datacenter=dc,
                        location=sd.id, identity=_identity(entity, kind)))
    return list(found.values())


def _identity(entity, kind):
    """What the unregistered entity tells without its OVF: enough to check its template
    (registering a VM needs its template on the engine; restore plans check it)."""
    template = getattr(entity, "template", None) if kind == "vm" else None
    return VmIdentity(id=entity.id, name=entity.name or entity.id, kind=kind,
                      template_id=(template.id or "") if template is not None else "")


@hookimpl
def restore_vm(request, engine, settings):
    item = request.item
    if item.provider != settings.name:
        return None
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
                    vnic_profile_mappings=request.vnic_profile_mappings)
    notes = []
    if item.kind == "vm" and request.name != item.name:
        engine.rename_vm(item.vm_id, request.name)
        notes.append(f"registered as {item.name}, then renamed to {request.name}")
    return RestoreResult(provider=settings.name, vm_id=item.vm_id, name=request.name,
                         notes=tuple(notes))
