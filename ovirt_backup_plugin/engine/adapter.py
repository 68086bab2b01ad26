"""The engine adapter: everything this product asks an oVirt engine, through ``ovirtsdk4``.

One :class:`Engine` wraps one SDK connection, opened lazily on first use (so listing a local
catalog never needs an engine). It is a host object handed to hooks, not a plugin.

It owns the engine-side error policy (:mod:`.faults`): SDK exceptions become
:class:`EngineError` with a message an admin can act on, and idempotent reads are retried on
transient failures (timeouts, connection resets, 5xx) a bounded number of times.
"""
from __future__ import annotations

import datetime
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, TypeVar

import ovirtsdk4
from ovirtsdk4 import types

from ..errors import ConfigError, ConflictError, EngineError
from ..model import EngineIdentity, VnicProfileMapping
from .faults import short, translate
from .inventory import Cluster, DataCenter, EngineVm, Network, StorageDomain, Template, VnicProfile
from .paging import Pager, page_search, search_value
from .settings import EngineSettings

log = logging.getLogger(__name__)
T = TypeVar("T")

#: AuditLogType.USER_UPDATE_OVF_STORE: "OVF_STORE for domain X was updated by U.", logged
#: once a forced OVF_STORE update has been written (after the REST call returned).
OVF_STORE_UPDATED_EVENT = 199
EVENT_ORIGIN = "ovirt-backup"            # the origin of the events this product posts


@dataclass(frozen=True)
class OvfStoreEvent:
    """A USER_UPDATE_OVF_STORE event: the engine wrote a domain's OVF_STORE."""

    index: int
    time: Optional[datetime.datetime]


