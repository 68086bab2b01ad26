"""Hook specifications: the contract between the host and backup providers (contract v2).

A *provider* is a plugin registered under a name (``localdb``, ``swift``, an entry point's
name, ...). The host never fans a hook out to every provider at once: it calls each enabled
provider's implementation on its own, through that provider's
:class:`~ovirt_backup_plugin.host.handle.ProviderHandle`, with that provider's own
``settings``. So no hook is ``firstresult``: a call has one provider and one result, and
one provider's failure, retry or slowness is reported for that provider alone.

Every argument is passed by keyword. An implementation may accept fewer arguments than the
spec names (pluggy allows it), which is how a spec can grow without breaking providers.

What the host owns, so that providers hold backend code only: which VMs a provider sees
(its data-center scope), sealing the OVF it stores (compression, encryption) and checking
what it hands back (content hash, size limit, the hardened OVF parser) before any plan or
restore, the default restore of an OVF copy (``POST /vms``), retries, error wrapping and
logging. Providers raise :class:`ovirt_backup_plugin.errors.ProviderError` for a failure the
user must see; ``transient=True`` asks the host to retry. A provider neither catches its own
backend's errors to hide them nor logs secrets.

What each provider must implement follows from what it keeps
(:func:`declare_provider`), and is checked when it is registered::

    keeps           must implement                           must not implement
    ovf-copies      write_ovf, list_restorable, read_ovf     restore_vm
    engine-side     list_restorable, restore_vm              write_ovf, read_ovf
    nothing         before_backup or write_ovf               list_restorable, read_ovf,
                                                             restore_vm

A backup run, per provider (``state`` is what ``before_backup`` returned)::

    before_backup(run, engine, settings, note)              -> state     once
    carry_over(run, state, items, settings)                 -> [vm id]   incremental runs:
                                                                         the unchanged VMs
    write_ovf(run, state, vm, settings)                     -> new?      per VM in scope
                                                                         (read in this run)
    after_backup(run, state, engine, settings, outcome, note)            once, always

Listing and restoring::

    list_restorable(query, engine, settings)                -> [Restorable, ...]
    read_ovf(item, settings)                                -> the stored blob (bytes)
    restore_vm(request, engine, settings)                   -> RestoreResult

The store (optional: a provider without a store of its own skips them)::

    declare_provider()                                      -> ProviderDeclaration
    describe_store(settings)                                -> StoreInfo
    claim_store(settings, owner, fresh, note)
    list_generations(settings)                              -> [GenerationInfo, ...]
    forget_generations(settings, generations)               -> PruneResult
    inventory_store(settings)                               -> StoreInventory

Each spec below says when it is called (the "Called by" line names the host functions that
call it; a test checks that they do) and who implements it.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, List, Optional

import pluggy

from .names import PROJECT

if TYPE_CHECKING:  # pragma: no cover - typing only
    from .engine import Engine
    from .model import (
        BackupOutcome,
        EngineIdentity,
        GenerationInfo,
        Note,
        ProviderDeclaration,
        ProviderSettings,
        PruneResult,
        Query,
        Restorable,
        RestoreRequest,
        RestoreResult,
        Run,
        StoreInfo,
        StoreInventory,
        VmBackup,
    )

_spec = pluggy.HookspecMarker(PROJECT)

__all__ = ["declare_provider", "before_backup", "carry_over", "write_ovf", "after_backup",
           "list_restorable", "read_ovf", "restore_vm", "describe_store", "claim_store",
           "list_generations", "forget_generations", "inventory_store"]


# --------------------------------------------------------------------------------------
# What the provider is
# --------------------------------------------------------------------------------------
@_spec
def declare_provider() -> "ProviderDeclaration":  # type: ignore[empty-body]
    """Say what this provider keeps and which settings its ``[provider:NAME]`` takes.

    Called by: host.plugins.declaration_of (once, when the provider is registered and checked
    by host.plugins.get_plugin_manager).

    Implemented by: every provider. Without it the host infers what the provider keeps
    from the hooks it implements and accepts no option of its own.

    Not ``firstresult``: the host calls each provider separately.

    The host checks the hooks against ``keeps`` (see the module's table) and refuses a
    provider that does not fit with a message naming what is missing; it then refuses a
    ``[provider:NAME]`` key that is neither declared nor one of the host's own (``datacenter``,
    ``retries``, ``retry_delay``, ``keep_last``, ``keep_within``, ``encrypt``), so a typo never passes
    silently. Declared options reach the provider parsed, in ``settings.options``.

    :returns: A :class:`~ovirt_backup_plugin.model.ProviderDeclaration`.
    """


# --------------------------------------------------------------------------------------
# Backup hooks
# --------------------------------------------------------------------------------------
@_spec
def before_backup(run: "Run", engine: "Engine", settings: "ProviderSettings",
                  note: "Note") -> Optional[object]:
    """Open this provider's part of a backup run, before any OVF is written.

    Called by: backup.run.run_backup (once per run, per enabled provider, after the host
    connected to the engine and checked the store's owner, before the first
    :func:`write_ovf`). A transient failure is retried by the host.

    Implemented by: providers that store something (open a transaction, make sure a
    container exists, read what is already stored); ``noop`` uses it only to say that it
    stores nothing.

    Not ``firstresult``: the host calls each provider separately.

    :param run: The run: id, start time, system name, engine URL, data-center scope, mode.
    :param engine: The engine adapter (:class:`ovirt_backup_plugin.engine.Engine`).
    :param settings: This provider's settings and scope.
    :param note: Call ``note(text)`` for a line in the run report for this provider.
    :returns: This provider's run *state*, any object (a connection, a transaction, the
        names already stored): the host hands it back unchanged to :func:`write_ovf` and
        :func:`after_backup` of this run and keeps nothing of it. ``None`` is a valid state.
    :raises ProviderError: The provider cannot take part in this run. The host reports the
        reason and skips this provider's :func:`write_ovf` and :func:`after_backup` calls;
        other providers are not affected.
    """


@_spec
def carry_over(run: "Run", state: object, items: List["Restorable"],  # type: ignore[empty-body]
               settings: "ProviderSettings") -> List[str]:
    """Record in ``run``, by reference, VMs whose configuration did not change.

    Called by: backup.incremental.carry_unchanged (in an incremental run: once per
    provider that keeps OVF copies, after :func:`before_backup` succeeded and before the
    first :func:`write_ovf` of the run; also in a sweep, for the VMs whose OVF the engine
    withheld, so that their previous configuration stays in the new generation). A
    transient failure is retried by the host with the same arguments: the call must be
    idempotent.

    Implemented by: providers that keep OVF copies (``localdb``, ``swift``, ``ovfdir``), to
    make an incremental run cheap: a generation of 10,000 VMs of which 100 changed costs
    100 :func:`write_ovf` calls and one ``carry_over`` (``localdb``: one ``INSERT ...
    SELECT``). Optional: for a provider without it, the host reads each item back
    (:func:`read_ovf`), checks it and hands it to :func:`write_ovf` as a full
    ``VmBackup`` -- correct, and as slow as the provider's reads.

    Not ``firstresult``: the host calls each provider separately.

    Each item is one this provider returned from :func:`list_restorable` (its newest
    generation's entry of the VM; ``item.flags`` may carry the host's ``FLAG_UNREAD``).
    Record for ``run`` exactly what :func:`write_ovf` would have recorded for a VM with
    the item's ``vm_id``, ``name``, ``kind``, ``datacenter``, ``cluster``, ``ovf_hash`` and
    ``flags``, without the blob: you already hold it under ``ovf_hash``. The host never
    hands the same VM to both ``carry_over`` and :func:`write_ovf` of one run. Nothing
    recorded here may become visible before :func:`after_backup` commits the run.

    :param run: The run the unchanged VMs belong to.
    :param state: What this provider's :func:`before_backup` returned for this run.
    :param items: The unchanged VMs, as this provider listed them.
    :param settings: This provider's settings and scope.
    :returns: The ``vm_id`` of every item whose stored OVF this provider does not hold
        (it was lost): the host reads those from the engine and writes them with
        :func:`write_ovf`. An empty list (or ``None``) when every item was recorded. A
        list of ``str``.
    :raises ProviderError: As for :func:`write_ovf`.
    """


@_spec
def write_ovf(run: "Run", state: object, vm: "VmBackup",
              settings: "ProviderSettings") -> Optional[bool]:
    """Store one VM's configuration in this provider, as part of ``run``.

    Called by: backup.run.run_backup (once per VM in the provider's scope, after
    :func:`before_backup` succeeded, in the order the engine lists the VMs). A transient
    failure is retried by the host with the same arguments: the call must be idempotent.

    Implemented by: providers that keep OVF copies; providers that keep nothing may
    implement it to observe (``debug``).

    Not ``firstresult``: the host calls each provider separately.

    Store ``vm.blob`` under ``vm.ovf_hash`` once per hash (an unchanged VM has the same
    hash on every run), and record that ``vm.vm_id`` had it in this run, with ``vm.name``,
    ``vm.kind``, ``vm.datacenter``, ``vm.cluster`` and ``vm.flags``. The key is
    ``vm.vm_id``, the engine's VM id: one VM's entry never replaces another's. Nothing
    written here may become visible to :func:`list_restorable` before :func:`after_backup`
    commits the run.

    :param run: The run this VM belongs to.
    :param state: What this provider's :func:`before_backup` returned for this run.
    :param vm: The VM: its engine id, name, data center, cluster, content hash, sealed blob.
    :param settings: This provider's settings and scope.
    :returns: ``True`` if new content was stored, ``False`` if the provider already held
        this content (only the reference was recorded), ``None`` if it keeps no copies.
    :raises ProviderError: With ``transient=True`` the host retries the call; otherwise, or
        when retries are exhausted, the provider is marked failed for the rest of the run
        and its run is abandoned.
    """


@_spec
def after_backup(run: "Run", state: object, engine: "Engine", settings: "ProviderSettings",
                 outcome: "BackupOutcome", note: "Note") -> None:
    """Finish this provider's part of a run: commit it, or abandon it.

    Called by: backup.run.run_backup (once per run for every provider whose
    :func:`before_backup` succeeded, also when that provider or the run failed: then
    ``outcome.ok`` is ``False`` and ``outcome.reason`` says why). A transient failure is
    retried by the host with the same ``state``.

    Implemented by: providers that store something; ``msd`` forces the engine to write its
    OVF_STORE here, once per data center.

    Not ``firstresult``: the host calls each provider separately.

    With ``outcome.ok`` make the run's generation visible atomically, recording
    ``run.mode``, ``run.reason``, ``run.cursor`` and ``run.datacenter`` with it (the next
    incremental run follows the engine's events from that cursor: they must be committed
    together, or not at all); without it discard what the
    run wrote, so that the previous generation stays the newest and no half run is listed.

    :param run: The run that ends.
    :param state: What this provider's :func:`before_backup` returned for this run.
    :param engine: The engine adapter.
    :param settings: This provider's settings and scope.
    :param outcome: Whether to commit, and the host's counts for this provider.
    :param note: Call ``note(text)`` for a line in the run report.
    :returns: Nothing.
    """


# --------------------------------------------------------------------------------------
# Listing and reading
# --------------------------------------------------------------------------------------
@_spec
def list_restorable(query: "Query", engine: "Engine",  # type: ignore[empty-body]
                    settings: "ProviderSettings") -> List["Restorable"]:
    """Answer ``query`` with the configurations this provider can restore.

    Called by: restore.listing.gather (for ``list``, ``restore``, ``history`` and
    ``prune``), once per enabled provider in scope; backup.incremental.plan_capture (the
    entries of the newest generation an incremental run builds on) and
    backup.incremental.keep_unread (the newest backup of a VM whose OVF the engine withheld).

    Implemented by: providers that keep OVF copies and ``msd`` (what storage domains
    brought that the engine has not registered).

    Not ``firstresult``: the host calls each provider separately and merges the answers.

    Answer from your own index, not by reading every generation: the cost of a call should
    grow with the size of the answer (see :class:`~ovirt_backup_plugin.model.Query` for what
    matches; :meth:`Query.answer` does it in Python for a provider whose index is a list).
    ``query.datacenter`` already holds this provider's scope. Every item carries the VM's
    id and name as recorded in that generation, so the user can pick by name without the
    host reading any OVF; fill ``generations`` when it is cheap. The host re-checks every
    item against the query.

    The engine adapter connects lazily: a provider that does not touch ``engine`` works
    when no engine is reachable.

    :param query: What to list (selectors, scope, time, newest or every generation, limit).
    :param engine: The engine adapter (``msd`` lists unregistered VMs through it).
    :param settings: This provider's settings.
    :returns: A list of :class:`~ovirt_backup_plugin.model.Restorable` (empty if none).
    """


@_spec
def read_ovf(item: "Restorable", settings: "ProviderSettings") -> bytes:  # type: ignore[empty-body]
    """Hand back the blob stored for ``item`` (what :func:`write_ovf` got as ``vm.blob``).

    Called by: host.handle.ProviderHandle.read_checked, which restore, ``restore
    --dry-run``, ``history`` and ``check`` go through: the host unseals the blob, checks it
    against ``item.ovf_hash``, the size limit and the hardened OVF parser, and names the VM
    and generation when it is damaged.

    Implemented by: providers that keep OVF copies.

    Not ``firstresult``: the host calls each provider separately.

    :param item: An item this provider returned from :func:`list_restorable`.
    :param settings: This provider's settings.
    :returns: The stored bytes, unchanged.
    :raises ProviderError: The blob is missing or the backend failed (``transient`` when a
        retry may help).
    """


# --------------------------------------------------------------------------------------
# Restore
# --------------------------------------------------------------------------------------
@_spec
def restore_vm(request: "RestoreRequest", engine: "Engine",  # type: ignore[empty-body]
               settings: "ProviderSettings") -> "RestoreResult":
    """Bring one copy of one VM back into the engine, the provider's own way.

    Called by: restore.batch._register (once per copy of an item this provider listed,
    templates first, one at a time from the thread that runs the restore: a provider need
    not be thread-safe, even when ``POST /vms`` imports run in parallel); never retried.
    ``request.cluster_mappings`` and ``request.vnic_profile_mappings`` carry the restore's
    mapping into another engine (``--map-cluster``, ``--map-vnic-profile``).

    Implemented by: providers that keep what the engine keeps (``engine-side``) and restore
    it their own way: ``msd`` registers the VM its storage domain holds. Providers that keep
    OVF copies must not implement it: the host itself reads the copy (:func:`read_ovf`),
    checks it and creates the VM with ``POST /vms``.

    Not ``firstresult``: the host calls each provider separately.

    :param request: The item, the name to give, the target cluster, ``regenerate_ids``.
    :param engine: The engine adapter of the target engine.
    :param settings: This provider's settings.
    :returns: A :class:`~ovirt_backup_plugin.model.RestoreResult` with the VM's id.
    :raises EngineError: The engine refused (409: a VM with that id or name exists, ...);
        the host reports it for this copy and continues with the next one.
    """


# --------------------------------------------------------------------------------------
# Store management
# --------------------------------------------------------------------------------------
@_spec
def describe_store(settings: "ProviderSettings") -> "StoreInfo":  # type: ignore[empty-body]
    """Say what this provider's store holds and which engine it serves.

    Called by: stores.ownership.ensure_owned (before every backup run: a store that
    serves another engine is refused, so two engines never write into one store by
    mistake) and stores.ownership.attach (``ovirt-backup attach``). Must not create
    anything: a store that does not exist yet is an empty ``StoreInfo`` (no owner).

    Implemented by: providers that keep a store of their own (``localdb``, ``swift``),
    together with :func:`claim_store`.

    Not ``firstresult``: the host calls each provider separately.

    :param settings: This provider's settings.
    :returns: A :class:`~ovirt_backup_plugin.model.StoreInfo`.
    :raises ProviderError: The store is unreadable, or written by a newer version of this
        product (say which format it has and which this code reads).
    """


@_spec
def claim_store(settings: "ProviderSettings", owner: "EngineIdentity", fresh: bool,
                note: "Note") -> None:
    """Record ``owner`` as the engine this store serves from now on.

    Called by: stores.ownership.ensure_owned (the first backup into an unclaimed store)
    and stores.ownership.attach (``ovirt-backup attach``: ``fresh=False`` keeps the
    history, the next run adds a generation; ``fresh=True`` sets the existing generations
    aside where the admin can still reach them -- never deletes them -- so that listing
    starts empty).

    Implemented by: providers that implement :func:`describe_store`.

    Not ``firstresult``: the host calls each provider separately.

    :param settings: This provider's settings.
    :param owner: The engine's identity (system name, URL, data center ids).
    :param fresh: Set the existing history aside first.
    :param note: Call ``note(text)`` to say what was done (where the old data went).
    :returns: Nothing.
    """


@_spec
def list_generations(settings: "ProviderSettings") -> List["GenerationInfo"]:  # type: ignore[empty-body]
    """List this provider's committed generations, newest first.

    Called by: stores.retention.prune (the retention policy is computed from it),
    backup.incremental.plan_capture (the newest generation, its cursor and scope: what an
    incremental run builds on) and restore.generations.generations_of (``list
    --generations`` and ``history`` show each generation's mode).

    Implemented by: providers that keep generations of their own (with
    :func:`forget_generations`).

    Not ``firstresult``: the host calls each provider separately.

    :param settings: This provider's settings.
    :returns: :class:`~ovirt_backup_plugin.model.GenerationInfo` items: id, time, VM count,
        mode (full or incremental) and its reason, the event cursor, and the run's
        data-center scope (``run.datacenter``). Incremental capture builds on the newest
        one: a provider without this hook is always swept.
    """


@_spec
def forget_generations(settings: "ProviderSettings",  # type: ignore[empty-body]
                       generations: List[str]) -> "PruneResult":
    """Remove these generations, then every stored OVF no remaining generation references.

    Called by: stores.retention.prune (``ovirt-backup prune``), under the system's backup
    lock, with the generations (ids as :func:`list_generations` gave them) that the
    retention policy does not keep. Removal must be safe to interrupt: a generation
    disappears as a whole, and an OVF is deleted only when no kept generation references
    it; every unreferenced OVF is collected, also those an interrupted prune left behind.

    Implemented by: providers that implement :func:`list_generations`.

    Not ``firstresult``: the host calls each provider separately.

    :param settings: This provider's settings.
    :param generations: Ids of the generations to remove (unknown ids are ignored).
    :returns: A :class:`~ovirt_backup_plugin.model.PruneResult` with the counts.
    """


@_spec
def inventory_store(settings: "ProviderSettings") -> "StoreInventory":  # type: ignore[empty-body]
    """Say what the store holds and what its committed generations reference, for ``check``.

    Called by: stores.check.check_provider (``ovirt-backup check``, once per provider that
    implements it): the host computes from it the references that resolve to nothing
    (damage, reported per VM and generation), the stored blobs no generation references
    (left over by an abandoned run or an interrupted prune: ``prune`` collects them) and,
    with ``--read-data``, reads each referenced blob once through :func:`read_ovf` and
    checks it as a restore would.

    Implemented by: providers that keep OVF copies in a store of their own (``localdb``,
    ``swift``). Optional: without it ``check`` lists every generation through
    :func:`list_restorable` and, with ``--read-data``, reads each blob; it cannot then tell
    what the store holds beyond what is referenced.

    Not ``firstresult``: the host calls each provider separately.

    Read the generations from what *is* the generation (localdb's rows, swift's manifests),
    not from a derived index, and report as ``problems`` what cannot be read or does not
    agree (a manifest that does not parse, an index that differs from the manifests). The
    cost should grow with the number of distinct (blob, VM) pairs, not with VMs x
    generations: group the references.

    :param settings: This provider's settings.
    :returns: A :class:`~ovirt_backup_plugin.model.StoreInventory`: generations, uses
        (per blob and VM: first and last generation, how many), the names of the stored
        blobs, those only set-aside histories reference, problems found.
    """
