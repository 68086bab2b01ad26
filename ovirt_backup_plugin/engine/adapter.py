"""The engine adapter: everything this product asks an oVirt engine, through ``ovirtsdk4``.

One :class:`Engine` wraps one SDK connection, opened lazily on first use (so listing a local
catalog never needs an engine). It is a host object handed to hooks, not a plugin.

It owns the engine-side error policy (:mod:`.faults`): SDK exceptions become
:class:`EngineError` with a message an admin can act on, and idempotent reads are retried on
transient failures (timeouts, connection resets, 5xx) a bounded number of times.
"""
from __future__ import annotations

import datetime
import io
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, TypeVar

from lxml import etree

from ..errors import ConfigError, ConflictError, EngineError
from ..model import ClusterMapping, EngineIdentity, VnicProfileMapping
from ..ovf import MAX_OVF_BYTES
from .faults import BACKUP_ROLE, MSD_ROLE, RESTORE_ROLE, answered, not_xml, short, splittable, translate
from .inventory import (
    Cluster,
    DataCenter,
    EngineEvent,
    EngineVm,
    MacPool,
    Network,
    StorageDomain,
    Template,
    VmNic,
    VmRef,
    VmState,
    VnicProfile,
)
from .paging import Pager, PageRead, Slice, page_search, page_slice, read_in_slices, search_value
from .reading import complete
from .sdk import ovirtsdk4, sdk_http, types
from .settings import EngineSettings
from .sso import request_token, revoke_token

log = logging.getLogger(__name__)
T = TypeVar("T")

