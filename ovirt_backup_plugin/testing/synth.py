"""Cassettes synthesized from the oVirt API model, for what no public recording holds.

Everything here is *synthetic*: built by this project from the REST API model
(oVirt/ovirt-engine-api-model) and the engine's OVF writer, never recorded from an engine.
The shapes were checked against ``ovirtsdk4/readers.py`` and real recordings.

* :func:`sso_interactions`: SSO token success, token rejection, logout.
* :func:`make_ovf`: an OVF in the engine's own dialect (``ovf:version`` 4.1.0.0 writer).
* XML builders for data centers, clusters, attached storage domains, VMs and faults.
* :class:`SyntheticEngine`: data centers → clusters → storage domains, VMs with OVFs,
  and :meth:`SyntheticEngine.interactions` giving exactly the requests of the project's
  engine adapter (``ovirt_backup_plugin.engine``), ready for :mod:`.replay`.
* The ``msd`` side of every data domain: ``updateovfstore`` (200, or 409
  :data:`OVF_STORE_BUSY` first), its disks with the OVF_STORE disks as REST shows them
  (:func:`storage_disks_xml`), unregistered VMs and templates and their ``register``, the
  rename after it, and the USER_UPDATE_OVF_STORE event that confirms a forced write.
* :func:`demo_engine`: the fixed inventory of ``cassettes/demo-engine.yaml``.

Interactions are plain dicts in vcrpy's cassette format (``request`` with method, uri,
body, headers; ``response`` with status, headers, body.string); cassettes are written with
vcrpy's serializers. Hosts are ``https://engine.example.com`` like the real recordings.
"""
from __future__ import annotations

import datetime as _dt
import json
import random
import re
import uuid
from dataclasses import dataclass, replace
from http import HTTPStatus
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union
from urllib.parse import parse_qsl, urlencode, urlsplit
from xml.etree import ElementTree
from xml.sax.saxutils import escape, quoteattr

from vcr.serializers import jsonserializer, yamlserializer

from .engine_state import SUBSET, SUBSET_HEADER

ENGINE = "https://engine.example.com"
EMPTY_PAGES_AFTER = 5                              # = capture.AHEAD, the most read ahead
API = "/ovirt-engine/api"
SSO_TOKEN_PATH = "/ovirt-engine/sso/oauth/token"
SSO_LOGOUT_PATH = "/ovirt-engine/services/sso-logout"
ZERO = "00000000-0000-0000-0000-000000000000"     # the Blank template, "no parent"
XML_TYPE = "application/xml;charset=UTF-8"
JSON_TYPE = "application/json"
XML_DECL = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
OVF_NS = "http://schemas.dmtf.org/ovf/envelope/1/"
RASD_NS = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
VSSD_NS = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"

#: 409 details of ``POST /vms`` with a configuration (engine messages
#: VM_CANNOT_IMPORT_VM_EXISTS and VM_CANNOT_IMPORT_VM_NAME_EXISTS, as REST wraps them).
CONFLICT_ID = "[Cannot import VM. VM with the same identifier already exists.]"
CONFLICT_NAME = "[Cannot import VM. VM with the same name already exists.]"
#: 409 details of ``POST /vms`` refused on an engine lock (engine-facts B4: locks are taken
#: before validate(), and the refused command gets the lock *holder's* message with its own
#: ${action} ${type}, here "import VM"): transient, the import can be retried.
LOCKED = "[Cannot import VM. Related operation is currently in progress. Please try again later.]"
BEING_IMPORTED = "[Cannot import VM. VM {name} is being imported.]"
NAME_IN_USE = ("[Cannot import VM. The VM name is already in use, please choose a unique "
               "name and try again.]")
#: 409 of an import into a cluster with no BIOS type (CLUSTER_BIOS_TYPE_NOT_SET, ERR L1035).
BIOS_TYPE_NOT_SET = ("[Cannot create a VM in a cluster that has not specified a bios type. "
                     "Please activate at least one host in the cluster to set it automatically "
                     "or set it manually on the cluster.]")
SSO_REJECTED = ("Cannot authenticate user 'admin@internal': "
                "The username or password is incorrect..")

#: 409 detail of ``POST /storagedomains/{id}/updateovfstore`` while the engine writes that
#: domain's OVF_STORE. Derived from engine sources, not observed: the refused command gets
#: the lock *holder's* message (InMemoryLockManager), here ProcessOvfUpdateForStorageDomain's
#: ACTION_TYPE_FAILED_DOMAIN_OVF_ON_UPDATE ("Cannot ${action} ${type}. Storage Domain OVF
#: data is currently being updated."). UpdateOvfStoreForStorageDomain sets only ${type}
#: (VAR__TYPE__STORAGE__DOMAIN = "Storage"), and StrSubstitutor leaves ${action} as it is.
OVF_STORE_BUSY = ("[Cannot ${action} Storage. Storage Domain OVF data is currently "
                  "being updated.]")
#: The other 409 of the same call: the engine regenerates the pool's OVFs (its periodic
#: OvfDataUpdater holds the OVF_UPDATE lock, message ACTION_TYPE_FAILED_OBJECT_LOCKED).
OVF_STORE_LOCKED = ("[Cannot ${action} ${type}. Related operation is currently in progress. "
                    "Please try again later.]")
#: The 409 of the same call for a domain that is not active (engine message
#: ACTION_TYPE_FAILED_STORAGE_DOMAIN_STATUS_ILLEGAL2 for a master in status unknown, as
#: observed in a multi-DC inventory): permanent, retrying does not help.
OVF_STORE_NOT_ACTIVE = ("[Cannot ${action} Storage. Storage Domain ${storageDomainName} "
                        "must be an active data domain.]")
#: Exactly what ovirtsdk4 4.6 sends for ``update_ovf_store(async_=False)`` (the engine reads
#: no field of it: BackendStorageDomainResource.updateOvfStore ignores the action).
UPDATE_OVF_STORE_BODY = "<action>\n  <async>false</async>\n</action>\n"
#: AuditLogType.USER_UPDATE_OVF_STORE: "OVF_STORE for domain ${StorageDomainName} was updated
#: by ${UserName}." The engine logs it when a user-forced update has been written, after
#: the REST call returned; REST shows no other trace of the write (see storage_disks_xml).
OVF_STORE_UPDATED_EVENT = 199
OVF_STORE_SIZE = 134217728                        # a new OVF_STORE volume: 128 MiB
OVF_STORE_COUNT = 2                               # StorageDomainOvfStoreCount


# ------------------------------------------------------------------------------------
# Interactions
# ------------------------------------------------------------------------------------
def interaction(method: str, path: str, *, status: int = 200, body: Optional[str] = None,
                content_type: str = XML_TYPE, request_body: Optional[str] = None) -> dict:
    """One vcrpy interaction. ``path`` may carry a query; the host is :data:`ENGINE`."""
    headers = {"content-type": [content_type]} if body is not None else {}
    return {
        "request": {"method": method, "uri": ENGINE + path, "body": request_body,
                    "headers": {}},
        "response": {"status": {"code": status, "message": HTTPStatus(status).phrase},
                     "headers": headers, "body": {"string": body or ""}},
    }


def with_query(path: str, **query) -> str:
    """``path?query`` encoded like ovirtsdk4 does it (keys sorted, ``urlencode``)."""
    return f"{path}?{urlencode(sorted(query.items()))}" if query else path


def _search_value(value: str) -> str:
    # The engine's search syntax needs quotes around values with spaces or symbols.
    return value if re.fullmatch(r"[\w.\-]+", value) else '"' + value.replace('"', "") + '"'


def page_search(page: int, datacenter: Optional[str] = None) -> str:
    """The ``search`` of the adapter's VM listing: ``page N`` or ``datacenter=DC page N``."""
    scope = f"datacenter={_search_value(datacenter)} " if datacenter else ""
    return f"{scope}page {page}"


def sso_interactions(username: str = "admin@internal", token: str = "replay-token") -> List[dict]:
    """Token success (``password=***``), token rejection (``password=***rejected***``), logout.

    The replay server scrubs a token request's password to ``***`` when it is the
    server's password and to ``***rejected***`` otherwise, so both are matched.
    """
    if len(token) >= 24:
        raise ValueError("keep synthesized tokens shorter than 24 characters")
    form = urlencode([("grant_type", "password"), ("scope", "ovirt-app-api"),
                      ("username", username)])
    granted = {"access_token": token, "token_type": "bearer", "scope": "ovirt-app-api",
               "exp": "4102444800000"}
    denied = {"error_code": "access_denied", "error": SSO_REJECTED.replace("admin@internal",
                                                                          username)}
    return [
        interaction("POST", SSO_TOKEN_PATH, body=json.dumps(granted), content_type=JSON_TYPE,
                    request_body=form + "&password=***"),
        interaction("POST", SSO_TOKEN_PATH, status=400, body=json.dumps(denied),
                    content_type=JSON_TYPE, request_body=form + "&password=***rejected***"),
        interaction("POST", SSO_LOGOUT_PATH, body="{}", content_type=JSON_TYPE,
                    request_body="scope=ovirt-app-api&token=***"),
    ]


#: What Apache (the web server in front of the engine) answers while ovirt-engine is down:
#: its stock 503 page (mod_proxy_ajp cannot reach the engine), text/html.
APACHE_503_HTML = ('<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\n<html><head>\n'
                   "<title>503 Service Unavailable</title>\n</head><body>\n"
                   "<h1>Service Unavailable</h1>\n<p>The server is temporarily unable to "
                   "service your\nrequest due to maintenance downtime or capacity\nproblems. "
                   "Please try again later.</p>\n</body></html>\n")
#: Apache's stock 404 page (a URL path outside the engine's applications).
APACHE_404_HTML = ('<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\n<html><head>\n'
                   "<title>404 Not Found</title>\n</head><body>\n<h1>Not Found</h1>\n"
                   "<p>The requested URL was not found on this server.</p>\n</body></html>\n")
HTML_TYPE = "text/html; charset=iso-8859-1"
#: The detail of the engine's 404 for an entity it does not have
#: (BaseBackendResource.EntityNotFoundException, Messages.ENTITY_NOT_FOUND_TEMPLATE).
NOT_FOUND_DETAIL = "Entity not found: {}"


def fault_xml(detail: str, reason: str = "Operation Failed") -> str:
    return (f"{XML_DECL}<fault>\n    <detail>{escape(detail)}</detail>\n"
            f"    <reason>{escape(reason)}</reason>\n</fault>\n")


# ------------------------------------------------------------------------------------
# Inventory records
# ------------------------------------------------------------------------------------
@dataclass
class SynthDisk:
    alias: str
    size_gb: int = 20
    actual_gb: int = 2
    interface: str = "VirtIO_SCSI"          # VirtIO_SCSI, VirtIO, IDE, SATA
    boot: bool = False
    storage_domain: str = ""                # id (or name, resolved by SyntheticEngine)
    disk_id: str = ""                       # image group id: first part of ovf:fileRef
    image_id: str = ""                      # volume id: ovf:diskId, second part of fileRef
    volume_format: str = "RAW"              # RAW or COW
    lun_id: str = ""                        # a direct LUN disk (no image): its LUN id


@dataclass
class SynthNic:
    name: str = "nic1"
    network: str = "ovirtmgmt"
    vnic_profile: str = ""                  # "" means: the profile named like the network
    mac: str = ""
    interface_type: int = 3                 # VmInterfaceType: 3 = VirtIO
    id: str = ""


@dataclass
class SynthDataCenter:
    id: str
    name: str
    description: str = ""
    status: str = "up"                      # up, uninitialized (no storage yet), ...


@dataclass
class SynthCluster:
    id: str
    name: str
    datacenter: SynthDataCenter
    bios_type: Optional[str] = "q35_sea_bios"   # None: not set yet (a cluster with no host)
    version: str = ""                       # "" : the engine's cluster_version
    mac_pool: str = ""                      # the pool's id ("" : the engine's default pool)


@dataclass
class SynthMacPool:
    """``GET /macpools``: one pool and its ranges (MacPoolMapper; engine-facts B5)."""

    id: str
    name: str
    ranges: List[Tuple[str, str]]
    allow_duplicates: bool = False
    default_pool: bool = False

    @property
    def size(self) -> int:
        return sum(_mac_int(b) - _mac_int(a) + 1 for a, b in self.ranges)


