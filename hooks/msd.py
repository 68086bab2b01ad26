"""msd: the data center's master storage domain and its OVF_STORE, kept by the engine itself.

Only the engine writes OVF_STORE (every OvfUpdateIntervalInMinutes, 60 by default), so this
provider stores nothing of its own. On backup it forces an OVF_STORE update on the master
domain of each data center in scope, once per run, and reports the "Last Updated" stamps of
the OVF_STORE disks as what the run confirmed. It lists the VMs and templates a data
domain brought that the engine has not registered (a domain attached from another engine)
and restores them by registering them.

Settings (``[provider:msd]``):
    datacenter     only this data center (default: all)
    retries        attempts after "OVF data is currently being updated" (409), default 2
    retry_delay    seconds before the first retry, doubled each time (default 0.5; a 409
                   waits at least 10 s)
"""
from ovirt_backup_plugin import hookimpl
from ovirt_backup_plugin.errors import ConflictError, ProviderError
from ovirt_backup_plugin.model import Restorable, RestoreResult

BUSY_WAIT = 10.0   # seconds to give a running OVF_STORE update before asking again


def _datacenters(engine, settings, datacenter=None):
    scope = datacenter or settings.datacenter
    return [scope] if scope else [dc.name for dc in engine.datacenters()]


@hookimpl
def before_backup(run, engine, settings):
    messages = []
    for dc in _datacenters(engine, settings, run.datacenter):
        master = engine.master_domain(dc)
        try:
            engine.update_ovf_store(master.id)
        except ConflictError as e:
            raise ProviderError(f"OVF_STORE of {dc} is busy: {e}", transient=True,
                                retry_after=BUSY_WAIT) from e
        stamps = sorted(s for s in engine.ovf_store_updates(master.id) if s)
        messages.append(f"OVF_STORE of data center {dc} on master domain {master.name} "
                        f"updated; last updated {stamps[-1] if stamps else 'unknown'}")
    return messages


@hookimpl
def list_restorable(engine, settings, datacenter):
    found = {}
    for dc in _datacenters(engine, settings, datacenter):
        for sd in engine.storage_domains(dc):
            if sd.type != "data":
                continue
            for kind in ("template", "vm"):
                for entity in engine.unregistered(sd.id, kind):
                    found.setdefault((kind, entity.id), Restorable(
                        provider=settings.name, vm_id=entity.id, name=entity.name or entity.id,
                        kind=kind, generation=f"ovf_store:{sd.name}", datacenter=dc,
                        location=sd.id))
    return list(found.values())


@hookimpl
def restore_vm(request, engine, settings):
    item = request.item
    if item.provider != settings.name:
        return None
    if request.regenerate_ids:
        raise ProviderError(f"{item.name}: msd registers the {item.kind} found on storage "
                            "domain as it is; it cannot make copies with new ids")
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
