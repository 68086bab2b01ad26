"""Hook specifications: the contract between the host and backup providers.

A *provider* is a plugin registered under a name (``localdb``, ``swift``, an entry point's
name, ...). The host never fans a hook out to every provider at once: it calls each enabled
provider's implementation on its own, with that provider's own ``settings``, so that one
provider's failure, retry or slowness is reported for that provider alone and the others
carry on. Order between providers therefore never matters.

Every argument is passed by keyword. An implementation may accept fewer arguments than the
spec names (pluggy allows it), which is how a spec can grow without breaking providers.

Providers raise :class:`ovirt_backup_plugin.errors.ProviderError` for a failure the user must
see; ``transient=True`` asks the host to retry. The host owns retries, logging and reporting:
a provider neither catches its own backend's errors to hide them nor logs secrets.

Lifecycle of a backup run, per provider::

    before_backup(run, engine, settings)          once
    write_ovf(run, vm, settings)                  once per VM in scope
    after_backup(run, engine, settings, outcome)  once, always (commit or abandon)

Listing and restoring::

    list_restorable(engine, settings, datacenter) -> [Restorable, ...]
    read_ovf(item, settings)                      -> OVF text          (firstresult)
    restore_vm(request, engine, settings)         -> RestoreResult     (firstresult)

Store management (optional: a provider without a store of its own skips them)::

    describe_store(settings)                      -> StoreInfo
    claim_store(settings, owner, fresh)           -> message
    forget_generations(settings, generations)     -> PruneResult
"""
from __future__ import annotations

from typing import TYPE_CHECKING, List, Optional, Union

import pluggy

from .names import PROJECT

if TYPE_CHECKING:  # pragma: no cover - typing only
    from .engine import Engine
    from .model import (BackupOutcome, EngineIdentity, ProviderSettings, PruneResult,
                        Restorable, RestoreRequest, RestoreResult, Run, StoreInfo, VmBackup)

_spec = pluggy.HookspecMarker(PROJECT)


# --------------------------------------------------------------------------------------
# Backup hooks
# --------------------------------------------------------------------------------------
@_spec
def before_backup(run: "Run", engine: "Engine", settings: "ProviderSettings") -> Union[str, List[str], None]:
    """Prepare this provider for a backup run, before any OVF is written.

    Called once per run for every enabled provider, after the host has connected to the
    engine and before the first :func:`write_ovf`. Open the generation, make sure the
    backend is reachable (create a container, a table), or do per-run engine work that must
    not be repeated per VM (``msd`` forces the OVF_STORE update here, once per data center).

    Implemented by every provider that stores something; ``noop`` implements it to say that
    nothing is stored.

    Not ``firstresult``: the host calls each provider separately.

    :param run: The run: id, start time, system name, engine URL, data-center scope.
    :param engine: The engine adapter (:class:`ovirt_backup_plugin.engine.Engine`).
    :param settings: This provider's settings and scope.
    :returns: ``None``, or a message (or list of messages) the host shows in the run report
        for this provider, e.g. "OVF_STORE of DC1 confirmed, last updated 2026-11-26 07:00".
    :raises ProviderError: The provider cannot take part in this run. The host reports the
        reason, skips this provider's :func:`write_ovf` calls and still calls
        :func:`after_backup` with ``outcome.ok = False``. Other providers are not affected.
    """


@_spec
def write_ovf(run: "Run", vm: "VmBackup", settings: "ProviderSettings") -> Optional[bool]:
    """Store one VM's OVF in this provider, as part of ``run``.

    Called once per VM in the provider's scope, after :func:`before_backup` succeeded, in
    the order the engine lists the VMs. ``vm.ovf`` is the exact document the engine sent and
    ``vm.identity`` the fields parsed from it; ``vm.ovf_hash`` identifies its content with
    volatile fields (ExportDate, boot/stop times) left out, so an unchanged VM has the same
    hash on every run. Store content once per hash.

    Nothing written here may become visible to :func:`list_restorable` before
    :func:`after_backup` is called with ``outcome.ok = True``.

    Not ``firstresult``: the host calls each provider separately.

    :param run: The run this OVF belongs to.
    :param vm: Identity, OVF text, content hash and data center of one VM.
    :param settings: This provider's settings and scope.
    :returns: ``True`` if new content was stored, ``False`` if the provider already held
        this content (only the reference to it was recorded), ``None`` if the provider keeps
        no copies of its own (``msd``: the engine writes its OVF_STORE itself).
    :raises ProviderError: With ``transient=True`` the host retries the call; otherwise, or
        when retries are exhausted, the provider is marked failed for the rest of the run.
    """


@_spec
def after_backup(run: "Run", engine: "Engine", settings: "ProviderSettings",
                 outcome: "BackupOutcome") -> Union[str, List[str], None]:
    """Finish this provider's part of a run: commit it, or abandon it.

    Called once per run for every provider whose :func:`before_backup` was called, also
    when that provider failed (then ``outcome.ok`` is ``False`` and ``outcome.reason`` says
    why). With ``outcome.ok`` the provider makes the run's generation visible atomically;
    without it the provider discards what the run wrote, so that the previous generation
    stays the newest and no half run is ever listed.

    Not ``firstresult``: the host calls each provider separately.

    :param run: The run that ends.
    :param engine: The engine adapter.
    :param settings: This provider's settings and scope.
    :param outcome: Whether to commit, and the host's counts for this provider.
    :returns: ``None`` or message(s) for the run report.
    """