@dataclass
class SynthNetwork:
    """A logical network of one data center and its vNIC profiles (name -> id)."""

    id: str
    name: str
    datacenter: SynthDataCenter
    profiles: Dict[str, str]
    vm: bool = True                         # usages: vm (a non-VM network carries no NIC)


@dataclass
class SynthRestore:
    """One answer to ``POST /vms`` for the VM named ``name`` (see add_restore)."""

    name: str
    id: str
    cluster: SynthCluster
    status: int
    nics: List[Tuple]                        # (name, network, profile, plugged) received
    disks: List[Tuple[str, str]]             # (disk id, alias) the received OVF names
    attached: List[str]                      # disk ids the engine attached
    events: List[dict]                       # what the import logs (engine-facts B2)


@dataclass
class SynthStorageDomain:
    id: str
    name: str
    datacenter: SynthDataCenter
    master: bool = False
    type: str = "data"
    ovf_store_size: int = 0                 # bytes the last OVF_STORE write took (file domains)
    ovf_store_event: str = ""               # time of the USER_UPDATE_OVF_STORE event, if any
    status: str = "active"                  # active, unknown, maintenance, inactive, ...


@dataclass
class SynthUnregistered:
    """A VM or template whose OVF a data domain brought, not registered in this engine."""

    id: str
    name: str
    storage_domain: SynthStorageDomain
    kind: str = "vm"                        # "vm" or "template"
    description: str = ""
    os: str = "rhel_8x64"
    memory_mb: int = 4096


@dataclass
class SynthVm:
    id: str
    name: str
    cluster: SynthCluster
    ovf: str
    os: str = "rhel_8x64"
    memory_mb: int = 4096
    cpus: int = 2
    description: str = ""
    status: str = "down"
    ovf_missing_in_list: bool = False       # locked: the list leaves the OVF out
    ovf_missing_always: bool = False        # the single GET leaves it out too
    added_after_page: int = 0               # created after the engine answered that page
    removed_after_page: Optional[int] = None  # removed after the engine answered that page
    changes: int = 0                        # change_vm() calls so far


def _mac_int(mac: str) -> int:
    return int(mac.replace(":", ""), 16)


def _stable_id(*parts: object) -> str:
    """An id derived from ``parts`` (never from the engine's random stream, so adding such
    objects shifts no id a SyntheticEngine hands out)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "synth:" + ":".join(str(p) for p in parts)))


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _is_desktop(os_type: str) -> bool:
    return os_type.startswith(("windows_1", "windows_7", "windows_8"))


def _mac(rng: random.Random) -> str:
    return "56:6f:" + ":".join(f"{rng.randrange(256):02x}" for _ in range(4))


# ------------------------------------------------------------------------------------
# OVF in the engine's dialect
# ------------------------------------------------------------------------------------
def _el(tag: str, text="") -> str:
    return f"<{tag}>{escape(str(text))}</{tag}>"


def _ovf_attrs(pairs: Sequence[Tuple[str, object]]) -> str:
    return "".join(f" ovf:{k}={quoteattr(str(v))}" for k, v in pairs)


def _device(kind: str, device: str, address: str, *, alias: str = "", boot: int = 0,
            readonly: bool = False, spec: Optional[Dict[str, object]] = None) -> str:
    """The engine's per-device block (``writeVmDeviceInfo``)."""
    out = (_el("Type", kind) + _el("Device", device) + _el("rasd:Address", address)
           + _el("BootOrder", boot) + _el("IsPlugged", "true")
           + _el("IsReadOnly", str(readonly).lower()) + _el("Alias", alias))
    if spec:
        out += "<SpecParams>" + "".join(_el(k, v) for k, v in spec.items()) + "</SpecParams>"
    return out


def _pci(slot: int, function: int = 0) -> str:
    return f"{{type=pci, slot=0x{slot:02x}, bus=0x00, domain=0x0000, function=0x{function:x}}}"