class Engine:
    """Lazy, retrying facade over one ``ovirtsdk4.Connection``."""

    def __init__(self, settings: Optional[EngineSettings]):
        self.settings = settings or EngineSettings(url="")
        self._connection: Optional[ovirtsdk4.Connection] = None
        self._clusters: Optional[Dict[str, Cluster]] = None
        self._datacenters: Optional[Dict[str, DataCenter]] = None
        self._networks: Optional[List[Network]] = None
        self._vnic_profiles: Optional[List[VnicProfile]] = None
        self._templates: Optional[List[Template]] = None
        self._disks: Dict[str, bool] = {}

    # -- connection ------------------------------------------------------------------
    @property
    def url(self) -> str:
        return self.settings.url

    @property
    def connection(self) -> ovirtsdk4.Connection:
        if self._connection is None:
            s = self.settings
            if not s.url:
                raise ConfigError("no engine is configured: set [engine] url in the "
                                  "configuration file (--config)")
            if not s.password:
                raise ConfigError("no engine password: set [engine] password_file or password_env")
            if s.url.startswith("https") and not s.insecure and s.ca_file is None:
                log.info("no ca_file given: the system CA store verifies %s", s.url)
            try:
                self._connection = ovirtsdk4.Connection(
                    url=s.url, username=s.username, password=s.password,
                    ca_file=s.ca_file, insecure=s.insecure, timeout=s.timeout,
                    debug=False)  # debug=True would log the password
            except ovirtsdk4.Error as e:
                raise EngineError(f"cannot set up the connection to {s.url}: {e}") from None
        return self._connection

    def close(self) -> None:
        if self._connection is not None:
            conn, self._connection = self._connection, None
            try:
                conn.close()
            except Exception as e:  # a failed logout must not hide the run's result
                log.warning("logout from %s failed: %s", self.settings.url, short(e))

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def system_service(self) -> Any:
        return self.connection.system_service()

    # -- error policy ----------------------------------------------------------------
    def call(self, what: str, fn: Callable[[], T], *, idempotent: bool = True) -> T:
        """Run ``fn`` (one SDK call); translate SDK errors; retry transient idempotent ones."""
        attempts = 1 + (self.settings.retries if idempotent else 0)
        delay = self.settings.retry_delay
        for attempt in range(1, attempts + 1):
            try:
                return fn()
            except EngineError:
                raise
            except Exception as e:
                err = translate(what, e, url=self.settings.url,
                                username=self.settings.username, timeout=self.settings.timeout)
                if not err.transient or attempt == attempts:
                    raise err from None
                log.warning("%s failed (%s); retry %d of %d in %.1fs",
                            what, err, attempt, attempts - 1, delay)
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    # -- inventory -------------------------------------------------------------------
    def datacenters(self) -> List[DataCenter]:
        if self._datacenters is None:
            dcs = self.call("listing data centers",
                            lambda: self.system_service.data_centers_service().list())
            self._datacenters = {dc.id: DataCenter(dc.id, dc.name or "", _enum(dc.status))
                                 for dc in dcs}
        return list(self._datacenters.values())

    def datacenter(self, name: str) -> DataCenter:
        for dc in self.datacenters():
            if dc.name == name:
                return dc
        known = ", ".join(sorted(d.name for d in self.datacenters())) or "none"
        raise EngineError(f"the engine has no data center named {name!r} (it has: {known})")

    def clusters(self) -> List[Cluster]:
        if self._clusters is None:
            items = self.call("listing clusters",
                              lambda: self.system_service.clusters_service().list())
            self._clusters = {
                c.id: Cluster(c.id, c.name or "", c.data_center.id if c.data_center else "")
                for c in items}
        return list(self._clusters.values())

    def cluster_name(self, cluster_id: str) -> str:
        """Name of a cluster ('' when unknown)."""
        self.clusters()
        cluster = self._clusters.get(cluster_id) if self._clusters else None
        return cluster.name if cluster else ""

    def datacenter_of_cluster(self, cluster_id: str) -> str:
        """Name of the data center a cluster belongs to ('' when unknown)."""
        self.clusters()
        cluster = self._clusters.get(cluster_id) if self._clusters else None
        if cluster is None:
            return ""
        self.datacenters()
        dc = self._datacenters.get(cluster.datacenter_id) if self._datacenters else None
        return dc.name if dc else ""

    def storage_domains(self, datacenter: str) -> List[StorageDomain]:
        dc = self.datacenter(datacenter)
        svc = self.system_service.data_centers_service().data_center_service(dc.id)
        sds = self.call(f"listing storage domains of data center {datacenter}",
                        lambda: svc.storage_domains_service().list())
        return [StorageDomain(sd.id, sd.name or "", _enum(sd.type), _enum(sd.status),
                              bool(sd.master))
                for sd in sds]

    def master_domain(self, datacenter: str) -> StorageDomain:
        for sd in self.storage_domains(datacenter):
            if sd.master:
                return sd
        raise EngineError(f"data center {datacenter!r} has no master storage domain "
                          "(is it initialized and up?)")

    # -- VM configurations -----------------------------------------------------------
    def check_scope(self, datacenter: Optional[str]) -> None:
        if datacenter is not None:
            self.datacenter(datacenter)    # a clear error for an unknown name

    def iter_vms(self, datacenter: Optional[str] = None, *, start: int = 1,
                 pager: Optional[Pager] = None) -> Iterator[EngineVm]:
        """Every VM with its OVF, page by page (``GET /vms?all_content=true``), from page
        ``start`` on, each VM once (``pager`` remembers the ids already given out).

        The engine silently leaves a VM's OVF out while the VM or one of its disks is
        locked; such a VM is fetched once more on its own. If the OVF is still missing the
        VM is yielded with ``ovf=None`` for the caller to report.
        """
        self.check_scope(datacenter)
        pager = pager or Pager(self.settings.page_size)
        page = start
        while True:
            vms = self.fetch_page(datacenter, page)
            fresh = pager.fresh(vms, lambda vm: vm.id)
            yield from fresh
            if pager.is_last(vms, fresh):
                return
            page += 1

    def fetch_page(self, datacenter: Optional[str], page: int) -> List[EngineVm]:
        """One page of ``GET /vms?all_content=true`` (``search=[datacenter=X] page N``)."""
        vms_service = self.system_service.vms_service()
        search = page_search(page, datacenter)
        size = self.settings.page_size
        vms = self.call(f"listing VMs ({search})",
                        lambda: vms_service.list(all_content=True, max=size, search=search))
        return [self._engine_vm(vms_service, vm) for vm in vms]

    def vms_by_id(self, ids: Sequence[str], *, batch: int = 50) -> List[EngineVm]:
        """The VMs with these ids, with their OVFs, ``batch`` ids per request
        (``GET /vms?all_content=true&max=<batch>&search=id=A or id=B ...``: OR is supported,
        engine-facts B6). ``max`` is always ``batch``: the engine caches every distinct
        (search text, max) for ever (bll/SearchQuery L95, L526-529), so one value of it
        keeps that growth to one entry per batch. An id the engine does not have is absent
        from the answer. The URL stays far below Apache's 8190 bytes (50 ids: ~2.3 KB)."""
        vms_service = self.system_service.vms_service()
        out: List[EngineVm] = []
        for start in range(0, len(ids), batch):
            search = " or ".join(f"id={vm_id}" for vm_id in ids[start:start + batch])
            vms = self.call(f"reading {min(batch, len(ids) - start)} VM(s) by id",
                            lambda search=search: vms_service.list(  # type: ignore[misc]
                                all_content=True, max=batch, search=search))
            out += [self._engine_vm(vms_service, vm) for vm in vms]
        return out

    def __getstate__(self) -> Dict[str, Any]:
        """What a worker process needs to read pages itself: settings and the inventory
        already read; never the connection (a worker logs in on its own)."""
        self.clusters()
        self.datacenters()
        return {"settings": self.settings, "clusters": self._clusters,
                "datacenters": self._datacenters}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__init__(state["settings"])  # type: ignore[misc]
        self._clusters, self._datacenters = state["clusters"], state["datacenters"]

    def _engine_vm(self, vms_service: Any, vm: Any) -> EngineVm:
        ovf = _ovf_of(vm)
        if not ovf:
            log.info("engine listed VM %s (%s) without its OVF; fetching it again", vm.name, vm.id)
            try:
                again = self.call(f"fetching VM {vm.name}", lambda: vms_service.vm_service(
                    vm.id).get(all_content=True))
                ovf = _ovf_of(again)
            except EngineError as e:
                log.warning("VM %s (%s): %s", vm.name, vm.id, e)
                ovf = None
        cluster_id = vm.cluster.id if vm.cluster is not None else ""
        return EngineVm(vm.id, vm.name or "", cluster_id,
                        self.datacenter_of_cluster(cluster_id), ovf or None,
                        cluster=self.cluster_name(cluster_id))

    def add_vm_from_ovf(self, ovf: str, *, name: str, cluster: Optional[str],
                        regenerate_ids: bool) -> str:
        """Create a VM from an OVF (``POST /vms``); return the new VM's id.

        The engine re-attaches only disks that already exist; it never creates disks.
        """
        if not cluster:
            raise EngineError(f"restoring {name!r}: no target cluster (neither the backup "
                              "nor the OVF names one; give --cluster)")
        vm = types.Vm(
            name=name,
            cluster=types.Cluster(name=cluster),
            initialization=types.Initialization(
                configuration=types.Configuration(type=types.ConfigurationType.OVF, data=ovf),
                regenerate_ids=regenerate_ids))
        try:
            created = self.call(f"restoring VM {name!r}",
                                lambda: self.system_service.vms_service().add(vm),
                                idempotent=False)
        except ConflictError as e:
            raise ConflictError(
                f"VM {name!r} was not restored: the engine already has a VM with this "
                f"{'name' if regenerate_ids else 'id or name'} ({_tail(e)}). Restore it under "
                "another name (--name-pattern) or as a copy (--copies/--new-ids).",
                code=409) from None
        return str(created.id)

    # -- storage domains: OVF_STORE ---------------------------------------------------
    def update_ovf_store(self, sd_id: str) -> None:
        svc = self.system_service.storage_domains_service().storage_domain_service(sd_id)
        self.call(f"updating the OVF_STORE of storage domain {sd_id}",
                  lambda: svc.update_ovf_store(async_=False), idempotent=False)

    def ovf_store_confirmations(self, sd_name: str) -> List[OvfStoreEvent]:
        """The newest USER_UPDATE_OVF_STORE event of a storage domain (a list of 0 or 1).

        REST shows no other trace of an OVF_STORE write: the OVF_STORE disks' description
        is the plain label "OVF_STORE" (the JSON with "Last Updated" is on storage only),
        and ``updateovfstore`` answers before the write. Events list newest first.
        """
        svc = self.system_service.events_service()
        search = f"type={OVF_STORE_UPDATED_EVENT} and event_storage={search_value(sd_name)}"
        events = self.call(f"listing OVF_STORE events of storage domain {sd_name}",
                           lambda: svc.list(search=search, max=1))
        return [OvfStoreEvent(int(e.index if e.index is not None else e.id), e.time)
                for e in events]

    def unregistered(self, sd_id: str, kind: str = "vm") -> List[Any]:
        svc = self.system_service.storage_domains_service().storage_domain_service(sd_id)
        coll = svc.vms_service() if kind == "vm" else svc.templates_service()
        return list(self.call(f"listing unregistered {kind}s of storage domain {sd_id}",
                              lambda: coll.list(unregistered=True)))

    def register(self, sd_id: str, entity_id: str, *, kind: str = "vm",
                 cluster: Optional[str] = None, allow_partial_import: bool = True,
                 reassign_bad_macs: bool = True,
                 vnic_profile_mappings: Sequence[VnicProfileMapping] = ()) -> None:
        svc = self.system_service.storage_domains_service().storage_domain_service(sd_id)
        config = None
        if vnic_profile_mappings:
            mappings = []
            for mapping in vnic_profile_mappings:
                network, _, profile = mapping.source.partition("/")
                mappings.append(types.RegistrationVnicProfileMapping(
                    from_=types.VnicProfile(name=profile or network,
                                            network=types.Network(name=network)),
                    to=types.VnicProfile(id=mapping.target_id)))
            config = types.RegistrationConfiguration(vnic_profile_mappings=mappings)
        kwargs: Dict[str, Any] = dict(cluster=types.Cluster(name=cluster) if cluster else None,
                                      allow_partial_import=allow_partial_import,
                                      registration_configuration=config)
        if kind == "vm":
            entity = svc.vms_service().vm_service(entity_id)
            kwargs["reassign_bad_macs"] = reassign_bad_macs
        else:
            entity = svc.templates_service().template_service(entity_id)
        self.call(f"registering {kind} {entity_id}", lambda: entity.register(**kwargs),
                  idempotent=False)

    def rename_vm(self, vm_id: str, name: str) -> None:
        svc = self.system_service.vms_service().vm_service(vm_id)
        self.call(f"renaming VM {vm_id} to {name!r}", lambda: svc.update(types.Vm(name=name)),
                  idempotent=False)

    # -- engine facts and events -----------------------------------------------------
    def identity(self, system: str) -> EngineIdentity:
        """Who this engine is, for the store ownership check (its data center ids)."""
        return EngineIdentity(system=system, url=self.settings.url,
                              datacenter_ids=tuple(sorted(dc.id for dc in self.datacenters())))

    def vm_names(self) -> Dict[str, str]:
        """id → name of every VM the engine has now (used by restore plans)."""
        vms = self.call("listing VM names", lambda: self.system_service.vms_service().list())
        return {vm.id: vm.name for vm in vms}

    def add_event(self, description: str, *, severity: str = "normal") -> None:
        """Post to the engine's audit log (Events tab), like engine-backup does."""
        event = types.Event(description=description, origin=EVENT_ORIGIN,
                            custom_id=int(time.time() * 1000) % 2_000_000_000,
                            severity=types.LogSeverity(severity))
        self.call("posting an event", lambda: self.system_service.events_service().add(event),
                  idempotent=False)

    # -- what a restore needs on the target (restore plans) ---------------------------
    def networks(self) -> List[Network]:
        """Every logical network (``GET /networks``); each belongs to one data center."""
        if self._networks is None:
            items = self.call("listing networks",
                              lambda: self.system_service.networks_service().list())
            self._networks = [Network(n.id, n.name or "",
                                      n.data_center.id if n.data_center else "")
                              for n in items]
        return list(self._networks)

    def vnic_profiles(self) -> List[VnicProfile]:
        """Every vNIC profile (``GET /vnicprofiles``): its name and its network's id."""
        if self._vnic_profiles is None:
            items = self.call("listing vNIC profiles",
                              lambda: self.system_service.vnic_profiles_service().list())
            self._vnic_profiles = [VnicProfile(p.id, p.name or "",
                                               p.network.id if p.network else "")
                                   for p in items]
        return list(self._vnic_profiles)

    def disk_exists(self, disk_id: str) -> bool:
        """Whether the engine has this disk (``GET /disks/{id}``; 404 means it has not)."""
        if disk_id not in self._disks:
            svc = self.system_service.disks_service().disk_service(disk_id)
            try:
                self.call(f"looking up disk {disk_id}", lambda: svc.get())
                self._disks[disk_id] = True
            except EngineError as e:
                if e.code != 404:
                    raise
                self._disks[disk_id] = False
        return self._disks[disk_id]

    def templates(self, refresh: bool = False) -> List[Template]:
        """Every template the engine has (``GET /templates``), Blank included."""
        if self._templates is None or refresh:
            items = self.call("listing templates",
                              lambda: self.system_service.templates_service().list())
            self._templates = [Template(t.id, t.name or "") for t in items]
        return list(self._templates)


# -- helpers ---------------------------------------------------------------------------
def _ovf_of(vm: Any) -> Optional[str]:
    init = getattr(vm, "initialization", None)
    conf = getattr(init, "configuration", None) if init is not None else None
    data = getattr(conf, "data", None) if conf is not None else None
    return data if data and data.strip() else None


def _enum(value: Any) -> str:
    if value is None:
        return ""
    return str(getattr(value, "value", value))


def _tail(e: BaseException) -> str:
    text = str(e)
    return text.split(": ", 1)[-1] if ": " in text else text