#: AuditLogType.USER_UPDATE_OVF_STORE: "OVF_STORE for domain X was updated by U.", logged
#: once a forced OVF_STORE update has been written (after the REST call returned).
OVF_STORE_UPDATED_EVENT = 199
EVENT_ORIGIN = "ovirt-backup"            # the origin of the events this product posts
#: The SSO URL handed to the SDK. The adapter logs in itself (bounded, :mod:`ovirt_backup_plugin.engine.sso`) and gives
#: the SDK the token; on an HTTP 401 the SDK would log in again on its own, unbounded and
#: without credentials (engine-facts C.1). A ``file:`` URL that does not exist makes that
#: attempt fail at once (libcurl error 37), and :meth:`Engine.call` logs in again, bounded.
NO_SDK_LOGIN = "file:///nonexistent/ovirt-backup/the-adapter-logs-in-itself"
#: The most characters of text the SDK's XML reader takes in one node (libxml2's
#: XML_MAX_TEXT_LENGTH without XML_PARSE_HUGE: engine-facts C.3).
SDK_MAX_TEXT = 10_000_000


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
        self._cluster_levels: Optional[List[str]] = None
        self._mac_pools: Optional[List[MacPool]] = None
        self._token: Optional[str] = None      # the SSO token (never logged or stored)
        self._own_token = False                # this adapter logged in, so it logs out
        self._silent = False                   # the last failure: the engine did not answer
        self._down = False                     # the last call failed for good, transiently

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
            if self._token is None:
                self._token, self._own_token = self._login(), True
            try:
                self._connection = ovirtsdk4.Connection(
                    url=s.url, token=self._token, sso_url=NO_SDK_LOGIN,
                    ca_file=s.ca_file, insecure=s.insecure, timeout=s.timeout,
                    debug=False)  # debug=True would log the token
            except ovirtsdk4.Error as e:
                raise EngineError(f"cannot set up the connection to {s.url}: {e}") from None
        return self._connection

    def _login(self) -> str:
        """The SSO token, by a bounded login retried like an idempotent read."""
        attempts, delay = 1 + self.settings.retries, self.settings.retry_delay
        for attempt in range(1, attempts + 1):
            try:
                token = request_token(self.settings)
                self._silent = self._down = False
                return token
            except EngineError as e:
                self._silent = "did not answer" in str(e)
                if not e.transient or attempt == attempts:
                    self._down = _down(e)
                    raise
                log.warning("%s; retry %d of %d in %.1fs", e, attempt, attempts - 1, delay)
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    @property
    def down(self) -> bool:
        """The last request failed after its retries for a reason that says the engine is
        not there (no answer, unreachable, 5xx): asking it more now only waits."""
        return self._down

    def note_failure(self, error: BaseException) -> None:
        """A failure met elsewhere (a worker process): when the engine did not answer, do
        not wait for it once more to log out."""
        if isinstance(error, EngineError) and "did not answer" in str(error):
            self._silent = True

    def _drop_connection(self) -> None:
        conn, self._connection = self._connection, None
        if conn is not None:
            try:
                conn.close(logout=False)       # the SDK's logout is unbounded: ours is not
            except Exception as e:
                log.debug("closing the SDK connection: %s", short(e))

    def close(self) -> None:
        """Close the connection and log out (bounded by ``[engine] timeout``), unless the
        engine just did not answer (its session then expires on its own)."""
        had = self._connection is not None
        self._drop_connection()
        token, self._token = self._token, None
        if token is None or not self._own_token or not had:
            return
        if self._silent:
            log.info("not logging out of %s: it did not answer; the session expires on its "
                     "own", self.settings.url)
            return
        try:
            revoke_token(self.settings, token)
        except EngineError as e:     # a failed logout must not hide the run's result
            log.warning("logout from %s failed: %s", self.settings.url, e)

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def system_service(self) -> Any:
        return self.connection.system_service()

    # -- error policy ----------------------------------------------------------------
    def call(self, what: str, fn: Callable[[], T], *, idempotent: bool = True,
             role: str = BACKUP_ROLE) -> T:
        """Run ``fn`` (one SDK call); translate SDK errors; retry transient idempotent ones.

        ``role`` says what the user needs when the engine refuses for lack of permission.
        An expired session (HTTP 401) is logged into again once, bounded.
        """
        attempts = 1 + (self.settings.retries if idempotent else 0)
        delay = self.settings.retry_delay
        relogged = False
        attempt = 0
        while attempt < attempts:
            attempt += 1
            try:
                result = fn()
                self._silent = self._down = False
                return result
            except EngineError:
                raise
            except Exception as e:
                if NO_SDK_LOGIN.rsplit("/", 1)[-1] in str(e):   # the API answered 401
                    if relogged:
                        raise EngineError(
                            f"{what}: the engine at {self.settings.url} refused the session "
                            f"of {self.settings.username!r} (HTTP 401) even after a new "
                            "login. Check that the user may log in (the Login permission) "
                            "and is not locked", code=401) from None
                    log.info("%s: the session expired (HTTP 401); logging in again", what)
                    relogged = True
                    self._drop_connection()
                    self._token, self._own_token = self._login(), True
                    attempt -= 1
                    continue
                err = translate(what, e, url=self.settings.url,
                                username=self.settings.username, timeout=self.settings.timeout,
                                role=role, status=self._root_status() if not_xml(e) else None,
                                ca_file=self.settings.ca_file)
                self._silent = "did not answer" in str(err)
                if not err.transient or attempt == attempts:
                    self._down = _down(err)
                    raise err from None
                log.warning("%s failed (%s); retry %d of %d in %.1fs",
                            what, err, attempt, attempts - 1, delay)
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    # -- inventory -------------------------------------------------------------------
    def prefetch(self, *listings: str) -> None:
        """Ask the engine for these listings (``datacenters``, ``clusters``, ``networks``,
        ``vnic_profiles``, ``cluster_levels``, ``mac_pools``) all at once: the SDK's
        asynchronous requests (``wait=False``) are in flight together on the connection's
        pool, so a restore plan waits for one round trip instead of one per listing (real
        engines answer in tens of milliseconds each). Only an optimization: a listing that
        cannot be asked or answered here is asked again when it is used, with the retries
        and the error messages of :meth:`call`."""
        pending = []
        for name in dict.fromkeys(listings):
            cache, _, service, keep = _LISTINGS[name]
            if getattr(self, cache) is not None:
                continue
            try:
                pending.append((name, keep, service(self.system_service).list(wait=False)))
            except Exception as e:                  # e.g. the login failed: told when used
                log.debug("prefetching %s: %s", name, short(e))
                break
        for name, keep, future in pending:
            try:
                keep(self, future.wait())
            except Exception as e:
                log.debug("prefetching %s failed (asked again when used): %s", name, short(e))

    def _listed(self, name: str) -> None:
        """Listing ``name`` of :data:`_LISTINGS` read (with :meth:`call`) unless it is kept."""
        cache, what, service, keep = _LISTINGS[name]
        if getattr(self, cache) is None:
            keep(self, self.call(what, lambda: service(self.system_service).list()))

    def datacenters(self) -> List[DataCenter]:
        self._listed("datacenters")
        return list(self._datacenters.values()) if self._datacenters else []

    def _keep_datacenters(self, dcs: Sequence[Any]) -> None:
        self._datacenters = {dc.id: DataCenter(dc.id, dc.name or "", _enum(dc.status))
                             for dc in dcs}

    def datacenter(self, name: str) -> DataCenter:
        for dc in self.datacenters():
            if dc.name == name:
                return dc
        known = ", ".join(sorted(d.name for d in self.datacenters())) or "none"
        raise EngineError(f"the engine has no data center named {name!r} (it has: {known})")

    def clusters(self) -> List[Cluster]:
        self._listed("clusters")
        return list(self._clusters.values()) if self._clusters else []

    def _keep_clusters(self, items: Sequence[Any]) -> None:
        self._clusters = {
            c.id: Cluster(c.id, c.name or "", c.data_center.id if c.data_center else "",
                          _version(c.version), _enum(c.bios_type),
                          c.mac_pool.id if c.mac_pool is not None else "")
            for c in items}

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
        sds = self.call(f"listing storage domains of data center {datacenter}",
                        lambda: self.system_service.data_centers_service().data_center_service(
                            dc.id).storage_domains_service().list())
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
        VM is yielded with ``ovf=None`` for the caller to report (``problem`` says why when
        it is known). VMs the pages missed (they moved while the pages were read) are read
        by id at the end (see :mod:`.reading`).
        """
        self.check_scope(datacenter)
        pager = pager or Pager(self.settings.page_size)

        def pages() -> Iterator[PageRead[EngineVm]]:
            page = start
            while True:
                yield self.read_page(datacenter, page)
                page += 1

        yield from complete(pages(), self, datacenter, pager, key=lambda vm: vm.id,
                                    from_vm=lambda vm: vm,
                                    start_list=lambda: self.vm_refs(datacenter))

    def fetch_page(self, datacenter: Optional[str], page: int) -> List[EngineVm]:
        """One page of ``GET /vms?all_content=true`` (``search=[datacenter=X] page N``)."""
        return self.fetch_slice(datacenter, page_slice(page, self.settings.page_size))

    def fetch_slice(self, datacenter: Optional[str], piece: Slice) -> List[EngineVm]:
        """The VMs of one :class:`Slice` (``max=size``, ``search=[datacenter=X] page N``)."""
        search = page_search(piece.page, datacenter)
        size = piece.size
        vms = self.call(f"listing VMs ({search}, max {size})",
                        lambda: self.system_service.vms_service().list(
                            all_content=True, max=size, search=search))
        return [self._engine_vm(vm) for vm in vms]

    def read_page(self, datacenter: Optional[str], page: int) -> PageRead[EngineVm]:
        """One page, read again in smaller pages down to single VMs when it fails to parse
        or to arrive (:func:`.paging.read_in_slices`); what still fails is a ``Failed``
        position of the :class:`PageRead`. An engine that is gone (its API root does not
        answer 200) fails the read, as does any answer of the engine (4xx, 5xx)."""
        return read_in_slices(page_slice(page, self.settings.page_size),
                              lambda piece: self.fetch_slice(datacenter, piece),
                              splittable=splittable, answered=answered,
                              alive=self.still_answering)

    def still_answering(self, error: Exception) -> None:
        """Raise ``error`` when the engine itself stopped answering (splitting the page
        would only multiply the timeouts); return when only the answer was the trouble."""
        if isinstance(error, EngineError) and error.unreadable:
            return                             # it answered; the answer did not parse
        if self._root_status() != 200:
            raise error

    def _root_status(self) -> Optional[int]:
        """The HTTP status of ``GET /ovirt-engine/api`` (one bounded attempt, never
        retried); None when the engine does not answer at all."""
        try:
            conn = self.connection
            answer = conn.wait(conn.send(sdk_http.Request(method="GET", path="")))
            return int(answer.code)
        except EngineError:
            return None
        except Exception as e:   # timeouts, refused connections: nobody answers
            log.info("the engine at %s does not answer: %s", self.settings.url, short(e))
            self._silent = True
            return None

    def vm_refs(self, datacenter: Optional[str] = None) -> Dict[str, str]:
        """id -> name of every VM the engine has now (in its order: by name), from one
        ``GET /vms`` without ``all_content`` (a VM without OVF is about 1.4 kB).

        It is read raw through the SDK's own connection and only ids and names are taken
        from it (lxml, entities and network off): the SDK would build ~100 fields per VM,
        8x the time for 10,000 VMs. Any answer but a 200 with XML is read again through
        the SDK's service, which raises the SDK's own error.
        """
        query = {"search": f"datacenter={search_value(datacenter)}"} if datacenter else None

        def raw() -> Optional[bytes]:
            conn = self.connection
            answer = conn.wait(conn.send(sdk_http.Request(method="GET", path="/vms",
                                                          query=query)))
            if answer.code == 200 and answer.body and _is_xml(answer.headers):
                return bytes(answer.body)
            return None

        body = self.call("listing the VMs' ids", raw)
        if body is None:
            vms = self.call("listing the VMs' ids", lambda: self.system_service.vms_service().list(
                search=query["search"] if query else None))
            return {vm.id: vm.name or "" for vm in vms}
        return _ids_and_names(body)

    def fetch_vm(self, vm_id: str) -> EngineVm:
        """One VM with its OVF (``GET /vms/{id}?all_content=true``); EngineError 404 when
        the engine has no such VM (any more)."""
        vm = self.call(f"reading VM {vm_id}", lambda: self.system_service.vms_service()
                       .vm_service(vm_id).get(all_content=True))
        return self._engine_vm(vm)

    def unreadable_reason(self, vm_id: str, error: EngineError) -> str:
        """Why one VM cannot be read, for the report: for an answer that did not parse, the
        size of its OVF (one more raw read of it) and the limit."""
        if not error.unreadable:
            return str(error)
        size = self.ovf_size(vm_id)
        if size is None:
            return f"the engine's answer could not be read ({error})"
        limit = f"over the limit of {MAX_OVF_BYTES:,} bytes"
        if size > MAX_OVF_BYTES:
            return (f"its OVF is {size:,} bytes, {limit} (the engine's answer is over what "
                    f"the SDK's XML reader takes in one text node, {SDK_MAX_TEXT:,} "
                    "characters, so it could not be read)")
        return f"the engine's answer could not be read ({error}); its OVF is {size:,} bytes"

    def ovf_size(self, vm_id: str) -> Optional[int]:
        """Bytes (UTF-8) of a VM's OVF, read raw through the SDK's connection and measured
        with lxml's huge-text mode (the SDK's reader cannot: engine-facts C.3). None when
        it cannot be told."""
        try:
            conn = self.connection
            answer = conn.wait(conn.send(sdk_http.Request(
                method="GET", path=f"/vms/{vm_id}", query={"all_content": "true"})))
        except Exception as e:
            log.info("cannot read VM %s again to measure its OVF: %s", vm_id, short(e))
            return None
        if answer.code != 200 or not answer.body:
            return None
        return _configuration_size(bytes(answer.body))

    def vms_by_id(self, ids: Sequence[str], *, batch: int = 50) -> List[EngineVm]:
        """The VMs with these ids, with their OVFs, ``batch`` ids per request
        (``GET /vms?all_content=true&max=<batch>&search=id=A or id=B ...``: OR is supported,
        engine-facts B6). ``max`` is always ``batch``: the engine caches every distinct
        (search text, max) for ever (bll/SearchQuery L95, L526-529), so one value of it
        keeps that growth to one entry per batch. An id the engine does not have is absent
        from the answer. The URL stays far below Apache's 8190 bytes (50 ids: ~2.3 KB).

        A batch whose answer does not parse or arrive (an OVF over the SDK's text limit, a
        cut connection: :func:`.faults.splittable`) is read again in halves, down to one
        id; one VM that still cannot be read is returned with ``ovf=None`` and the reason,
        as a page read reports it. An engine that stopped answering fails the call."""
        vms_service = self.system_service.vms_service()
        out: List[EngineVm] = []

        def read(part: Sequence[str]) -> None:
            search = " or ".join(f"id={vm_id}" for vm_id in part)
            try:
                vms = self.call(f"reading {len(part)} VM(s) by id",
                                lambda: vms_service.list(all_content=True, max=batch,
                                                         search=search))
            except EngineError as e:
                if not splittable(e):
                    raise
                self.still_answering(e)
                if len(part) > 1:
                    half = (len(part) + 1) // 2
                    read(part[:half])
                    read(part[half:])
                    return
                out.append(EngineVm(part[0], "", "", "", None,
                                    problem=self.unreadable_reason(part[0], e)))
                return
            out.extend(self._engine_vm(vm) for vm in vms)

        for start in range(0, len(ids), batch):
            read(list(ids[start:start + batch]))
        return out

    def __getstate__(self) -> Dict[str, Any]:
        """What a worker process needs to read pages itself: settings and the inventory
        already read; never the connection (a worker logs in on its own)."""
        self.clusters()
        self.datacenters()
        return {"settings": self.settings, "clusters": self._clusters,
                "datacenters": self._datacenters, "token": self._token}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        """A worker's adapter uses the parent's session (the token is handed over in memory,
        never written): no login of its own, and nothing to log out; the parent logs out.
        Should the session expire, the worker logs in itself and then logs out itself."""
        self.__init__(state["settings"])  # type: ignore[misc]
        self._clusters, self._datacenters = state["clusters"], state["datacenters"]
        self._token, self._own_token = state.get("token"), False

    def _engine_vm(self, vm: Any) -> EngineVm:
        ovf = _ovf_of(vm)
        if not ovf:
            log.info("engine listed VM %s (%s) without its OVF; fetching it again", vm.name, vm.id)
            try:
                again = self.call(f"fetching VM {vm.name}", lambda: self.system_service
                                  .vms_service().vm_service(vm.id).get(all_content=True))
                ovf = _ovf_of(again)
            except EngineError as e:
                log.warning("VM %s (%s): %s", vm.name, vm.id, e)
                ovf = None
        cluster_id = vm.cluster.id if vm.cluster is not None else ""
        return EngineVm(vm.id, vm.name or "", cluster_id,
                        self.datacenter_of_cluster(cluster_id), ovf or None,
                        cluster=self.cluster_name(cluster_id))

    def add_vm(self, ovf: str, *, name: str, cluster: Optional[str], regenerate_ids: bool,
               correlation_id: Optional[str] = None) -> VmState:
        """``POST /vms`` with an OVF configuration, once (never retried here: the caller
        decides what a refusal means). With ``correlation_id`` the request carries the
        ``Correlation-Id`` header; the audit-log entries of this import carry it
        (engine-facts B1). The answer is the created VM: ``status`` ``image_locked`` means
        the engine answered 202 and is still importing (4.4 and 4.5.0: engine-facts B3;
        the SDK hides the status code, the VM's status tells)."""
        if not cluster:
            raise EngineError(f"restoring {name!r}: no target cluster (neither the backup "
                              "nor the OVF names one; give --cluster)")
        body = _vm_add_body(ovf, name=name, cluster=cluster, regenerate_ids=regenerate_ids)
        headers = {"Correlation-Id": correlation_id} if correlation_id else {}

        def post() -> Any:
            # The SDK's own add() (VmsService._internal_add), with the body rendered by lxml:
            # the SDK's C XML writer keeps every chunk it writes (ovirtsdk4 4.6.3,
            # ext/ov_xml_writer.c ov_xml_writer_callback releases neither the bytes nor the
            # write() result), so a restore of thousands of VMs would grow by their OVFs.
            service = self.system_service.vms_service()
            conn = self.connection
            response = conn.wait(conn.send(sdk_http.Request(
                method="POST", path="/vms", headers=dict(headers), body=body)))
            if response.code in (200, 201, 202):
                return service._internal_read_body(response)
            service._check_fault(response)

        try:
            created = self.call(f"restoring VM {name!r}", post, idempotent=False,
                                role=RESTORE_ROLE)
        except ConflictError as e:
            if regenerate_ids:
                fix = ("choose another name for the copy (--name-pattern) or remove the VM "
                       "of that name")
            else:
                fix = ("restore it as a copy with new ids and a new name (--new-ids "
                       "--name-pattern '{name}-restored'), or remove the existing VM first")
            raise ConflictError(
                f"VM {name!r} was not restored: the engine refused it "
                f"({str(e).split('409 conflict: ', 1)[-1]}). "
                f"If the engine already has a VM with this {'name' if regenerate_ids else 'id or name'}: "
                f"{fix}. A new name alone does not help while the ids are kept: the id "
                "collides too.", code=409) from None
        return _vm_state(created)

    # -- storage domains: OVF_STORE ---------------------------------------------------
    def _domain(self, sd_id: str) -> Any:
        """The storage domain's service, on the connection of now (services are resolved
        inside each call: a new login makes a new connection)."""
        return self.system_service.storage_domains_service().storage_domain_service(sd_id)

    def update_ovf_store(self, sd_id: str) -> None:
        self.call(f"updating the OVF_STORE of storage domain {sd_id}",
                  lambda: self._domain(sd_id).update_ovf_store(async_=False), idempotent=False,
                  role=MSD_ROLE)

    def ovf_store_confirmations(self, sd_name: str) -> List[OvfStoreEvent]:
        """The newest USER_UPDATE_OVF_STORE event of a storage domain (a list of 0 or 1).

        REST shows no other trace of an OVF_STORE write: the OVF_STORE disks' description
        is the plain label "OVF_STORE" (the JSON with "Last Updated" is on storage only),
        and ``updateovfstore`` answers before the write. Events list newest first.
        """
        search = f"type={OVF_STORE_UPDATED_EVENT} and event_storage={search_value(sd_name)}"
        events = self.call(f"listing OVF_STORE events of storage domain {sd_name}",
                           lambda: self.system_service.events_service().list(search=search,
                                                                             max=1))
        return [OvfStoreEvent(int(e.index if e.index is not None else e.id), e.time)
                for e in events]

    def unregistered(self, sd_id: str, kind: str = "vm") -> List[Any]:
        def coll() -> Any:
            svc = self._domain(sd_id)
            return svc.vms_service() if kind == "vm" else svc.templates_service()
        return list(self.call(f"listing unregistered {kind}s of storage domain {sd_id}",
                              lambda: coll().list(unregistered=True)))

    def register(self, sd_id: str, entity_id: str, *, kind: str = "vm",
                 cluster: Optional[str] = None, allow_partial_import: bool = True,
                 reassign_bad_macs: bool = True,
                 vnic_profile_mappings: Sequence[VnicProfileMapping] = (),
                 cluster_mappings: Sequence[ClusterMapping] = ()) -> None:
        config = None
        if vnic_profile_mappings or cluster_mappings:
            mappings = []
            for mapping in vnic_profile_mappings:
                network, _, profile = mapping.source.partition("/")
                mappings.append(types.RegistrationVnicProfileMapping(
                    from_=types.VnicProfile(name=profile or network,
                                            network=types.Network(name=network)),
                    to=types.VnicProfile(id=mapping.target_id)))
            clusters = [types.RegistrationClusterMapping(from_=types.Cluster(name=m.source),
                                                         to=types.Cluster(name=m.target))
                        for m in cluster_mappings]
            config = types.RegistrationConfiguration(vnic_profile_mappings=mappings or None,
                                                     cluster_mappings=clusters or None)
        kwargs: Dict[str, Any] = dict(cluster=types.Cluster(name=cluster) if cluster else None,
                                      allow_partial_import=allow_partial_import,
                                      registration_configuration=config)
        if kind == "vm":
            kwargs["reassign_bad_macs"] = reassign_bad_macs

        def entity() -> Any:
            svc = self._domain(sd_id)
            if kind == "vm":
                return svc.vms_service().vm_service(entity_id)
            return svc.templates_service().template_service(entity_id)
        self.call(f"registering {kind} {entity_id}", lambda: entity().register(**kwargs),
                  idempotent=False, role=RESTORE_ROLE)

    def rename_vm(self, vm_id: str, name: str) -> None:
        self.call(f"renaming VM {vm_id} to {name!r}", lambda: self.system_service.vms_service()
                  .vm_service(vm_id).update(types.Vm(name=name)), idempotent=False,
                  role=RESTORE_ROLE)

    # -- engine facts and events -----------------------------------------------------
    def identity(self, system: str) -> EngineIdentity:
        """Who this engine is, for the store ownership check (its data center ids)."""
        return EngineIdentity(system=system, url=self.settings.url,
                              datacenter_ids=tuple(sorted(dc.id for dc in self.datacenters())))

    def vm_count(self) -> Optional[int]:
        """How many VMs the engine has, from its API summary (``GET /api``), or None when
        it does not say. The engine fills ``summary`` only for admin users (not for a
        filtered session), from GetSystemStatisticsQuery: one COUNT in its database, no
        VM is read (E: rest/resource/BackendApiResource.java ``get``/``addSummary``,
        bll/GetSystemStatisticsQuery.java ``getTotalVMsStat``). It counts every data
        center's VMs. Used only to show progress: a failure is None, never an error."""
        try:
            api = self.call("reading the API summary", lambda: self.system_service.get())
        except EngineError as e:
            log.info("no VM count for the progress bar: %s", e)
            return None
        return summary_vms(api)

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
        self._listed("networks")
        return list(self._networks or ())

    def _keep_networks(self, items: Sequence[Any]) -> None:
        self._networks = [Network(n.id, n.name or "", n.data_center.id if n.data_center else "")
                          for n in items]

    def vnic_profiles(self) -> List[VnicProfile]:
        """Every vNIC profile (``GET /vnicprofiles``): its name and its network's id."""
        self._listed("vnic_profiles")
        return list(self._vnic_profiles or ())

    def _keep_vnic_profiles(self, items: Sequence[Any]) -> None:
        self._vnic_profiles = [VnicProfile(p.id, p.name or "", p.network.id if p.network else "")
                               for p in items]

    def disk_exists(self, disk_id: str) -> bool:
        """Whether the engine has this disk (``GET /disks/{id}``; 404 means it has not)."""
        if disk_id not in self._disks:
            try:
                self.call(f"looking up disk {disk_id}", lambda: self.system_service
                          .disks_service().disk_service(disk_id).get())
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

    # -- restoring many: lookups, the truth about an import (restore/) ----------------
    def find_vms(self, ids: Sequence[str] = (), names: Sequence[str] = (), *,
                 batch: int = 40) -> List[VmRef]:
        """The VMs with one of these ids or names: ``GET /vms?search=id=A or name=B …``,
        ``batch`` terms per request (OR is supported, engine-facts A2/B6; the URL stays
        far below the front end's 8 KB request line). Every distinct search text stays in
        the engine's search cache until it restarts (B6): batches keep them few; for
        thousands of VMs list them all instead (:meth:`vm_refs`)."""
        terms = [f"id={search_value(i)}" for i in dict.fromkeys(ids)] + \
            [f"name={search_value(n)}" for n in dict.fromkeys(names)]
        found: Dict[str, VmRef] = {}
        vms_service = self.system_service.vms_service()
        for start in range(0, len(terms), batch):
            chunk = terms[start:start + batch]
            vms = self._search_vms(vms_service, " or ".join(chunk), len(chunk))
            for vm in vms:
                found.setdefault(vm.id, VmRef(vm.id, vm.name or ""))
        return list(found.values())

    def _search_vms(self, vms_service: Any, search: str, terms: int) -> List[Any]:
        return list(self.call(f"looking up VMs ({terms} terms)",
                              lambda: vms_service.list(search=search)))

    def vm_state(self, vm_id: str, *, follow: bool = False) -> Optional[VmState]:
        """``GET /vms/{id}`` (with ``follow=disk_attachments,nics``: its NICs and disk
        attachments in the same answer); None when the engine has no such VM."""
        svc = self.system_service.vms_service().vm_service(vm_id)
        try:
            vm = self.call(f"reading VM {vm_id}",
                           lambda: svc.get(follow="disk_attachments,nics") if follow else svc.get())
        except EngineError as e:
            if e.code == 404:
                return None
            raise
        return _vm_state(vm, followed=follow)

    def newest_event_index(self) -> int:
        """The index of the newest event (``GET /events?max=1``; newest first, A2); 0 if none."""
        svc = self.system_service.events_service()
        events = self.call("reading the newest event", lambda: svc.list(max=1))
        return max((event_index(e) for e in events), default=0)

    def events_of(self, correlation_id: str, *, after: int = 0) -> List[EngineEvent]:
        """The events a request with this ``Correlation-Id`` logged
        (``GET /events?search=correlation_id=X``; with ``after``: ``from=after``, strictly
        greater), newest first. Not every warning of an import carries it (B2: 9600, 925)."""
        svc = self.system_service.events_service()
        search = f"correlation_id={search_value(correlation_id)}"
        events = self.call(f"reading the events of {correlation_id}",
                           lambda: svc.list(search=search, from_=after or None))
        return [EngineEvent(index=event_index(e), code=int(e.code or 0),
                            severity=_enum(e.severity), description=e.description or "",
                            correlation_id=e.correlation_id or "",
                            vm_id=(e.vm.id or "") if e.vm is not None else "")
                for e in events]

    def cluster_levels(self) -> List[str]:
        """The compatibility levels this engine supports (``GET /clusterlevels``: ids
        "major.minor", engine-facts B5)."""
        self._listed("cluster_levels")
        return list(self._cluster_levels or ())

    def _keep_cluster_levels(self, levels: Sequence[Any]) -> None:
        self._cluster_levels = [str(level.id) for level in levels if level.id]

    def mac_pools(self) -> List[MacPool]:
        """Every MAC pool and its ranges (``GET /macpools``)."""
        self._listed("mac_pools")
        return list(self._mac_pools or ())

    def _keep_mac_pools(self, pools: Sequence[Any]) -> None:
        self._mac_pools = [MacPool(p.id, p.name or "", tuple(
            (r.from_, r.to) for r in (p.ranges or ()) if r.from_ and r.to),
            bool(p.allow_duplicates), bool(p.default_pool)) for p in pools]

    def cluster_macs(self, cluster: str) -> List[str]:
        """The MACs of the NICs of a cluster's VMs (``GET /vms?search=cluster=X&follow=nics``):
        what its MAC pool has given out there (REST shows no pool usage)."""
        svc = self.system_service.vms_service()
        search = f"cluster={search_value(cluster)}"
        vms = self.call(f"listing the NICs of cluster {cluster}",
                        lambda: svc.list(search=search, follow="nics"))
        return [nic.mac.address for vm in vms for nic in (vm.nics or ())
                if nic.mac is not None and nic.mac.address]


# -- helpers ---------------------------------------------------------------------------
def _down(error: EngineError) -> bool:
    """Whether a failure says the engine is not there: no answer at all (a timeout, no
    connection) or the web server in front of it saying it is unavailable (503)."""
    return error.transient and error.code in (None, 503)



def _ovf_of(vm: Any) -> Optional[str]:
    init = getattr(vm, "initialization", None)
    conf = getattr(init, "configuration", None) if init is not None else None
    data = getattr(conf, "data", None) if conf is not None else None
    return data if data and data.strip() else None


def _is_xml(headers: Sequence[str]) -> bool:
    for line in headers or ():
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-type":
            return "xml" in value.lower()
    return False


def _parser_events(body: bytes, events: Sequence[str], tag: Optional[str] = None) -> Any:
    # The engine's own answer; still no entities, no network, no DTD (as ovf.parse does).
    return etree.iterparse(io.BytesIO(body), events=tuple(events), tag=tag,
                           resolve_entities=False, no_network=True, load_dtd=False,
                           huge_tree=True)


def _vm_add_body(ovf: str, *, name: str, cluster: str, regenerate_ids: bool) -> str:
    """The body of ``POST /vms`` with an OVF configuration, as the SDK's VmWriter writes
    ``types.Vm(name, cluster=Cluster(name), initialization=Initialization(
    configuration=Configuration(type=OVF, data=ovf), regenerate_ids))``: the same elements
    in the same order (tests/test_engine_adapter.py compares the two)."""
    vm = etree.Element("vm")
    init = etree.SubElement(vm, "initialization")
    configuration = etree.SubElement(init, "configuration")
    etree.SubElement(configuration, "data").text = ovf
    etree.SubElement(configuration, "type").text = "ovf"
    etree.SubElement(init, "regenerate_ids").text = "true" if regenerate_ids else "false"
    etree.SubElement(vm, "name").text = name
    etree.SubElement(etree.SubElement(vm, "cluster"), "name").text = cluster
    return etree.tostring(vm, encoding="unicode")


def _ids_and_names(body: bytes) -> Dict[str, str]:
    """id -> name of the ``<vm>`` elements of a ``<vms>`` answer, in order, memory flat."""
    out: Dict[str, str] = {}
    for _, element in _parser_events(body, ("end",), tag="vm"):
        parent = element.getparent()
        if parent is None or parent.getparent() is not None:
            continue                            # only the entries of the list itself
        out[element.get("id") or ""] = element.findtext("name") or ""
        element.clear()
        while element.getprevious() is not None:
            del parent[0]
    out.pop("", None)
    return out


def _configuration_size(body: bytes) -> Optional[int]:
    """UTF-8 bytes of ``vm/initialization/configuration/data`` of a ``<vm>`` answer."""
    try:
        for _, element in _parser_events(body, ("end",), tag="data"):
            if element.getparent() is not None and element.getparent().tag == "configuration":
                return len((element.text or "").encode("utf-8"))
    except etree.XMLSyntaxError:
        return None
    return None


def _enum(value: Any) -> str:
    if value is None:
        return ""
    return str(getattr(value, "value", value))


def _version(version: Any) -> str:
    if version is None or version.major is None:
        return ""
    return f"{version.major}.{version.minor if version.minor is not None else 0}"


def summary_vms(api: Any) -> Optional[int]:
    """The VM total of an API root answer's ``summary``, or None when it shows none."""
    summary = getattr(api, "summary", None)
    vms = getattr(summary, "vms", None) if summary is not None else None
    total = getattr(vms, "total", None) if vms is not None else None
    return int(total) if total is not None else None


def event_index(event: Any) -> int:
    # event.index overflows above 2**31 (engine-facts A2): the id is the audit_log_id
    try:
        return int(event.id)
    except (TypeError, ValueError):
        return int(event.index or 0)


def _vm_state(vm: Any, *, followed: bool = False) -> VmState:
    nics = disks = None
    if followed:
        nics = tuple(VmNic(n.name or "", n.mac.address if n.mac is not None else "",
                           n.vnic_profile.id if n.vnic_profile is not None else "",
                           n.plugged is not False) for n in (vm.nics or ()))
        disks = tuple(a.disk.id for a in (vm.disk_attachments or ()) if a.disk is not None)
    return VmState(str(vm.id), vm.name or "", _enum(vm.status),
                   vm.cluster.id if vm.cluster is not None else "", nics, disks)


#: The listings the adapter keeps once read (:meth:`Engine._listed`, :meth:`Engine.prefetch`):
#: name -> (its cache, what reading it is called in errors, its service, what keeps it).
_LISTINGS: Dict[str, Any] = {
    "datacenters": ("_datacenters", "listing data centers", lambda s: s.data_centers_service(),
                    Engine._keep_datacenters),
    "clusters": ("_clusters", "listing clusters", lambda s: s.clusters_service(),
                 Engine._keep_clusters),
    "networks": ("_networks", "listing networks", lambda s: s.networks_service(),
                 Engine._keep_networks),
    "vnic_profiles": ("_vnic_profiles", "listing vNIC profiles",
                      lambda s: s.vnic_profiles_service(), Engine._keep_vnic_profiles),
    "cluster_levels": ("_cluster_levels", "listing cluster levels",
                       lambda s: s.cluster_levels_service(), Engine._keep_cluster_levels),
    "mac_pools": ("_mac_pools", "listing MAC pools", lambda s: s.mac_pools_service(),
                  Engine._keep_mac_pools),
}