def make_ovf(vm_id: str, name: str, *, cluster: str = "Default", os: str = "rhel_8x64",
             memory_mb: int = 4096, cpus: int = 2, disks: Sequence[SynthDisk] = (),
             nics: Sequence[SynthNic] = (), seed: int = 0, description: str = "",
             datacenter_id: str = ZERO, cluster_version: str = "4.7",
             creation_date: str = "", export_date: str = "2026/11/26 07:45:00",
             template_id: str = ZERO, template_name: str = "Blank",
             snapshot_id: str = "", bios_type: int = 1, tpm: bool = False,
             host_devices: Sequence[str] = (), custom_version: str = "") -> str:
    """An OVF as the engine writes it for ``GET /vms/{id}?all_content=true``.

    ``disks`` and ``nics`` describe the VM's devices; ids, MACs and dates left empty are
    derived from ``seed`` and ``vm_id``, so the same arguments always give the same text.
    Disks: ``ovf:fileRef`` is ``<disk id>/<image id>`` and the storage domain is the
    disk item's ``rasd:StorageId`` (that is how the engine writes it).

    What a configuration cannot bring back (engine-facts B.7): ``bios_type`` is the OVF's
    zero-based ``<BiosType>`` (0 i440fx SeaBIOS, 1 Q35 SeaBIOS, 2 Q35 OVMF (UEFI), 3 Q35
    SecureBoot; OvfWriter writes the engine's value - 1); ``tpm`` adds the TPM device Item
    (``rasd:Caption`` TPM, ResourceType 0, ``<Type>tpm</Type>``); ``host_devices`` adds one
    ``<Type>hostdev</Type>`` Item per name (OvfWriter L497-503, L579-585); a disk with a
    ``lun_id`` is a direct LUN: ``References/File`` with ``ovf:id``/``ovf:href`` = the disk
    id and ``ovf:disk_storage_type="LUN"``, and a DiskSection entry with ``ovf:lun_id`` and
    its ``<Connection>`` (OvfOvirtWriter L51-56, L127-157), no image and no hardware Item.
    ``custom_version`` writes ``<CustomCompatibilityVersion>``.
    """
    rng = random.Random(f"{seed}:{vm_id}")
    snapshot_id = snapshot_id or _uuid(rng)
    creation_date = creation_date or (f"20{rng.randrange(19, 26)}/{rng.randrange(1, 13):02d}/"
                                      f"{rng.randrange(1, 29):02d} {rng.randrange(24):02d}:"
                                      f"{rng.randrange(60):02d}:{rng.randrange(60):02d}")
    disks = [replace(d, disk_id=d.disk_id or _uuid(rng), image_id=d.image_id or _uuid(rng))
             for d in disks]
    nics = [replace(n, id=n.id or _uuid(rng), mac=n.mac or _mac(rng),
                    vnic_profile=n.vnic_profile or n.network) for n in nics]
    sockets, cores = (cpus // 2, 2) if cpus >= 4 and cpus % 2 == 0 else (cpus, 1)
    desktop = _is_desktop(os)

    luns = [d for d in disks if d.lun_id]
    disks = [d for d in disks if not d.lun_id]
    refs = "".join(
        "<File" + _ovf_attrs([("href", f"{d.disk_id}/{d.image_id}"), ("id", d.image_id),
                              ("size", d.actual_gb * 1024 ** 3), ("description", "Active VM"),
                              ("disk_storage_type", "IMAGE"), ("cinder_volume_type", "")])
        + "></File>" for d in disks)
    refs += "".join(
        "<File" + _ovf_attrs([("id", d.disk_id), ("href", d.disk_id),
                              ("disk_storage_type", "LUN"), ("cinder_volume_type", "")])
        + "></File>" for d in luns)
    networks = "".join(f'<Network ovf:name={quoteattr(n)}></Network>'
                       for n in dict.fromkeys(x.network for x in nics))
    fmt = {"RAW": "http://www.vmware.com/specifications/vmdk.html#sparse",
           "COW": "http://www.gnome.org/~markmc/qcow-image-format.html"}
    disk_section = "".join(
        "<Disk" + _ovf_attrs([
            ("diskId", d.image_id), ("size", d.size_gb), ("actual_size", d.actual_gb),
            ("vm_snapshot_id", snapshot_id), ("parentRef", ""),
            ("fileRef", f"{d.disk_id}/{d.image_id}"), ("format", fmt[d.volume_format]),
            ("volume-format", d.volume_format),
            ("volume-type", "Sparse" if d.volume_format == "COW" or d.boot else "Preallocated"),
            ("disk-interface", d.interface), ("read-only", "false"), ("shareable", "false"),
            ("boot", str(d.boot).lower()), ("pass-discard", "false"), ("disk-alias", d.alias),
            ("disk-description", ""), ("wipe-after-delete", "false")]) + "></Disk>"
        for d in disks)
    disk_section += "".join(
        "<Disk" + _ovf_attrs([
            ("diskId", d.disk_id), ("disk-alias", d.alias), ("disk-description", ""),
            ("disk-interface", d.interface), ("boot", str(d.boot).lower()),
            ("read-only", "false"), ("shareable", "false"), ("scsi_reservation", "false"),
            ("plugged", "true"), ("lun_id", d.lun_id)])
        + '><Connection ovf:connection="iscsi.example.com" ovf:iqn="iqn.2026-11.com.example:lun"'
        ' ovf:port="3260" xsi:storage_type="ISCSI" xsi:portal="1"></Connection></Disk>'
        for d in luns)

    general = "".join([
        _el("Name", name), _el("Description", description), _el("Comment", ""),
        _el("CreationDate", creation_date), _el("ExportDate", export_date),
        _el("DeleteProtected", "false"), _el("SsoMethod", "guest_agent"),
        _el("IsSmartcardEnabled", "false"), _el("NumOfIoThreads", 1),
        _el("TimeZone", "Etc/GMT" if not os.startswith("windows") else "GMT Standard Time"),
        _el("default_boot_sequence", 0), _el("Generation", rng.randrange(1, 2000)),
        _el("ClusterCompatibilityVersion", cluster_version),
        _el("CustomCompatibilityVersion", custom_version) if custom_version else "",
        _el("VmType", 0 if desktop else 1),
        _el("ResumeBehavior", "AUTO_RESUME"), _el("MinAllocatedMem", memory_mb),
        _el("IsStateless", "false"), _el("IsRunAndPause", "false"),
        _el("AutoStartup", "false"), _el("Priority", 1),
        _el("CreatedByUserId", "fdfc627c-d875-11e0-90f0-83df133b58cc"),
        _el("MigrationSupport", 0), _el("IsBootMenuEnabled", "false"),
        _el("IsSpiceFileTransferEnabled", "true"), _el("IsSpiceCopyPasteEnabled", "true"),
        _el("AllowConsoleReconnect", "true"), _el("ConsoleDisconnectAction", "LOCK_SCREEN"),
        _el("CustomEmulatedMachine", ""), _el("BiosType", bios_type), _el("CustomCpuName", ""),
        _el("PredefinedProperties", ""), _el("UserDefinedProperties", ""),
        _el("MaxMemorySizeMb", memory_mb * 4), _el("MultiQueuesEnabled", "true"),
        _el("UseHostCpu", "false"), _el("ClusterName", cluster),
        _el("TemplateId", template_id), _el("TemplateName", template_name),
        _el("IsInitilized", "true"), _el("Origin", 0), _el("DefaultDisplayType", 2),
        _el("TrustedService", "false"), _el("OriginalTemplateId", template_id),
        _el("OriginalTemplateName", template_name), _el("UseLatestVersion", "false"),
        _el("StopTime", export_date), _el("BootTime", creation_date), _el("Downtime", 0)])
    os_section = (f'<Section ovf:id="{vm_id}" ovf:required="false" '
                  'xsi:type="ovf:OperatingSystemSection_Type">'
                  + _el("Info", "Guest Operating System") + _el("Description", os) + "</Section>")

    items = [
        _el("rasd:Caption", f"{cpus} virtual cpu")
        + _el("rasd:Description", "Number of virtual CPU")
        + _el("rasd:InstanceId", 1) + _el("rasd:ResourceType", 3)
        + _el("rasd:num_of_sockets", sockets) + _el("rasd:cpu_per_socket", cores)
        + _el("rasd:threads_per_cpu", 1) + _el("rasd:max_num_of_vcpus", max(16, cpus * 4))
        + _el("rasd:VirtualQuantity", cpus),
        _el("rasd:Caption", f"{memory_mb} MB of memory") + _el("rasd:Description", "Memory Size")
        + _el("rasd:InstanceId", 2) + _el("rasd:ResourceType", 4)
        + _el("rasd:AllocationUnits", "MegaBytes") + _el("rasd:VirtualQuantity", memory_mb),
    ]
    scsi_unit = 0
    for n, d in enumerate(disks):
        if d.interface == "VirtIO_SCSI":
            address = f"{{type=drive, bus=0, controller=0, target=0, unit={scsi_unit}}}"
            scsi_unit += 1
        else:
            address = _pci(0x08 + n)
        items.append(
            _el("rasd:Caption", d.alias) + _el("rasd:InstanceId", d.image_id)
            + _el("rasd:ResourceType", 17) + _el("rasd:HostResource", f"{d.disk_id}/{d.image_id}")
            + _el("rasd:Parent", ZERO) + _el("rasd:Template", ZERO)
            + _el("rasd:ApplicationList", "") + _el("rasd:StorageId", d.storage_domain or ZERO)
            + _el("rasd:StoragePoolId", datacenter_id) + _el("rasd:CreationDate", creation_date)
            + _el("rasd:LastModified", "1970/01/01 00:00:00")
            + _el("rasd:last_modified_date", export_date)
            + _device("disk", "disk", address, alias=f"ua-{d.disk_id}", boot=1 if d.boot else 0))
    for n, nic in enumerate(nics):
        items.append(
            _el("rasd:Caption", f"Ethernet adapter on {nic.network}")
            + _el("rasd:InstanceId", nic.id)
            + _el("rasd:ResourceType", 10) + _el("rasd:OtherResourceType", nic.vnic_profile)
            + _el("rasd:ResourceSubType", nic.interface_type) + _el("rasd:Connection", nic.network)
            + _el("rasd:Linked", "true") + _el("rasd:Name", nic.name)
            + _el("rasd:ElementName", nic.name) + _el("rasd:MACAddress", nic.mac)
            + _el("rasd:speed", 10000)
            + _device("interface", "bridge", _pci(0x03 + n), alias=f"ua-{nic.id}"))
    items.append(_el("rasd:Caption", "USB Controller") + _el("rasd:InstanceId", 3)
                 + _el("rasd:ResourceType", 23) + _el("rasd:UsbPolicy", "DISABLED"))
    video = "qxl" if desktop else "vga"
    items.append(_el("rasd:Caption", "Graphical Controller") + _el("rasd:InstanceId", _uuid(rng))
                 + _el("rasd:ResourceType", 20) + _el("rasd:VirtualQuantity", 1)
                 + _el("rasd:SinglePciQxl", "false")
                 + _device("video", video, _pci(0x02), alias="video0",
                           spec={"vgamem": 16384, "heads": 1, "vram": 8192}))
    for console in ("spice", "vnc"):
        items.append(_el("rasd:Caption", "Graphical Framebuffer")
                     + _el("rasd:InstanceId", _uuid(rng)) + _el("rasd:ResourceType", 26)
                     + _device("graphics", console, ""))
    cd_unit = "bus=1, controller=0, target=0, unit=0" if desktop else \
        "bus=0, controller=0, target=0, unit=2"
    items.append(_el("rasd:Caption", "CDROM") + _el("rasd:InstanceId", _uuid(rng))
                 + _el("rasd:ResourceType", 15)
                 + _device("disk", "cdrom", f"{{type=drive, {cd_unit}}}", alias="ua-cdrom",
                           boot=2, readonly=True, spec={"path": ""}))
    others: List[Tuple[str, str, str, str, Optional[Dict[str, object]]]] = [
        ("channel", "unix", "{type=virtio-serial, bus=0, controller=0, port=1}", "channel0", None),
        ("channel", "spicevmc", "{type=virtio-serial, bus=0, controller=0, port=3}", "channel2",
         None),
        ("controller", "virtio-serial", _pci(0x05), "virtio-serial0", None),
        ("controller", "virtio-scsi", _pci(0x04), "scsi0", {"ioThreadId": ""}),
        ("controller", "usb", _pci(0x01, 2), "usb", {"index": 0, "model": "piix3-uhci"}),
        ("controller", "ide", _pci(0x01, 1), "ide", {"index": 0}),
        ("rng", "virtio", _pci(0x07), "rng0", {"source": "urandom"}),
        ("balloon", "memballoon", _pci(0x06), "balloon0", {"model": "virtio"}),
    ]
    if desktop or rng.random() < 0.5:
        others.append(("sound", "ich6", _pci(0x09), "sound0", None))
    for name_ in host_devices:
        others.append(("hostdev", name_, "", f"hostdev-{name_}", None))
    for kind, device, address, alias, spec in others:
        items.append(_el("rasd:ResourceType", 0) + _el("rasd:InstanceId", _uuid(rng))
                     + _device(kind, device, address, alias=alias, spec=spec,
                               readonly=kind == "balloon"))
    if tpm:
        items.append(_el("rasd:Caption", "TPM") + _el("rasd:InstanceId", _uuid(rng))
                     + _el("rasd:ResourceType", 0)
                     + _device("tpm", "tpm", "", alias="tpm0", spec={"model": "tpm-crb"}))
    hardware = ('<Section xsi:type="ovf:VirtualHardwareSection_Type">'
                + _el("Info", f"{cpus} CPU, {memory_mb} Memory")
                + "<System>" + _el("vssd:VirtualSystemType", "ENGINE 4.1.0.0") + "</System>"
                + "".join(f"<Item>{item}</Item>" for item in items) + "</Section>")
    snapshots = ('<Section xsi:type="ovf:SnapshotsSection_Type">'
                 f'<Snapshot ovf:id="{snapshot_id}">' + _el("Type", "ACTIVE")
                 + _el("Description", "Active VM") + _el("CreationDate", creation_date)
                 + "</Snapshot></Section>")
    return ('<?xml version="1.0" encoding="UTF-8"?>'
            f'<ovf:Envelope xmlns:ovf="{OVF_NS}" xmlns:rasd="{RASD_NS}" xmlns:vssd="{VSSD_NS}" '
            f'xmlns:xsi="{XSI_NS}" ovf:version="4.1.0.0">'
            f"<References>{refs}</References>"
            f"<NetworkSection><Info>List of networks</Info>{networks}</NetworkSection>"
            '<Section xsi:type="ovf:DiskSection_Type"><Info>List of Virtual Disks</Info>'
            f"{disk_section}</Section>"
            '<Content ovf:id="out" xsi:type="ovf:VirtualSystem_Type">'
            f"{general}{os_section}{hardware}{snapshots}</Content></ovf:Envelope>")


# ------------------------------------------------------------------------------------
# REST XML
# ------------------------------------------------------------------------------------
def _ref(tag: str, collection: str, id_: str, indent: str = "    ") -> str:
    return f'{indent}<{tag} href="{API}/{collection}/{id_}" id="{id_}"/>\n'


def _version(cluster_version: str, indent: str) -> str:
    major, minor = cluster_version.split(".")[:2]
    return (f"{indent}<version>\n{indent}    <major>{major}</major>\n"
            f"{indent}    <minor>{minor}</minor>\n{indent}</version>\n")


def datacenter_xml(dc: SynthDataCenter, cluster_version: str = "4.7") -> str:
    i = "        "
    return (f'    <data_center href="{API}/datacenters/{dc.id}" id="{dc.id}">\n'
            f"{i}<name>{escape(dc.name)}</name>\n{i}<description>{escape(dc.description)}"
            f"</description>\n{i}<local>false</local>\n{i}<quota_mode>disabled</quota_mode>\n"
            f"{i}<status>{dc.status}</status>\n{i}<storage_format>v5</storage_format>\n"
            f"{_version(cluster_version, i)}    </data_center>\n")


def cluster_xml(cl: SynthCluster, cluster_version: str = "4.7", mac_pool: str = "") -> str:
    """A cluster as REST lists it: its BIOS type only when set (the engine leaves the
    element out while it is null: ClusterMapper L215, engine-facts B5), its MAC pool."""
    i = "        "
    bios = f"{i}<bios_type>{cl.bios_type}</bios_type>\n" if cl.bios_type else ""
    pool = _ref("mac_pool", "macpools", cl.mac_pool or mac_pool, i) if (cl.mac_pool or mac_pool) else ""
    return (f'    <cluster href="{API}/clusters/{cl.id}" id="{cl.id}">\n'
            f"{i}<name>{escape(cl.name)}</name>\n{i}<description></description>\n{bios}"
            f"{i}<cpu>\n{i}    <architecture>x86_64</architecture>\n"
            f"{i}    <type>Intel Cascadelake Server Family</type>\n{i}</cpu>\n"
            f"{_version(cl.version or cluster_version, i)}"
            + _ref("data_center", "datacenters", cl.datacenter.id, i) + pool + "    </cluster>\n")


def mac_pool_xml(pool: SynthMacPool) -> str:
    i = "        "
    ranges = "".join(f"{i}    <range>\n{i}        <from>{a}</from>\n{i}        <to>{b}</to>\n"
                     f"{i}    </range>\n" for a, b in pool.ranges)
    return (f'    <mac_pool href="{API}/macpools/{pool.id}" id="{pool.id}">\n'
            f"{i}<name>{escape(pool.name)}</name>\n{i}<description></description>\n"
            f"{i}<allow_duplicates>{str(pool.allow_duplicates).lower()}</allow_duplicates>\n"
            f"{i}<default_pool>{str(pool.default_pool).lower()}</default_pool>\n"
            f"{i}<ranges>\n{ranges}{i}</ranges>\n    </mac_pool>\n")


def cluster_level_xml(level: str) -> str:
    """One ``GET /clusterlevels`` entry: id "major.minor" (BackendClusterLevelsResource)."""
    return (f'    <cluster_level href="{API}/clusterlevels/{level}" id="{level}">\n'
            f'        <link href="{API}/clusterlevels/{level}/clusterfeatures" '
            f'rel="clusterfeatures"/>\n    </cluster_level>\n')


def network_xml(net: SynthNetwork) -> str:
    i = "        "
    usages = f"{i}<usages>\n{i}    <usage>vm</usage>\n{i}</usages>\n" if net.vm else f"{i}<usages/>\n"
    return (f'    <network href="{API}/networks/{net.id}" id="{net.id}">\n'
            f"{i}<name>{escape(net.name)}</name>\n{i}<description></description>\n"
            f"{i}<mtu>0</mtu>\n{i}<required>true</required>\n{i}<stp>false</stp>\n{usages}"
            + _ref("data_center", "datacenters", net.datacenter.id, i) + "    </network>\n")


def vnic_profile_xml(net: SynthNetwork, name: str, profile_id: str) -> str:
    i = "        "
    return (f'    <vnic_profile href="{API}/vnicprofiles/{profile_id}" id="{profile_id}">\n'
            f"{i}<name>{escape(name)}</name>\n{i}<pass_through>\n{i}    <mode>disabled</mode>\n"
            f"{i}</pass_through>\n{i}<port_mirroring>false</port_mirroring>\n"
            + _ref("network", "networks", net.id, i) + "    </vnic_profile>\n")


def storage_domain_xml(sd: SynthStorageDomain) -> str:
    i, dc = "        ", sd.datacenter.id
    return (f'    <storage_domain href="{API}/datacenters/{dc}/storagedomains/{sd.id}" '
            f'id="{sd.id}">\n{i}<name>{escape(sd.name)}</name>\n{i}<description></description>\n'
            f"{i}<available>1073741824000</available>\n{i}<committed>214748364800</committed>\n"
            f"{i}<master>{str(sd.master).lower()}</master>\n{i}<status>{sd.status}</status>\n"
            f"{i}<storage>\n{i}    <address>nfs.example.com</address>\n"
            f"{i}    <path>/exports/{escape(sd.name)}</path>\n"
            f"{i}    <type>nfs</type>\n{i}</storage>\n"
            f"{i}<storage_format>v5</storage_format>\n{i}<type>{sd.type}</type>\n"
            f"{i}<used>107374182400</used>\n" + _ref("data_center", "datacenters", dc, i)
            + f"{i}<data_centers>\n" + _ref("data_center", "datacenters", dc, i + "    ")
            + f"{i}</data_centers>\n    </storage_domain>\n")


def vm_xml(vm: SynthVm, *, with_ovf: bool = True, indent: str = "    ") -> str:
    """One ``<vm>`` as the engine lists it; ``with_ovf`` adds ``initialization/configuration``."""
    i = indent + "    "
    sockets, cores = (vm.cpus // 2, 2) if vm.cpus >= 4 and vm.cpus % 2 == 0 else (vm.cpus, 1)
    init = ""
    if with_ovf:
        init = (f"{i}<initialization>\n{i}    <configuration>\n"
                f"{i}        <data>{escape(vm.ovf)}</data>\n{i}        <type>ovf</type>\n"
                f"{i}    </configuration>\n{i}</initialization>\n")
    return (f'{indent}<vm href="{API}/vms/{vm.id}" id="{vm.id}">\n'
            f"{i}<name>{escape(vm.name)}</name>\n{i}<description>{escape(vm.description)}"
            f"</description>\n{i}<comment></comment>\n"
            f'{i}<link href="{API}/vms/{vm.id}/diskattachments" rel="diskattachments"/>\n'
            f'{i}<link href="{API}/vms/{vm.id}/nics" rel="nics"/>\n'
            f"{i}<cpu>\n{i}    <architecture>x86_64</architecture>\n{i}    <topology>\n"
            f"{i}        <cores>{cores}</cores>\n{i}        <sockets>{sockets}</sockets>\n"
            f"{i}        <threads>1</threads>\n{i}    </topology>\n{i}</cpu>\n"
            f"{i}<delete_protected>false</delete_protected>\n{init}"
            f"{i}<memory>{vm.memory_mb * 1024 * 1024}</memory>\n{i}<origin>ovirt</origin>\n"
            f"{i}<os>\n{i}    <type>{escape(vm.os)}</type>\n{i}</os>\n"
            f"{i}<stateless>false</stateless>\n{i}<status>{vm.status}</status>\n"
            f"{i}<type>{'desktop' if _is_desktop(vm.os) else 'server'}</type>\n"
            + _ref("cluster", "clusters", vm.cluster.id, i)
            + _ref("original_template", "templates", ZERO, i)
            + _ref("template", "templates", ZERO, i) + f"{indent}</vm>\n")


def _ovf_disks(ovf: str) -> List[Dict[str, str]]:
    """The image disks an OVF of :func:`make_ovf` names (our own text: a plain parse).

    A VM given an OVF that does not parse (tests of broken OVFs) has no disks here.
    """
    try:
        root = ElementTree.fromstring(ovf.encode("utf-8"))
    except ElementTree.ParseError:
        return []
    attr = "{%s}" % OVF_NS
    storage = {item.findtext("{%s}HostResource" % RASD_NS) or "": item.findtext(
        "{%s}StorageId" % RASD_NS) or "" for item in root.iter("Item")}
    return [{k: disk.get(attr + k, "") for k in ("fileRef", "diskId", "size", "actual_size",
                                                  "volume-format", "volume-type", "disk-alias")}
            | {"storage_domain": storage.get(disk.get(attr + "fileRef") or "", "")}
            for disk in root.iter("Disk")]


def _ovf_nics(ovf: str) -> List[Dict[str, str]]:
    """The NICs an OVF names: name, network (rasd:Connection), profile (OtherResourceType)."""
    try:
        root = ElementTree.fromstring(ovf.encode("utf-8"))
    except ElementTree.ParseError:
        return []
    rasd = "{%s}" % RASD_NS
    return [{"name": item.findtext(rasd + "Name") or item.findtext(rasd + "ElementName") or "",
             "network": item.findtext(rasd + "Connection") or "",
             "profile": item.findtext(rasd + "OtherResourceType") or ""}
            for item in root.iter("Item") if item.findtext(rasd + "ResourceType") == "10"]


def _ovf_nic_macs(ovf: str) -> List[Tuple[Dict[str, str], str]]:
    try:
        root = ElementTree.fromstring(ovf.encode("utf-8"))
    except ElementTree.ParseError:
        return []
    rasd = "{%s}" % RASD_NS
    items = [i for i in root.iter("Item") if i.findtext(rasd + "ResourceType") == "10"]
    return [(nic, item.findtext(rasd + "MACAddress") or "")
            for nic, item in zip(_ovf_nics(ovf), items)]


def _disk_xml(disk_id: str, image_id: str, sd_id: str, *, alias: str, description: str = "",
              content_type: str = "data", size: int, actual: int, fmt: str = "raw",
              sparse: bool = False, shareable: bool = False) -> str:
    i = "        "
    return (f'    <disk href="{API}/disks/{disk_id}" id="{disk_id}">\n'
            f"{i}<name>{escape(alias)}</name>\n{i}<description>{escape(description)}"
            f"</description>\n{i}<actual_size>{actual}</actual_size>\n"
            f"{i}<alias>{escape(alias)}</alias>\n{i}<backup>none</backup>\n"
            f"{i}<content_type>{content_type}</content_type>\n{i}<format>{fmt}</format>\n"
            f"{i}<image_id>{image_id}</image_id>\n{i}<propagate_errors>false</propagate_errors>\n"
            f"{i}<provisioned_size>{size}</provisioned_size>\n"
            f"{i}<shareable>{str(shareable).lower()}</shareable>\n"
            f"{i}<sparse>{str(sparse).lower()}</sparse>\n{i}<status>ok</status>\n"
            f"{i}<storage_type>image</storage_type>\n{i}<wipe_after_delete>false"
            f"</wipe_after_delete>\n{i}<storage_domains>\n"
            + _ref("storage_domain", "storagedomains", sd_id, i + "    ")
            + f"{i}</storage_domains>\n    </disk>\n")


def ovf_store_disk_ids(sd: SynthStorageDomain, seed: int = 0) -> List[Tuple[str, str]]:
    """(disk id, image id) of a domain's OVF_STORE disks; from the domain id, so adding
    them never shifts the ids a :class:`SyntheticEngine` hands out."""
    rng = random.Random(f"{seed}:ovf_store:{sd.id}")
    return [(_uuid(rng), _uuid(rng)) for _ in range(OVF_STORE_COUNT)]


def storage_disks_xml(sd: SynthStorageDomain, vms: Iterable[SynthVm], seed: int = 0) -> str:
    """``GET /storagedomains/{id}/disks``: the domain's OVF_STORE disks, then VM disks.

    As a real engine (DiskMapper; CreateOvfVolumeForStorageDomainCommand and
    registerAllOvfDisks set disk_description to the label): an OVF_STORE disk is alias and
    description ``OVF_STORE``, content_type ``ovf_store``, shareable. The JSON with
    "Last Updated" that ovirt-api.md describes is the *volume* description on storage
    (SetVolumeDescription); REST never shows it. What a write changes here is the size on
    file domains (``ovf_store_size``: the tar's bytes instead of the new volume's 128 MiB).
    """
    size = sd.ovf_store_size or OVF_STORE_SIZE
    out = [_disk_xml(disk_id, image_id, sd.id, alias="OVF_STORE", description="OVF_STORE",
                     content_type="ovf_store", size=size, actual=size, shareable=True)
           for disk_id, image_id in ovf_store_disk_ids(sd, seed)]
    for vm in vms:
        for d in _ovf_disks(vm.ovf) if vm.ovf else ():
            if d["storage_domain"] != sd.id:
                continue
            disk_id, image_id = d["fileRef"].split("/")
            out.append(_disk_xml(disk_id, image_id, sd.id, alias=d["disk-alias"],
                                 size=int(d["size"]) * 1024 ** 3,
                                 actual=int(d["actual_size"]) * 1024 ** 3,
                                 fmt="cow" if d["volume-format"] == "COW" else "raw",
                                 sparse=d["volume-type"] == "Sparse"))
    return _collection("disks", out)


def unregistered_xml(entity: SynthUnregistered) -> str:
    """One entity of ``GET /storagedomains/{id}/vms|templates?unregistered=true``: parsed by
    the engine from the domain's OVF_STORE (GetUnregisteredVms/…VmTemplates), the domain as
    parent (BackendStorageDomainVmsResource.addParents)."""
    i, sd = "        ", entity.storage_domain.id
    tag, coll = ("vm", "vms") if entity.kind == "vm" else ("template", "templates")
    return (f'    <{tag} href="{API}/storagedomains/{sd}/{coll}/{entity.id}" id="{entity.id}">\n'
            f"{i}<name>{escape(entity.name)}</name>\n"
            f"{i}<description>{escape(entity.description)}</description>\n"
            f"{i}<memory>{entity.memory_mb * 1024 * 1024}</memory>\n"
            f"{i}<os>\n{i}    <type>{escape(entity.os)}</type>\n{i}</os>\n"
            f"{i}<status>{'down' if entity.kind == 'vm' else 'ok'}</status>\n"
            f"{i}<type>{'desktop' if _is_desktop(entity.os) else 'server'}</type>\n"
            + _ref("storage_domain", "storagedomains", sd, i) + f"    </{tag}>\n")


def action_xml(job_id: str = "", status: str = "complete", async_: Optional[bool] = None) -> str:
    """A completed action as REST answers it (``<status>complete</status>``, a job link)."""
    i = "    "
    return (f"{XML_DECL}<action>\n"
            + (f"{i}<async>{str(async_).lower()}</async>\n" if async_ is not None else "")
            + (_ref("job", "jobs", job_id, i) if job_id else "")
            + f"{i}<status>{status}</status>\n</action>\n")


def ovf_store_event_search(sd_name: str) -> str:
    """Search for a domain's USER_UPDATE_OVF_STORE events (newest first, the default sort)."""
    return f"type={OVF_STORE_UPDATED_EVENT} and event_storage={_search_value(sd_name)}"


def ovf_store_event_xml(sd: SynthStorageDomain, index: int, time: str,
                        user: str = "admin@internal-authz") -> str:
    i = "        "
    return (f'    <event href="{API}/events/{index}" id="{index}">\n'
            f"{i}<description>OVF_STORE for domain {escape(sd.name)} was updated by "
            f"{escape(user)}.</description>\n{i}<code>{OVF_STORE_UPDATED_EVENT}</code>\n"
            f"{i}<custom_id>-1</custom_id>\n{i}<flood_rate>30</flood_rate>\n"
            f"{i}<index>{index}</index>\n{i}<origin>oVirt</origin>\n"
            f"{i}<severity>normal</severity>\n{i}<time>{time}</time>\n"
            + _ref("data_center", "datacenters", sd.datacenter.id, i)
            + _ref("storage_domain", "storagedomains", sd.id, i) + "    </event>\n")


# ------------------------------------------------------------------------------------
# The audit log (GET /events) and the API root (GET /ovirt-engine/api)
# ------------------------------------------------------------------------------------
FIRST_EVENT = 1001                                # the first index a SyntheticEngine logs
#: Descriptions of the events the mutations log (AuditLogMessages.properties, shortened).
EVENT_TEXTS = {
    32: "VM {name} started on Host host1", 33: "VM {name} powered off by admin@internal-authz.",
    34: "VM {name} was created by admin@internal-authz.",
    35: "VM {name} configuration was updated by admin@internal-authz.",
    45: "Snapshot 'backup' creation for VM '{name}' was initiated by admin@internal-authz.",
    61: "VM {name} is down.", 68: "Snapshot 'backup' creation for VM '{name}' has been completed.",
    88: "VM {name} {name}_Disk1 disk was updated by admin@internal-authz.",
    113: "VM {name} was successfully removed.", 153: "VM {name} was started by admin@internal-authz.",
    174: "VM {name} has been successfully imported from the given configuration.",
    377: "Size of the disk '{name}_Disk1' was successfully updated to 40 GB by admin@internal-authz.",
    934: "Interface nic1 (VirtIO) was updated for VM {name}. ",
    2016: "Disk {name}_data was successfully attached to VM {name} by admin@internal-authz.",
    30: "User admin@internal-authz connecting from '10.0.0.1' using session 'x' logged in.",
}


@dataclass
class SynthEvent:
    """One row of the audit log: ``audit_log_id`` (REST ``id`` and ``index``), ``log_type``
    (``code``), the time, the VM (``vm_id``) and the rest of what REST shows."""

    index: int
    code: int
    time: _dt.datetime
    description: str
    severity: str = "normal"                # normal, warning, error, alert
    vm_id: str = ""
    template_id: str = ""
    datacenter_id: str = ""
    correlation_id: str = ""
    origin: str = "oVirt"
    custom_id: int = -1
    deleted: bool = False                   # dismissed: gone from the feed


def _time(when: _dt.datetime) -> str:
    return when.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000+00:00")


def event_xml(e: SynthEvent) -> str:
    """One ``<event>`` as EventMapper writes it: id and index are the audit_log_id, the
    VM/template/data center as links, correlation_id only when there is one."""
    i = "        "
    links = ""
    if e.template_id:
        links += _ref("template", "templates", e.template_id, i)
    if e.vm_id:
        links += _ref("vm", "vms", e.vm_id, i)
    if e.datacenter_id:
        links += _ref("data_center", "datacenters", e.datacenter_id, i)
    corr = f"{i}<correlation_id>{escape(e.correlation_id)}</correlation_id>\n" \
        if e.correlation_id else ""
    return (f'    <event href="{API}/events/{e.index}" id="{e.index}">\n'
            f"{i}<description>{escape(e.description)}</description>\n{i}<code>{e.code}</code>\n"
            f"{corr}{i}<custom_id>{e.custom_id}</custom_id>\n{i}<flood_rate>30</flood_rate>\n"
            f"{i}<index>{e.index}</index>\n{i}<origin>{escape(e.origin)}</origin>\n"
            f"{i}<severity>{e.severity}</severity>\n{i}<time>{_time(e.time)}</time>\n"
            f"{links}    </event>\n")


def _collection(tag: str, elements: Iterable[str]) -> str:
    body = "".join(elements)
    return f"{XML_DECL}<{tag}>\n{body}</{tag}>\n" if body else f"{XML_DECL}<{tag}/>\n"


# ------------------------------------------------------------------------------------
# A whole engine
# ------------------------------------------------------------------------------------
class SyntheticEngine:
    """Data centers → clusters → storage domains, VMs with OVFs, and extra answers.

    Ids come from a ``random.Random(seed)``: the same calls in the same order give the
    same ids, so cassettes are reproducible. Pass ``id=`` to fix one explicitly.
    """

    def __init__(self, seed: int = 0, *, cluster_version: str = "4.7",
                 export_date: str = "2026/11/26 07:45:00"):
        self.seed, self.cluster_version, self.export_date = seed, cluster_version, export_date
        self._rng = random.Random(seed)
        self.datacenters: List[SynthDataCenter] = []
        self.clusters: List[SynthCluster] = []
        self.storage_domains: List[SynthStorageDomain] = []
        self.vms: List[SynthVm] = []
        self.unregistered: List[SynthUnregistered] = []
        self._renames: List[Tuple[SynthUnregistered, str]] = []
        self._extra: list = []            # (interaction, times | None | "append")
        self.api_filtered = False         # GET /api answered without the summary
        #: Answer pages of every size that divides the page size too (``max=50``, ``25``,
        #: ... ``1``), as an engine does: what a page read again in smaller pages asks.
        #: Off by default (it multiplies the cassette by the number of divisors).
        self.answers_smaller_pages = False
        self.mac_pools: List[SynthMacPool] = []
        self.networks: List[SynthNetwork] = []
        self.restores: List[SynthRestore] = []
        self.disks: Dict[str, str] = {}   # disk id -> alias: disks the engine has besides
                                          # those of its VMs (floating, registered, ...)
        #: ``GET /clusterlevels``: SupportedClusterLevels of a current engine (cfg L1157);
        #: an engine before 4.5.7 has no 4.8.
        self.cluster_levels: Tuple[str, ...] = ("4.2", "4.3", "4.4", "4.5", "4.6", "4.7", "4.8")
        self._invalid_interfaces_logged = False
        # The audit log and the engine's clock (see "The events feed" below).
        self.now = _dt.datetime(2026, 11, 26, 7, 45, tzinfo=_dt.timezone.utc)
        self.events: List[SynthEvent] = []
        self.removed: List[SynthVm] = []  # removed VMs: GET /vms/{id} answers 404
        self.next_event = FIRST_EVENT

    def new_id(self) -> str:
        return _uuid(self._rng)

    def _find(self, items, key):
        if not isinstance(key, str):
            return key
        for item in items:
            if key in (item.name, item.id):
                return item
        raise KeyError(key)

    # -- building ----------------------------------------------------------------------
    def add_datacenter(self, name: str, *, id: Optional[str] = None, description: str = "",
                       status: str = "up") -> SynthDataCenter:
        dc = SynthDataCenter(id or self.new_id(), name, description, status)
        self.datacenters.append(dc)
        return dc

    def add_cluster(self, name: str, datacenter, *, id: Optional[str] = None,
                    bios_type: Optional[str] = "q35_sea_bios", version: str = "",
                    mac_pool=None) -> SynthCluster:
        """A cluster; ``bios_type=None`` is a new cluster no host was activated in yet
        (REST omits the element; every import into it fails: CLUSTER_BIOS_TYPE_NOT_SET),
        ``version`` its compatibility level ("" : the engine's), ``mac_pool`` a pool of
        :meth:`add_mac_pool` (default: the engine's default pool)."""
        pool = self._find(self.mac_pools, mac_pool).id if mac_pool is not None else ""
        cl = SynthCluster(id or self.new_id(), name, self._find(self.datacenters, datacenter),
                          bios_type, version, pool)
        self.clusters.append(cl)
        return cl

    def default_mac_pool(self) -> SynthMacPool:
        """The pool engine-setup creates: one range ``56:6f:XX:YY:00:00-…:ff:ff`` of 65,536
        addresses, XX and YY random (setup/…/network/macpools.py L61-103; engine-facts B5)."""
        for pool in self.mac_pools:
            if pool.default_pool:
                return pool
        rng = random.Random(f"{self.seed}:macpool")
        prefix = f"56:6f:{rng.randrange(256):02x}:{rng.randrange(256):02x}"
        pool = SynthMacPool(_stable_id(self.seed, "macpool", "Default"), "Default",
                            [(f"{prefix}:00:00", f"{prefix}:ff:ff")], default_pool=True)
        self.mac_pools.insert(0, pool)
        return pool

    def add_mac_pool(self, name: str, ranges: Sequence[Tuple[str, str]], *,
                     allow_duplicates: bool = False) -> SynthMacPool:
        self.default_mac_pool()
        pool = SynthMacPool(_stable_id(self.seed, "macpool", name), name, list(ranges),
                            allow_duplicates)
        self.mac_pools.append(pool)
        return pool

    def add_network(self, name: str, datacenter, *, profiles: Optional[Sequence[str]] = None,
                    vm: bool = True) -> SynthNetwork:
        """A logical network of a data center with its vNIC profiles (default: one named
        like the network, as the engine creates it)."""
        dc = self._find(self.datacenters, datacenter)
        net = next((n for n in self.networks if n.name == name and n.datacenter is dc), None)
        if net is None:
            net = SynthNetwork(_stable_id(self.seed, "network", dc.id, name), name, dc, {}, vm)
            self.networks.append(net)
        for profile in (profiles if profiles is not None else [name]):
            net.profiles.setdefault(profile, _stable_id(self.seed, "profile", net.id, profile))
        return net

    def add_disk(self, disk_id: str, alias: str = "") -> None:
        """A disk the engine has besides its VMs' (e.g. registered from a domain)."""
        self.disks[disk_id] = alias

    def add_storage_domain(self, name: str, datacenter, *, master: bool = False,
                           id: Optional[str] = None, status: str = "active") -> SynthStorageDomain:
        sd = SynthStorageDomain(id or self.new_id(), name,
                                self._find(self.datacenters, datacenter), master, status=status)
        self.storage_domains.append(sd)
        return sd

    def add_vm(self, name: str, cluster, *, os: str = "rhel_8x64", memory_mb: int = 4096,
               cpus: int = 2, disks: Optional[Sequence[SynthDisk]] = None,
               nics: Optional[Sequence[SynthNic]] = None, description: str = "",
               id: Optional[str] = None, status: str = "down", ovf_missing_in_list: bool = False,
               ovf_missing_always: bool = False, **ovf_options) -> SynthVm:
        """Add a VM; ``disks`` default to one boot disk on the data center's master domain.

        ``ovf_missing_in_list`` makes the VM locked (``image_locked``): the list leaves its
        OVF out and only ``GET /vms/{id}?all_content=true`` has it; ``ovf_missing_always``
        leaves it out of both. Other keywords go to :func:`make_ovf` (``bios_type``,
        ``tpm``, ``host_devices``, ``custom_version``). The networks and vNIC profiles its
        NICs use are added to its data center (a NIC can only use what exists).
        """
        cl = self._find(self.clusters, cluster)
        vm_id = id or self.new_id()
        domains = [sd for sd in self.storage_domains if sd.datacenter is cl.datacenter]
        master = next((sd.id for sd in domains if sd.master), domains[0].id if domains else ZERO)
        if disks is None:
            disks = [SynthDisk(f"{name}_Disk1", boot=True)]
        disks = [replace(d, storage_domain=self._find(domains, d.storage_domain).id
                         if d.storage_domain else master) for d in disks]
        nics = [SynthNic()] if nics is None else list(nics)
        for nic in nics:
            self.add_network(nic.network, cl.datacenter, profiles=[nic.vnic_profile or nic.network])
        ovf = make_ovf(vm_id, name, cluster=cl.name, os=os, memory_mb=memory_mb, cpus=cpus,
                       disks=disks, nics=nics, seed=self.seed, description=description,
                       datacenter_id=cl.datacenter.id, cluster_version=self.cluster_version,
                       export_date=self.export_date, **ovf_options)
        vm = SynthVm(vm_id, name, cl, ovf, os, memory_mb, cpus, description,
                     "image_locked" if ovf_missing_in_list else status,
                     ovf_missing_in_list, ovf_missing_always)
        self.vms.append(vm)
        return vm

    def add_restore(self, name: str, status: int = 201, *, cluster=None,
                    vm_id: Optional[str] = None, conflict: str = "id", of=None,
                    nics: Optional[Sequence[Tuple]] = None, attach: Optional[Sequence[str]] = None,
                    warnings: Sequence[Tuple[int, str]] = (), locked_polls: int = 0,
                    refusals: Sequence[Union[str, Tuple[int, str]]] = ()) -> SynthRestore:
        """Answer the ``POST /vms`` that asks for a VM named ``name`` (whatever OVF it
        carries: matched by ``<name>``, so parallel restores get their own answers), as
        ImportVmFromConfiguration does (engine-facts B2-B4):

        * ``refusals``: answered first, once each: a transient lock refusal (a detail such
          as :data:`LOCKED`, :data:`BEING_IMPORTED`, :data:`NAME_IN_USE`, answered 409) or
          ``(status, detail)`` (503 from the proxy, ...);
        * 201 (or 202 with ``locked_polls``: the ``<vm>`` still ``image_locked`` with a
          ``creation_status`` link, no Location; ``GET /vms/{id}`` then answers
          ``image_locked`` ``locked_polls`` times and ``down`` after) creating a VM in
          ``cluster``; or a 409 (``conflict``: ``"id"`` or ``"name"``);
        * the created VM as ``GET /vms/{id}?follow=disk_attachments,nics`` shows it. Its
          NICs are the received OVF's (``nics``: (name, network, profile[, plugged]); by
          default those of ``of``, the VM whose OVF is restored, itself by default the VM
          named ``name``): a NIC whose network is missing in the cluster's data center, is
          not a VM network or has no profile is left without one (ImportVmCommandBase
          L677-702). Its disks: every disk the OVF names that the engine has (its VMs'
          disks and :meth:`add_disk`; ``attach`` overrides) is attached;
        * the audit-log entries the import writes (``logged_events``, answered by the
          replay's engine state): 174 when the OVF has disks and all were attached, 175
          naming the ones that failed, ``warnings`` ((code, text): 1198, 1229, ...) all with
          the request's correlation id and the VM; 9600 for NICs left without a network,
          without VM or correlation id and once per engine (flood-limited, 60 s
          engine-wide: EventFloodRegulator).

        The created VM keeps ``of``'s id when it has ``of``'s name (a restore that keeps
        ids), else gets a new one (``vm_id`` chooses). Restores are answered in the order
        they were added for each name.
        """
        cl = self._find(self.clusters, cluster) if cluster else self.clusters[0]
        body = f"<vm><name>{escape(name)}</name></vm>"
        for refusal in refusals:
            code, detail = refusal if isinstance(refusal, tuple) else (409, refusal)
            self._extra.append((self._post_vm(code, fault_xml(detail), body), "append"))
        if status not in (200, 201, 202):
            item = self._post_vm(status, fault_xml(CONFLICT_NAME if conflict == "name"
                                                   else CONFLICT_ID), body)
            self._extra.append((item, "append"))
            restore = SynthRestore(name, "", cl, status, [], [], [], [])
            self.restores.append(restore)
            return restore
        source = self._find(self.vms, of) if of is not None else next(
            (vm for vm in self.vms if vm.name == name), None)
        ovf = source.ovf if source is not None else ""
        received = [tuple(n) + (True,) * (4 - len(n)) for n in nics] if nics is not None \
            else [(n["name"], n["network"], n["profile"], True) for n in _ovf_nics(ovf)]
        disks = [(d["fileRef"].partition("/")[0] or d["diskId"], d["disk-alias"])
                 for d in _ovf_disks(ovf)]
        present = self._disk_ids()
        attached = list(attach) if attach is not None else [d for d, _ in disks if d in present]
        # without regenerate_ids the engine keeps the OVF's id: a restore under the source
        # VM's own name is taken for one (give vm_id= to say otherwise)
        new_id = vm_id or (source.id if source is not None and source.name == name
                           else self.new_id())
        events = self._import_events(name, new_id, cl, received, disks, attached, warnings)
        restore = SynthRestore(name, new_id, cl, 202 if locked_polls else 201,
                               [tuple(n) for n in received], disks, attached, events)
        self.restores.append(restore)
        accepted = bool(locked_polls)
        answer = interaction("POST", f"{API}/vms", status=202 if accepted else 201,
                             body=XML_DECL + self._created_xml(restore, status="image_locked"
                                                               if accepted else "down",
                                                               accepted=accepted),
                             request_body=body)
        answer["request"]["headers"] = {SUBSET_HEADER: [SUBSET]}
        answer["response"]["logged_events"] = events
        self._extra.append((answer, "append"))
        final = XML_DECL + self._created_xml(restore, follow=True)
        self._extra.append((interaction("GET", with_query(f"{API}/vms/{new_id}",
                                                          follow="disk_attachments,nics"),
                                        body=final), "append"))
        for _ in range(locked_polls):
            self._extra.append((interaction("GET", f"{API}/vms/{new_id}", body=XML_DECL
                                            + self._created_xml(restore, status="image_locked")),
                                "append"))
        if accepted:
            self._extra.append((interaction("GET", f"{API}/vms/{new_id}", body=XML_DECL
                                            + self._created_xml(restore)), "append"))
        return restore

    def _post_vm(self, status: int, body: str, request_body: str) -> dict:
        item = interaction("POST", f"{API}/vms", status=status, body=body,
                           request_body=request_body)
        item["request"]["headers"] = {SUBSET_HEADER: [SUBSET]}
        return item

    def _disk_ids(self) -> set:
        """The disks the engine has: its VMs' and :meth:`add_disk`'s (computed once per
        inventory: every restore asks)."""
        key = (tuple(self.disks), tuple(vm.ovf for vm in self.vms))
        cached = getattr(self, "_disk_ids_cache", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        ids = set(self.disks)
        for vm in self.vms:
            ids.update(d["fileRef"].partition("/")[0] for d in _ovf_disks(vm.ovf)
                       if vm.ovf and d["fileRef"])
        self._disk_ids_cache = (key, ids)
        return ids

    def _profile(self, cluster: SynthCluster, network: str, profile: str) -> str:
        """The vNIC profile id the engine gives a NIC, or "" (left without a network)."""
        net = next((n for n in self.networks if n.name == network
                    and n.datacenter is cluster.datacenter), None)
        if net is None or not net.vm or not net.profiles:
            return ""
        return net.profiles.get(profile) or next(iter(net.profiles.values()))

    def _import_events(self, name, vm_id, cluster, nics, disks, attached, warnings) -> List[dict]:
        events = []
        for code, text in warnings:
            events.append({"code": code, "severity": "warning", "description": text,
                           "vm_id": vm_id, "vm_name": name, "correlated": True})
        unset = [n for n in nics if n[1] and not self._profile(cluster, n[1], n[2])]
        if unset and not self._invalid_interfaces_logged:
            self._invalid_interfaces_logged = True     # flood-limited: once a minute
            events.append({"code": 9600, "severity": "warning", "correlated": False,
                           "description": f"While importing VM {name}, the Network/s "
                           f"{', '.join(dict.fromkeys(n[1] for n in unset))} were found to be "
                           "Non-VM Networks or do not exist in Cluster or are missing a "
                           "suitable VM network interface profile. Network Name was not set "
                           f"in the Interface/s {', '.join(n[0] for n in unset)}."})
        failed = [alias for disk_id, alias in disks if disk_id not in attached]
        if failed:
            events.append({"code": 175, "severity": "warning", "vm_id": vm_id,
                           "vm_name": name, "correlated": True,
                           "description": f"VM {name} has been imported from the given "
                           "configuration but the following disk(s) failed to attach: "
                           f"{', '.join(failed)}."})
        elif disks:
            events.append({"code": 174, "severity": "normal", "vm_id": vm_id, "vm_name": name,
                           "correlated": True, "description": f"VM {name} has been "
                           "successfully imported from the given configuration."})
        return events

    def _created_xml(self, restore: SynthRestore, *, status: str = "down",
                     accepted: bool = False, follow: bool = False) -> str:
        vm = SynthVm(restore.id, restore.name, restore.cluster, "", status=status)
        text = vm_xml(vm, with_ovf=False, indent="")
        extra = ""
        if accepted:
            extra += (f'    <link href="{API}/vms/{restore.id}/creation_status/'
                      f'{_stable_id(restore.id, "task")}" rel="creation_status"/>\n')
        if follow:
            i = "        "
            atts = "".join(
                f'{i}<disk_attachment href="{API}/vms/{restore.id}/diskattachments/{d}" '
                f'id="{d}">\n{i}    <active>true</active>\n{i}    <bootable>{str(n == 0).lower()}'
                f"</bootable>\n{i}    <interface>virtio_scsi</interface>\n"
                f'{i}    <disk href="{API}/disks/{d}" id="{d}"/>\n{i}</disk_attachment>\n'
                for n, d in enumerate(restore.attached))
            extra += (f"    <disk_attachments>\n{atts}    </disk_attachments>\n" if atts
                      else "    <disk_attachments/>\n")
            pool = self._pool_of(restore.cluster)
            base = _mac_int(pool.ranges[0][0]) + 0x100 * (1 + self.restores.index(restore))
            nic_xml = ""
            for n, (nic_name, network, profile, plugged) in enumerate(restore.nics):
                nic_id = _stable_id(restore.id, "nic", nic_name)
                profile_id = self._profile(restore.cluster, network, profile)
                mac = "%012x" % (base + n)
                mac = ":".join(mac[k:k + 2] for k in range(0, 12, 2))
                nic_xml += (f'{i}<nic href="{API}/vms/{restore.id}/nics/{nic_id}" id="{nic_id}">\n'
                            f"{i}    <name>{escape(nic_name)}</name>\n"
                            f"{i}    <interface>virtio</interface>\n"
                            f"{i}    <linked>{str(plugged).lower()}</linked>\n"
                            f"{i}    <mac>\n{i}        <address>{mac}</address>\n{i}    </mac>\n"
                            f"{i}    <plugged>{str(plugged).lower()}</plugged>\n"
                            + (_ref("vnic_profile", "vnicprofiles", profile_id, i + "    ")
                               if profile_id else "")
                            + f"{i}</nic>\n")
            extra += f"    <nics>\n{nic_xml}    </nics>\n" if nic_xml else "    <nics/>\n"
        return text.replace("</vm>\n", extra + "</vm>\n") if extra else text

    def _pool_of(self, cluster: SynthCluster) -> SynthMacPool:
        default = self.default_mac_pool()
        return next((p for p in self.mac_pools if p.id == cluster.mac_pool), default)

    def add_unregistered(self, name: str, storage_domain, *, kind: str = "vm",
                         id: Optional[str] = None, description: str = "",
                         os: str = "rhel_8x64", memory_mb: int = 4096) -> SynthUnregistered:
        """A VM or template the domain's OVF_STORE brought (a domain attached from another
        engine): listed by ``GET /storagedomains/{sd}/vms|templates?unregistered=true``,
        registered by ``POST /storagedomains/{sd}/vms|templates/{id}/register`` (200)."""
        if kind not in ("vm", "template"):
            raise ValueError(f"kind must be 'vm' or 'template', not {kind!r}")
        entity = SynthUnregistered(id or self.new_id(), name,
                                   self._find(self.storage_domains, storage_domain), kind,
                                   description, os, memory_mb)
        self.unregistered.append(entity)
        return entity

    def add_rename(self, entity, name: str) -> dict:
        """Answer ``PUT /vms/{id}`` with body ``<vm><name>name</name></vm>`` (the rename
        after registering) with the VM under its new name. Only this name is answered."""
        if not isinstance(entity, SynthUnregistered):
            entity = next(e for e in self.unregistered if entity in (e.id, e.name))
        self._renames.append((entity, name))
        return self._rename_interaction(entity, name)

    def add_ovf_store_update(self, storage_domain, *, busy: int = 0,
                             busy_detail: str = OVF_STORE_BUSY,
                             written_at: Optional[str] = "2026-11-26T07:00:00.000+00:00",
                             size: int = 30720) -> SynthStorageDomain:
        """How the engine takes ``POST /storagedomains/{id}/updateovfstore`` for this domain.

        Every data domain answers it with 200 ``<action>`` (status complete, a job link),
        as REST does before the write itself has happened. ``busy`` answers 409
        ``busy_detail`` that many times first. ``written_at`` is the time of the
        USER_UPDATE_OVF_STORE event the engine logs once the OVF_STORE was written (None:
        it logs none); ``GET /events?search=<ovf_store_event_search(name)>&max=1`` answers
        no event the first time (before the update) and this event afterwards (without
        ``written_at``: never an event, as for every data domain). ``size`` is
        what the write leaves as the OVF_STORE disks' size (file domains).
        """
        sd = self._find(self.storage_domains, storage_domain)
        sd.ovf_store_event, sd.ovf_store_size = written_at or "", size
        if busy:
            self.add_error("POST", f"{API}/storagedomains/{sd.id}/updateovfstore", 409,
                           detail=busy_detail, times=busy)
        return sd

    def add_api_summary(self, *, filtered: bool = False) -> dict:
        """How the engine answers ``GET /ovirt-engine/api`` for this engine's user: with the
        ``summary`` (VM, host, storage domain and user counts, the engine's whole, as
        GetSystemStatisticsQuery counts them) for an admin user (the default), without it
        for a user session (``filtered=True``: rest/resource/BackendApiResource.java
        ``get``, BZ 1612124). Returns the interaction."""
        self.api_filtered = filtered
        return interaction("GET", API, body=self.api_root_xml())

    def change_after_page(self, page: int, *, remove: Iterable = (),
                          add: Iterable = ()) -> None:
        """VMs removed and added between the engine's answers to page ``page`` and to the next
        one (of the page size the cassette is written for): every later page is computed
        from the changed inventory with the engine's OFFSET semantics (page N = OFFSET
        (N-1)*max over the VMs it has *then*, in this engine's order). ``add`` names VMs
        made with :meth:`add_vm` (their place in :attr:`vms` is their place in the order).
        ``GET /vms`` (the ids list) answers the inventory of page 1 first, then the last
        one; ``GET /vms/{id}`` answers a removed VM with the engine's 404."""
        for vm in remove:
            self._find(self.vms, vm).removed_after_page = page
        for vm in add:
            self._find(self.vms, vm).added_after_page = page

    def _state(self, page: int) -> List[SynthVm]:
        """The VMs the engine has when it answers page ``page``."""
        return [vm for vm in self.vms if vm.added_after_page < page
                and (vm.removed_after_page is None or page <= vm.removed_after_page)]

    def _final(self) -> List[SynthVm]:
        return [vm for vm in self.vms if vm.removed_after_page is None]

    def add_html_error(self, method: str, path: str, status: int = 503, *,
                       body: Optional[str] = None, times: Optional[int] = 1) -> dict:
        """Answer ``method path`` with an HTML page of the web server in front of the
        engine (Apache's stock page: :data:`APACHE_503_HTML`, :data:`APACHE_404_HTML`), not
        the engine's XML or JSON. ``path`` may be an SSO path (``SSO_TOKEN_PATH``), the API
        root (``API``) or under it; ``times`` as for :meth:`add_error`."""
        if not path.startswith("/"):
            path = API + "/" + path
        html = body if body is not None else (APACHE_404_HTML if status == 404
                                              else APACHE_503_HTML)
        item = interaction(method, path, status=status, body=html, content_type=HTML_TYPE)
        self._extra.append((item, times if times is None else max(1, times)))
        return item

    def add_error(self, method: str, path: str, status: int, *,
                  detail: str = "Internal server error", reason: str = "Operation Failed",
                  times: Optional[int] = 1) -> dict:
        """Answer ``method path`` (``path`` may carry a query) with a fault.

        The fault is served ``times`` times *before* the regular answer of the same request
        (a transient error followed by success); ``times=None`` replaces the regular answer.
        """
        if not path.startswith("/"):
            path = API + "/" + path
        item = interaction(method, path, status=status, body=fault_xml(detail, reason))
        self._extra.append((item, times if times is None else max(1, times)))
        return item

    # -- output ------------------------------------------------------------------------
    def _vm_pages(self, vms: List[SynthVm], page_size: int, datacenter=None) -> List[dict]:
        """``GET /vms?all_content=true&max=S&search=[datacenter=DC ]page N`` for every N, and
        for every S dividing ``page_size`` when :attr:`answers_smaller_pages` is set.

        ``vms`` are the VMs in scope (this order is the engine's). Page N of size S is
        OFFSET (N-1)*S over the VMs the engine has when it answers the page of
        ``page_size`` that holds that offset (see :meth:`change_after_page`). The engine
        answers an empty list for every page past the end. The adapter asks for the page
        after a full one, and its workers read up to EMPTY_PAGES_AFTER pages ahead
        (capture.AHEAD), so that many empty pages follow the last one.
        """
        sizes = [page_size]
        if self.answers_smaller_pages:
            sizes += [d for d in range(page_size // 2, 0, -1) if page_size % d == 0]
        in_scope = {id(vm) for vm in vms}
        out = []
        for size in sizes:
            count = max(1, -(-len(vms) // size)) + (EMPTY_PAGES_AFTER if size == page_size else 2)
            for n in range(1, count + 1):
                offset = (n - 1) * size
                state = [vm for vm in self._state(offset // page_size + 1) if id(vm) in in_scope]
                chunk = state[offset:offset + size]
                search = page_search(n, datacenter.name if datacenter else None)
                body = _collection("vms", (vm_xml(vm, with_ovf=not (vm.ovf_missing_in_list
                                                                    or vm.ovf_missing_always))
                                           for vm in chunk))
                out.append(interaction("GET", with_query(f"{API}/vms", all_content="true",
                                                         max=str(size), search=search),
                                       body=body))
        return out

    def _id_lists(self, datacenter=None) -> List[dict]:
        """``GET /vms`` without ``all_content`` (``search=datacenter=DC`` for one data
        center): the inventory of page 1, then the last one when it changed."""
        def listing(vms: List[SynthVm]) -> dict:
            query = {"search": f"datacenter={_search_value(datacenter.name)}"} if datacenter else {}
            in_dc = [vm for vm in vms if datacenter is None or vm.cluster.datacenter is datacenter]
            return interaction("GET", with_query(f"{API}/vms", **query), body=_collection(
                "vms", (vm_xml(vm, with_ovf=False) for vm in in_dc)))

        first, last = self._state(1), self._final()
        out = [listing(first)] + ([listing(last)] if last != first else [])
        if datacenter is None:
            # The engine's every VM as it ends: the replay evaluates searches over it.
            out[-1]["response"]["complete_collection"] = True
        return out

    def api_root_xml(self) -> str:
        """``GET /ovirt-engine/api``: product information and, for an admin user, the
        summary (BackendApiResource; see :meth:`add_api_summary`)."""
        i = "    "
        vms = self._final()
        up = sum(1 for vm in vms if vm.status == "up")
        sds = len(self.storage_domains)
        summary = "" if self.api_filtered else (
            f"{i}<summary>\n{i}    <hosts><active>0</active><total>0</total></hosts>\n"
            f"{i}    <storage_domains><active>{sds}</active><total>{sds}</total>"
            f"</storage_domains>\n{i}    <users><active>1</active><total>1</total></users>\n"
            f"{i}    <vms>\n{i}        <active>{up}</active>\n"
            f"{i}        <total>{len(vms)}</total>\n{i}    </vms>\n{i}</summary>\n")
        return (f"{XML_DECL}<api>\n"
                + "".join(f'{i}<link href="{API}/{rel}" rel="{rel}"/>\n'
                          for rel in ("clusters", "datacenters", "events", "storagedomains",
                                      "vms"))
                + f"{i}<product_info>\n{i}    <name>oVirt Engine</name>\n"
                f"{i}    <vendor>ovirt.org</vendor>\n{i}    <version>\n"
                f"{i}        <build>6</build>\n{i}        <full_version>4.5.6-1.el9"
                f"</full_version>\n{i}        <major>4</major>\n{i}        <minor>5</minor>\n"
                f"{i}        <revision>0</revision>\n{i}    </version>\n{i}</product_info>\n"
                + summary + f"{i}<time>{_time(self.now)}</time>\n</api>\n")

    def interactions(self, page_size: int = 100, *, sso: bool = True) -> List[dict]:
        """Every interaction of this engine, in the order the adapter asks for them."""
        v = self.cluster_version
        out = sso_interactions() if sso else []
        out.append(interaction("GET", f"{API}/datacenters", body=_collection(
            "data_centers", (datacenter_xml(dc, v) for dc in self.datacenters))))
        pool = self.default_mac_pool()
        out.append(interaction("GET", f"{API}/clusters", body=_collection(
            "clusters", (cluster_xml(cl, v, pool.id) for cl in self.clusters))))
        for dc in self.datacenters:
            out.append(interaction("GET", f"{API}/datacenters/{dc.id}/storagedomains",
                                   body=_collection("storage_domains", (
                                       storage_domain_xml(sd) for sd in self.storage_domains
                                       if sd.datacenter is dc))))
        out += self._vm_pages(self.vms, page_size)
        for dc in self.datacenters:
            out += self._vm_pages([vm for vm in self.vms if vm.cluster.datacenter is dc],
                                  page_size, dc)
        out += self._id_lists()
        for dc in self.datacenters:
            out += self._id_lists(dc)
        for vm in self.vms:
            path = with_query(f"{API}/vms/{vm.id}", all_content="true")
            if vm.removed_after_page is not None:
                out.append(interaction("GET", path, status=404,
                                       body=fault_xml(NOT_FOUND_DETAIL.format(vm.id))))
                continue
            out.append(interaction("GET", path,
                                   body=XML_DECL + vm_xml(vm, with_ovf=not vm.ovf_missing_always,
                                                          indent="")))
        out += self._feed_interactions()
        out += self._msd_interactions()
        out += self._restore_interactions()
        for item, times in self._extra:
            out = self._insert(out, item, times)
        return out

    def _restore_interactions(self) -> List[dict]:
        """What a restore reads of the target (engine-facts B5): MAC pools, cluster levels,
        networks and vNIC profiles, and each cluster's VMs with their NICs (``GET
        /vms?follow=nics&search=cluster=NAME``: the MACs a pool has given out). The newest
        event (``GET /events?max=1``) is the audit log's (:meth:`log_event`), answered by
        the replay from the plain ``GET /events``."""
        out = [interaction("GET", f"{API}/macpools", body=_collection(
                   "mac_pools", (mac_pool_xml(p) for p in self.mac_pools))),
               interaction("GET", f"{API}/clusterlevels", body=_collection(
                   "cluster_levels", (cluster_level_xml(v) for v in self.cluster_levels))),
               interaction("GET", f"{API}/networks", body=_collection(
                   "networks", (network_xml(n) for n in self.networks))),
               interaction("GET", f"{API}/vnicprofiles", body=_collection(
                   "vnic_profiles", (vnic_profile_xml(n, name, pid) for n in self.networks
                                     for name, pid in n.profiles.items())))]
        for disk_id, alias in self.disks.items():
            out.append(interaction("GET", f"{API}/disks/{disk_id}", body=XML_DECL + _disk_xml(
                disk_id, _stable_id(disk_id, "image"), ZERO, alias=alias, size=20 * 1024 ** 3,
                actual=2 * 1024 ** 3).replace("\n    ", "\n").lstrip()))
        for cl in self.clusters:
            vms = [vm for vm in self.vms if vm.cluster is cl]
            out.append(interaction("GET", with_query(f"{API}/vms", follow="nics",
                                                     search=f"cluster={_search_value(cl.name)}"),
                                   body=_collection("vms", (self._vm_with_nics(vm) for vm in vms))))
        return out

    def _vm_with_nics(self, vm: SynthVm) -> str:
        text = vm_xml(vm, with_ovf=False)
        i = "            "
        nics = "".join(
            f'{i}<nic id="{_stable_id(vm.id, "nic", n["name"])}">\n{i}    <name>{escape(n["name"])}'
            f"</name>\n{i}    <mac>\n{i}        <address>{mac}</address>\n{i}    </mac>\n{i}</nic>\n"
            for n, mac in _ovf_nic_macs(vm.ovf))
        return text.replace("    </vm>\n", f"        <nics>\n{nics}        </nics>\n    </vm>\n") \
            if nics else text

    def _job(self, key: str) -> str:
        return _uuid(random.Random(f"{self.seed}:job:{key}"))

    def _msd_interactions(self) -> List[dict]:
        """What the ``msd`` provider asks of each data domain, and the registrations."""
        out = []
        for index, sd in enumerate(self.storage_domains, 1):
            if sd.type != "data":
                continue
            base = f"{API}/storagedomains/{sd.id}"
            out.append(interaction("POST", f"{base}/updateovfstore",
                                   body=action_xml(self._job(f"ovf:{sd.id}")),
                                   request_body=UPDATE_OVF_STORE_BODY))
            out.append(interaction("GET", f"{base}/disks",
                                   body=storage_disks_xml(sd, self.vms, self.seed)))
            for kind, coll in (("vm", "vms"), ("template", "templates")):
                out.append(interaction("GET", with_query(f"{base}/{coll}", unregistered="true"),
                                       body=_collection(coll, (
                                           unregistered_xml(e) for e in self.unregistered
                                           if e.storage_domain is sd and e.kind == kind))))
            events = with_query(f"{API}/events", max="1", search=ovf_store_event_search(sd.name))
            out.append(interaction("GET", events, body=_collection("events", ())))
            if sd.ovf_store_event:
                out.append(interaction("GET", events, body=_collection("events", [
                    ovf_store_event_xml(sd, 4000 + index, sd.ovf_store_event)])))
        for e in self.unregistered:
            coll = "vms" if e.kind == "vm" else "templates"
            out.append(interaction(
                "POST", f"{API}/storagedomains/{e.storage_domain.id}/{coll}/{e.id}/register",
                body=action_xml(self._job(f"register:{e.id}"),
                                async_=False if e.kind == "vm" else None)))
        out += [self._rename_interaction(e, name) for e, name in self._renames]
        return out

    def _rename_interaction(self, entity: SynthUnregistered, name: str) -> dict:
        dc = entity.storage_domain.datacenter
        cluster = next((c for c in self.clusters if c.datacenter is dc), None) \
            or SynthCluster(ZERO, "", dc)
        vm = SynthVm(entity.id, name, cluster, "", entity.os, entity.memory_mb,
                     description=entity.description)
        return interaction("PUT", f"{API}/vms/{entity.id}",
                           body=XML_DECL + vm_xml(vm, with_ovf=False, indent=""),
                           request_body=f"<vm>\n  <name>{escape(name)}</name>\n</vm>\n")

    @staticmethod
    def _insert(out: List[dict], item: dict, times) -> List[dict]:
        """Place an extra answer: restores at the end, faults before the regular answer."""
        def key(i):
            split = urlsplit(i["request"]["uri"])
            return i["request"]["method"], split.path, sorted(parse_qsl(split.query))

        regular = [n for n, i in enumerate(out)
                   if key(i) == key(item) and i["response"]["status"]["code"] < 400]
        if times == "append" or not regular:
            return out + [item]
        if times is None:                  # replace the regular answers
            return [item if n == regular[0] else i for n, i in enumerate(out)
                    if n == regular[0] or n not in regular]
        return out[:regular[0]] + [item] * times + out[regular[0]:]

    def write_cassette(self, path: Union[str, Path], *, page_size: int = 100,
                       sso: bool = True) -> Path:
        """Write :meth:`interactions` as a vcrpy cassette (YAML, or JSON for ``*.json``)."""
        path = Path(path)
        data = {"version": 1, "interactions": self.interactions(page_size, sso=sso)}
        if path.suffix.lower() == ".json":
            text = jsonserializer.serialize(data)
        else:
            text = ("# synthesized by scripts/make-cassettes from the oVirt API model "
                    "(see cassettes/README.md); not recorded from an engine\n"
                    + yamlserializer.serialize(data))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    # -- the events feed ---------------------------------------------------------------
    # The engine's audit log as REST shows it (engine-facts A2): ``GET /events`` lists the
    # events not dismissed, newest first (ORDER BY audit_log_id DESC); the replay server
    # answers ``from`` (strictly greater), ``max`` and ``search`` from that list with the
    # engine's semantics (testing.compose), so no request pattern is baked into a cassette.
    # ``GET /ovirt-engine/api`` gives the engine's clock and VM count (BackendApiResource:
    # ``time`` = now, ``summary`` from GetSystemStatistics). A removed VM answers 404.
    def tick(self, seconds: float = 60.0) -> _dt.datetime:
        """Advance the engine's clock (event times, the API root's ``time``)."""
        self.now += _dt.timedelta(seconds=seconds)
        return self.now

    def log_event(self, code: int, *, vm: Optional[SynthVm] = None, vm_id: str = "",
                  description: str = "", severity: str = "normal", template_id: str = "",
                  datacenter_id: str = "", correlation_id: str = "",
                  origin: str = "oVirt") -> SynthEvent:
        """Append one event to the audit log (the next index, the engine's clock)."""
        if vm is not None:
            vm_id = vm.id
        event = SynthEvent(self.next_event, code, self.now, description or EVENT_TEXTS.get(
            code, "event {code}").format(code=code, name=vm.name if vm else ""), severity,
            vm_id=vm_id, template_id=template_id, datacenter_id=datacenter_id,
            correlation_id=correlation_id, origin=origin)
        self.next_event += 1
        self.events.append(event)
        return event

    def _vm(self, vm) -> SynthVm:
        return vm if isinstance(vm, SynthVm) else self._find(self.vms, vm)

    @staticmethod
    def _bump(ovf: str) -> str:
        """``<Generation>`` + 1: what every engine command that touches the VM does
        (``incrementDbGeneration``; the OVF writes ``vm_static.db_generation``, A4)."""
        return re.sub(r"<Generation>(\d+)</Generation>",
                      lambda m: f"<Generation>{int(m.group(1)) + 1}</Generation>", ovf, count=1)

    #: What each kind of change logs (engine-facts A1): USER_UPDATE_VM, NIC update,
    #: disk update on a VM, snapshot create (start and end), disk attach, disk extend.
    CHANGE_EVENTS = {"update": (35,), "nic": (934,), "disk": (88,), "snapshot": (45, 68),
                     "attach": (2016,), "extend": (377,)}

    def change_vm(self, vm, kind: str = "update", *, log: bool = True) -> SynthVm:
        """Change a VM's configuration: new OVF content (its description says what
        changed), ``<Generation>`` bumped, and the events ``kind`` logs (none with
        ``log=False``: a change the feed never shows, as from a script on the database)."""
        vm = self._vm(vm)
        vm.changes += 1
        text = f"{vm.name}: change {vm.changes} ({kind})"
        vm.description = text
        vm.ovf = self._bump(re.sub(r"<Description>[^<]*</Description>",
                                   f"<Description>{escape(text)}</Description>", vm.ovf, count=1))
        if log:
            for code in self.CHANGE_EVENTS[kind]:
                self.log_event(code, vm=vm)
        return vm

    def run_vm(self, vm, *, log: bool = True) -> SynthVm:
        """Start a VM: ``<Generation>`` bumped (RunVmCommand.runningSucceded), nothing else
        in its configuration; logs USER_STARTED_VM (153) and USER_RUN_VM (32)."""
        vm = self._vm(vm)
        vm.ovf, vm.status = self._bump(vm.ovf), "up"
        if log:
            self.log_event(153, vm=vm)
            self.log_event(32, vm=vm)
        return vm

    def stop_vm(self, vm, *, log: bool = True) -> SynthVm:
        """Stop a VM: ``<Generation>`` bumped (StopVmCommandBase); USER_STOP_VM (33), VM_DOWN (61)."""
        vm = self._vm(vm)
        vm.ovf, vm.status = self._bump(vm.ovf), "down"
        if log:
            self.log_event(33, vm=vm)
            self.log_event(61, vm=vm)
        return vm

    def rename_vm(self, vm, name: str, *, log: bool = True) -> SynthVm:
        """Rename through UpdateVm: USER_UPDATE_VM (35) and ENTITY_RENAMED (1200, with the
        VM's id, no correlation id)."""
        vm = self._vm(vm)
        old, vm.name = vm.name, name
        vm.ovf = self._bump(re.sub(r"<Name>[^<]*</Name>", f"<Name>{escape(name)}</Name>",
                                   vm.ovf, count=1))
        if log:
            self.log_event(35, vm=vm)
            self.log_event(1200, vm=vm, description=f"VM {old} was renamed from {old} to "
                                                    f"{name} by admin@internal-authz.")
        return vm

    def create_vm(self, name: str, cluster, *, log: bool = True, imported: bool = False,
                  **kw) -> SynthVm:
        """:meth:`add_vm` as a user does it: USER_ADD_VM (34), or for an import from a
        configuration VM_IMPORT_FROM_CONFIGURATION_EXECUTED_SUCCESSFULLY (174). ``log=False``:
        what ``POST /vms`` with a disk-less OVF logs (nothing at all, engine-facts D)."""
        vm = self.add_vm(name, cluster, **kw)
        if log:
            self.log_event(174 if imported else 34, vm=vm)
        return vm

    def remove_vm(self, vm, *, log: bool = True) -> SynthVm:
        """Remove a VM: USER_REMOVE_VM_FINISHED (113); ``GET /vms/{id}`` answers 404 from now."""
        vm = self._vm(vm)
        self.vms.remove(vm)
        self.removed.append(vm)
        if log:
            self.log_event(113, vm=vm)
        return vm

    def upgrade_datacenter(self, datacenter, version: str = "4.8") -> SynthDataCenter:
        """A data-center compatibility upgrade: every VM of its clusters gets
        ``<Generation>`` + 1 (IncrementDbGenerationForAllInStoragePool) and the only event
        is USER_UPDATE_STORAGE_POOL (952), naming no VM (engine-facts A3)."""
        dc = self._find(self.datacenters, datacenter)
        for vm in self.vms:
            if vm.cluster.datacenter is dc:
                vm.ovf = self._bump(vm.ovf)
        self.log_event(952, datacenter_id=dc.id,
                       description=f"Data Center {dc.name} was updated by admin@internal-authz.")
        return dc

    def dismiss(self, event: SynthEvent) -> None:
        """``DELETE /events/{id}`` (the UI's dismiss): the event leaves the feed."""
        event.deleted = True

    def clear_all_events(self) -> None:
        """The UI's "clear all": every event but alerts is marked deleted (ClearAllAuditLogEvents)."""
        for event in self.events:
            if event.severity != "alert":
                event.deleted = True

    def age_out(self, days: float = 30.0) -> int:
        """The daily AuditLogCleanupManager: events older than ``days`` are deleted."""
        limit = self.now - _dt.timedelta(days=days)
        kept = [e for e in self.events if e.time >= limit]
        gone = len(self.events) - len(kept)
        self.events = kept
        return gone

    def _feed_interactions(self) -> List[dict]:
        """The API root (the engine's clock and summary) and the events feed; a removed VM
        answers 404."""
        live = sorted((e for e in self.events if not e.deleted), key=lambda e: -e.index)
        out = [interaction("GET", API, body=self.api_root_xml()),
               interaction("GET", f"{API}/events", body=_collection(
                   "events", (event_xml(e) for e in live)))]
        for vm in self.removed:
            if vm.id not in {v.id for v in self.vms}:
                out.append(interaction(
                    "GET", with_query(f"{API}/vms/{vm.id}", all_content="true"), status=404,
                    body=fault_xml(f"Entity not found: {vm.id}", "Operation Failed")))
        return out


def write_interactions(path: Union[str, Path], interactions: List[dict]) -> Path:
    """Write a list of interactions (e.g. :func:`sso_interactions`) as a YAML/JSON cassette."""
    path = Path(path)
    data = {"version": 1, "interactions": interactions}
    if path.suffix.lower() == ".json":
        text = jsonserializer.serialize(data)
    else:
        text = "# synthesized (see cassettes/README.md)\n" + yamlserializer.serialize(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------
# The demo inventory
# ------------------------------------------------------------------------------------
def demo_engine() -> SyntheticEngine:
    """The fixed inventory of ``cassettes/demo-engine.yaml`` (seed 20261126).

    Production (clusters prod-a, prod-b; prod-data1 master, prod-data2) and Lab (cluster
    lab; lab-data1 master, lab-data2); six VMs, ``web01`` in prod-a, ``lab-db01`` locked
    (OVF only on the single GET); two ``POST /vms`` answers: ``web01-1`` and ``web01-2``.
    prod-data2 came from another engine: its OVF_STORE brings the template ``rhel8-base``
    and the VM ``legacy-app01``, unregistered (what ``msd`` lists and registers).
    """
    eng = SyntheticEngine(seed=20261126)
    prod = eng.add_datacenter("Production", description="Production workloads")
    lab = eng.add_datacenter("Lab", description="Test and build machines")
    eng.add_cluster("prod-a", prod)
    eng.add_cluster("prod-b", prod)
    eng.add_cluster("lab", lab)
    eng.add_storage_domain("prod-data1", prod, master=True)
    eng.add_storage_domain("prod-data2", prod)
    eng.add_storage_domain("lab-data1", lab, master=True)
    eng.add_storage_domain("lab-data2", lab)
    eng.add_vm("web01", "prod-a", memory_mb=4096, cpus=2, description="Public web front end",
               disks=[SynthDisk("web01_Disk1", 30, 6, boot=True),
                      SynthDisk("web01_data", 100, 41, storage_domain="prod-data2")],
               nics=[SynthNic("nic1", "ovirtmgmt"), SynthNic("nic2", "frontend", "frontend-qos")],
               status="up")
    eng.add_vm("db01", "prod-b", os="rhel_9x64", memory_mb=16384, cpus=8,
               description="PostgreSQL primary",
               disks=[SynthDisk("db01_os", 40, 9, boot=True),
                      SynthDisk("db01_pgdata", 500, 312, "VirtIO", storage_domain="prod-data2",
                                volume_format="COW"),
                      SynthDisk("db01_wal", 50, 20, "VirtIO", storage_domain="prod-data2")],
               nics=[SynthNic("nic1", "ovirtmgmt"), SynthNic("nic2", "storage", interface_type=3)],
               status="up")
    eng.add_vm("app01", "prod-a", os="rhel_8x64", memory_mb=8192, cpus=4,
               disks=[SynthDisk("app01_Disk1", 50, 14, boot=True, volume_format="COW")],
               nics=[SynthNic("nic1", "ovirtmgmt")], status="up")
    eng.add_vm("win-ad01", "prod-b", os="windows_2019x64", memory_mb=8192, cpus=2,
               description="Active Directory & DNS",
               disks=[SynthDisk("win-ad01_C", 80, 31, "SATA", boot=True)],
               nics=[SynthNic("nic1", "ovirtmgmt", interface_type=5)], status="up")
    eng.add_vm("lab-build01", "lab", os="debian_10", memory_mb=4096, cpus=4,
               disks=[SynthDisk("lab-build01_Disk1", 60, 22, boot=True)],
               nics=[SynthNic("nic1", "lab-net")])
    eng.add_vm("lab-db01", "lab", os="rhel_9x64", memory_mb=2048, cpus=1,
               disks=[SynthDisk("lab-db01_Disk1", 20, 3, boot=True),
                      SynthDisk("lab-db01_Disk2", 10, 1, storage_domain="lab-data2")],
               nics=[SynthNic("nic1", "lab-net")], ovf_missing_in_list=True)
    eng.add_restore("web01-1", cluster="prod-a", of="web01")
    eng.add_restore("web01-2", cluster="prod-a", of="web01")
    eng.add_unregistered("rhel8-base", "prod-data2", kind="template",
                         description="RHEL 8 golden image (old engine)")
    eng.add_unregistered("legacy-app01", "prod-data2", memory_mb=2048,
                         description="Order system, retired cluster")
    return eng