# --------------------------------------------------------------------------------------
# Listing hooks
# --------------------------------------------------------------------------------------
@_spec
def list_restorable(engine: "Engine", settings: "ProviderSettings",
                    datacenter: Optional[str]) -> Optional[List["Restorable"]]:
    """List the configurations this provider can restore.

    Called by ``ovirt-backup list`` and ``restore`` once per enabled provider. Return every
    generation of every VM you hold (newest first is nice but not required); the host
    merges the lists of all providers, sorts them and picks the newest generation by
    default. Every item must carry ``provider = settings.name`` and the VM's name, so the
    user can pick by name without the host reading any OVF.

    The engine adapter connects lazily: a provider that does not touch ``engine`` works
    when no engine is reachable.

    Not ``firstresult``: results of all providers are merged, none is dropped.

    :param engine: The engine adapter (``msd`` lists unregistered VMs through it).
    :param settings: This provider's settings and scope.
    :param datacenter: Only list VMs of this data center (name); ``None`` lists all.
    :returns: A list of :class:`~ovirt_backup_plugin.model.Restorable` (empty if none).
    """


@_spec(firstresult=True)
def read_ovf(item: "Restorable", settings: "ProviderSettings") -> Optional[str]:
    """Return the stored OVF text of ``item``.

    Called by restore, ``history`` and ``restore --dry-run`` for items that this provider
    listed. Verify the content against ``item.ovf_hash`` and raise ``ProviderError`` when it
    does not match (a corrupted object must never be restored silently).

    Stops at first non-None result. Return ``None`` when ``item.provider`` is not your name
    or the provider cannot hand out raw OVF (``msd``: the engine keeps it).

    :param item: An item this provider returned from :func:`list_restorable`.
    :param settings: This provider's settings.
    :returns: The OVF document, or ``None``.
    """


# --------------------------------------------------------------------------------------
# Restore hooks
# --------------------------------------------------------------------------------------
@_spec(firstresult=True)
def restore_vm(request: "RestoreRequest", engine: "Engine",
               settings: "ProviderSettings") -> Optional["RestoreResult"]:
    """Bring one copy of one VM back into the engine.

    Called by ``ovirt-backup restore`` once per copy, for the provider that holds
    ``request.item`` (``request.item.provider``). Providers that keep OVF copies create the
    VM with :meth:`Engine.add_vm_from_ovf` (``POST /vms`` with the OVF as configuration);
    ``msd`` registers the unregistered VM from its storage domain instead.

    Stops at first non-None result. Return ``None`` if ``request.item.provider`` is not your
    name; the host reports an error when no provider claims the item.

    :param request: The item, the name to give, the target cluster, ``regenerate_ids``.
    :param engine: The engine adapter of the target engine.
    :param settings: This provider's settings.
    :returns: A :class:`~ovirt_backup_plugin.model.RestoreResult` with the new VM's id.
    :raises EngineError: The engine refused (409: a VM with that id or name exists, ...);
        the host reports it for this copy and continues with the next one.
    """


# --------------------------------------------------------------------------------------
# Store management hooks
# --------------------------------------------------------------------------------------
@_spec
def describe_store(settings: "ProviderSettings") -> Optional["StoreInfo"]:
    """Say what this provider's store holds and which engine it serves.

    Called by the host before every backup run (the ownership check: a store that serves
    another engine is refused, so two engines never write into one store by mistake) and by
    ``ovirt-backup attach``. Must not create anything: describing a store that does not
    exist yet returns an empty :class:`~ovirt_backup_plugin.model.StoreInfo` (no owner).

    Implemented by providers that keep a store of their own (``localdb``, ``swift``).

    Not ``firstresult``: the host calls each provider separately.

    :param settings: This provider's settings.
    :returns: A ``StoreInfo``, or ``None`` when the provider keeps no store (no check).
    """


@_spec
def claim_store(settings: "ProviderSettings", owner: "EngineIdentity",
                fresh: bool) -> Union[str, List[str], None]:
    """Record ``owner`` as the engine this store serves from now on.

    Called by the host on the first backup into an unclaimed store, and by ``ovirt-backup
    attach`` when the admin chose to continue (``fresh=False``: history kept, the next run
    adds a generation) or to start from scratch (``fresh=True``: set the existing
    generations aside where the admin can still reach them — never delete them — so that
    listing starts empty).

    Not ``firstresult``: the host calls each provider separately.

    :param settings: This provider's settings.
    :param owner: The engine's identity (system name, URL, data center ids).
    :param fresh: Set the existing history aside first.
    :returns: ``None`` or message(s) saying what was done (where the old data went).
    """


@_spec
def forget_generations(settings: "ProviderSettings",
                       generations: List[str]) -> Optional["PruneResult"]:
    """Remove these generations, then every stored OVF no remaining generation references.

    Called by ``ovirt-backup prune`` with the generations (run ids, as this provider listed
    them) that the retention policy does not keep; the host computed the policy from
    :func:`list_restorable`. Removal must be safe to interrupt: a generation disappears as
    a whole, and an OVF is deleted only when no kept generation references it.

    Not ``firstresult``: the host calls each provider separately.

    :param settings: This provider's settings.
    :param generations: Run ids to remove.
    :returns: A :class:`~ovirt_backup_plugin.model.PruneResult` with the counts, or ``None``
        when the provider keeps no generations.
    """
