"""``parse_ovf``: who a VM is, from its OVF, parsed with a hardened parser.

The engine's OVF dialect (``ovf:version`` 4.x, written by ovirt-engine's OvfVmWriter /
OvfTemplateWriter) and virt-v2v's (``ovf:version`` 0.9) become a :class:`VmIdentity`.
Parsing is hardened: no DOCTYPE (so no entities, no external DTD), no network, no huge
trees, a size limit checked before parsing; every failure is an :class:`OvfError`. The same
parser and limit check an OVF at backup and again before any plan or restore.

Where the dialect hides things (checked against a real engine recording and the engine's
OvfWriter):

* The VM id is ``Content/Section[OperatingSystemSection]/@ovf:id`` in both dialects;
  ``Content/@ovf:id`` is the constant ``"out"``.
* A ``<Disk>`` in the DiskSection is a *volume*: ``ovf:diskId`` is the image (volume) id
  and ``ovf:fileRef`` is ``"<disk id>/<image id>"`` -- the first part is the disk id the
  REST API uses (``/disks/{id}``, whose ``image_id`` is ``ovf:diskId``), *not* a storage
  domain. The storage domain is ``rasd:StorageId`` of the disk's hardware ``<Item>``.
  A disk with snapshots has one ``<Disk>`` per volume; they are folded into one
  :class:`Disk` keyed by the disk id, taking the volume of the ACTIVE snapshot.
* A NIC's vNIC profile name is ``rasd:OtherResourceType`` (OvfWriter.writeNetwork), its
  network ``rasd:Connection``.
* ``ovf:version`` is the engine's VdcVersion, not a release: the cluster level is
  ``<ClusterCompatibilityVersion>``.
* What a configuration cannot bring back is flagged (``VmIdentity.flags``, engine-facts
  B.7): ``<BiosType>`` is written *zero-based* (OvfWriter writes the engine's value - 1:
  0 i440fx SeaBIOS, 1 Q35 SeaBIOS, 2 Q35 OVMF (UEFI), 3 Q35 SecureBoot), so 2 and 3 are
  UEFI VMs whose NVRAM variables the live OVF lacks (:data:`FLAG_NVRAM`); a device Item
  ``<Type>tpm</Type>`` (or ``rasd:Caption`` TPM) is a TPM whose state it lacks
  (:data:`FLAG_TPM`); a ``References/File`` with ``ovf:disk_storage_type="LUN"`` is a
  direct LUN disk (:data:`FLAG_DIRECT_LUN`, ``Disk.lun``); ``<Type>hostdev</Type>`` is a
  passed-through host device (:data:`FLAG_HOST_DEVICE`).
* Templates and VMs both use ``xsi:type="ovf:VirtualSystem_Type"``. The engine's own test
  (OvfParser.isTemplate) is "``<TemplateId>`` equals the OS section's id": a template's
  OVF names itself there, a VM's names the template it was made from. Template OVFs also
  carry ``<TemplateType>`` (OvfTemplateWriter); either marks ``kind="template"``.
"""
from __future__ import annotations

import re
import threading
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from lxml import etree

from ..errors import OvfError
from ..model import FLAG_DIRECT_LUN, FLAG_HOST_DEVICE, FLAG_NVRAM, FLAG_TPM, Disk, Nic, Snapshot, VmIdentity

__all__ = ["MAX_OVF_BYTES", "UEFI_BIOS_TYPES", "parse_ovf", "parse_tree"]

#: Largest OVF accepted, in bytes (UTF-8). Real ones are 5-50 KB; snapshots add a few KB each.
MAX_OVF_BYTES = 4 * 1024 * 1024

# The engine writes the ovf namespace with a trailing slash since 4.2, without one before.
_OVF_NAMESPACES = ("http://schemas.dmtf.org/ovf/envelope/1/", "http://schemas.dmtf.org/ovf/envelope/1")
_XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"

_UUID_RE = re.compile(r"\A[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")
_XML_DECLARATION_RE = re.compile(r"\A\s*<\?xml\b[^>]*\?>")
_DOCTYPE_RE = re.compile(r"<!DOCTYPE", re.IGNORECASE)

# rasd:ResourceType values (OvfHardware) this module reads.
_RT_CPU, _RT_MEMORY, _RT_NIC, _RT_DISK = "3", "4", "10", "17"

_RASD_RESOURCE_TYPE = (
    "{http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData}ResourceType"
)
_READ_RESOURCE_TYPES = frozenset({_RT_CPU, _RT_MEMORY, _RT_NIC, _RT_DISK})
_RASD_CAPTION = (
    "{http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData}Caption"
)

# The <Content> children read: plain-text fields (first occurrence wins) and the Sections.
_CONTENT_TAGS = (
    "Name", "Description", "CreationDate", "ClusterName", "ClusterCompatibilityVersion",
    "TemplateId", "TemplateName", "TemplateType", "BaseTemplateId", "BiosType", "Section",
)

#: ``<BiosType>`` values (zero-based, OvfWriter L391-401) of UEFI firmware: Q35_OVMF and
#: Q35_SECURE_BOOT (engine enum 3 and 4, BiosType.java L13-16).
UEFI_BIOS_TYPES = frozenset({"2", "3"})
_A_STORAGE_TYPE = tuple("{%s}disk_storage_type" % ns for ns in _OVF_NAMESPACES)
_A_HREF = tuple("{%s}href" % ns for ns in _OVF_NAMESPACES)


# --------------------------------------------------------------------------------------
# Secure parsing
# --------------------------------------------------------------------------------------
def _new_parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,   # never substitute entities (XXE, billion laughs)
        no_network=True,          # never fetch anything
        load_dtd=False,           # never read an external DTD
        dtd_validation=False,
        huge_tree=False,          # keep libxml2's limits: depth 256, text node size, ...
        remove_comments=True,
        remove_pis=True,
        # Do NOT pass collect_ids=False: lxml implements it through libxml2's "loadsubset"
        # flags, and libxml2 then loads the external DTD despite load_dtd=False
        # (seen with lxml 6.1 / libxml2 2.14; tests/test_ovf.py guards this).
    )


_thread_state = threading.local()


def _parser() -> etree.XMLParser:
    """One parser per thread: lxml parsers must not be shared between threads."""
    parser = getattr(_thread_state, "parser", None)
    if parser is None:
        parser = _thread_state.parser = _new_parser()
    return parser


def _as_text(document: Union[str, bytes], max_bytes: int) -> str:
    """The document as text, refusing oversize and non-UTF-8 input before any parsing."""
    if isinstance(document, (bytes, bytearray, memoryview)):
        data = bytes(document)
        _check_size(len(data), max_bytes)
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise OvfError(f"OVF document is not UTF-8 ({exc})") from None
    if isinstance(document, str):
        _check_size(len(document), max_bytes)   # a character is at least one byte
        return document.lstrip("\ufeff")
    raise OvfError(f"OVF document must be str or bytes, not {type(document).__name__}")


def _check_size(size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise OvfError(f"OVF document is {size} bytes, over the limit of {max_bytes} bytes")


def _refuse_doctype(text: str) -> None:
    # OVFs never carry a DOCTYPE; refusing it up front means no entity or DTD is ever
    # declared, let alone resolved. (A literal "<!DOCTYPE" inside a comment is refused too.)
    if "<!" in text and _DOCTYPE_RE.search(text):    # "<!" alone is rare: skip the regex
        raise OvfError("OVF document has a DOCTYPE declaration; refused (OVFs never carry one)")


def _parse_xml(data: bytes) -> etree._Element:
    """Parse with the hardened parser; a second DOCTYPE check on the parsed tree."""
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        raise OvfError(f"malformed OVF XML: {exc}") from exc
    except (etree.LxmlError, ValueError) as exc:
        raise OvfError(f"unreadable OVF XML: {exc}") from exc
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise OvfError("OVF document has a DOCTYPE declaration; refused (OVFs never carry one)")
    return root


def _parse_secure(document: Union[str, bytes], max_bytes: int) -> etree._Element:
    text = _as_text(document, max_bytes)
    _refuse_doctype(text)
    # The text is decoded already, so its declared encoding means nothing any more (lxml
    # refuses str input with an encoding declaration): drop it and parse UTF-8 bytes.
    data = _XML_DECLARATION_RE.sub("", text, count=1).encode("utf-8", "surrogatepass")
    _check_size(len(data), max_bytes)
    return _parse_xml(data)


def parse_tree(document: Union[str, bytes], *, max_bytes: int = MAX_OVF_BYTES) -> etree._Element:
    """The root element of ``document``, parsed with the same hardened parser and size limit
    as :func:`parse_ovf` (for code that rewrites an OVF, :mod:`.rewrite`)."""
    return _parse_secure(document, max_bytes)


# --------------------------------------------------------------------------------------
# Small tree helpers
# --------------------------------------------------------------------------------------
def _local(tag: object) -> str:
    """Local name of an element tag; "" for processing instructions and entities."""
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def _ovf_keys(name: str) -> Tuple[str, ...]:
    return tuple("{%s}%s" % (ns, name) for ns in _OVF_NAMESPACES)


_A_ID = _ovf_keys("id")
_A_DISK_ID = _ovf_keys("diskId")
_A_FILE_REF = _ovf_keys("fileRef")
_A_SIZE = _ovf_keys("size")
_A_ALIAS = _ovf_keys("disk-alias")
_A_INTERFACE = _ovf_keys("disk-interface")
_A_BOOT = _ovf_keys("boot")
_A_SNAPSHOT_ID = _ovf_keys("vm_snapshot_id")


def _attr(el: Any, keys: Tuple[str, ...]) -> str:
    for key in keys:
        value = el.get(key)
        if value is not None:
            return value.strip()
    return ""


def _text(el: Any) -> str:
    return "" if el is None else (el.text or "").strip()


def _section_kind(el: Any) -> str:
    """``Section xsi:type="ovf:DiskSection_Type"`` and ``<DiskSection>`` both give "DiskSection"."""
    name = _local(el.tag)
    if name != "Section":
        return name
    kind = (el.get(_XSI_TYPE) or "").rpartition(":")[2]
    return kind[:-5] if kind.endswith("_Type") else kind


def _children_text(el: Any) -> Dict[str, str]:
    """Local name -> text of an element's children (first occurrence wins)."""
    out: Dict[str, str] = {}
    for child in el:                       # the hot loop of parse_ovf: helpers inlined
        tag = child.tag
        if isinstance(tag, str):
            name = tag[tag.find("}") + 1:]
            if name not in out:
                out[name] = (child.text or "").strip()
    return out


def _to_int(value: str) -> Optional[int]:
    try:
        return int(value)
    except (TypeError, ValueError):
        try:
            return int(float(value))
        except (TypeError, ValueError, OverflowError):
            return None


# --------------------------------------------------------------------------------------
# parse_ovf
# --------------------------------------------------------------------------------------
def parse_ovf(text: Union[str, bytes], *, max_bytes: int = MAX_OVF_BYTES) -> VmIdentity:
    """Read an engine (or virt-v2v) OVF into a :class:`VmIdentity`.

    Raises :class:`OvfError` for anything oversize, hostile, malformed, not an OVF, or
    lacking a VM id or name. Optional fields that are missing are left at their defaults.
    """
    root = _parse_secure(text, max_bytes)
    if _local(root.tag) != "Envelope":
        raise OvfError(f"not an OVF document: root element is <{_local(root.tag) or root.tag}>, "
                       "expected <ovf:Envelope>")
    disk_elements: List[Any] = []
    luns: List[str] = []                   # ids of direct LUN disks (References/File)
    content = None
    for child in root:
        kind = _section_kind(child)
        if kind == "DiskSection":
            disk_elements.extend(d for d in child if _local(d.tag) == "Disk")
        elif kind == "References":
            luns.extend(_lun_ids(child))
        elif kind == "Content" and content is None:
            content = child
    if content is None:
        raise OvfError("not a VM OVF: no <Content> element")
    return _identity(content, disk_elements, luns)


def _lun_ids(references: Any) -> Iterator[str]:
    """Disk ids of ``<File ovf:disk_storage_type="LUN">`` (OvfOvirtWriter L51-56: a LUN's
    ``ovf:id`` and ``ovf:href`` are the disk id; images have ``IMAGE``)."""
    for el in references:
        if _local(el.tag) == "File" and _attr(el, _A_STORAGE_TYPE).upper() == "LUN":
            disk_id = _attr(el, _A_HREF).partition("/")[0] or _attr(el, _A_ID)
            if disk_id:
                yield disk_id


class _ContentData:
    """What one pass over ``<Content>`` collects."""

    def __init__(self) -> None:
        self.fields: Dict[str, str] = {}
        self.vm_id = ""
        self.os = ""
        self.items: List[Dict[str, str]] = []     # hardware Items of the resource types we read
        self.snapshots: List[Snapshot] = []
        self.devices: set = set()                 # device <Type>s met: tpm, hostdev


def _read_content(content: Any) -> _ContentData:
    # iterchildren(*tags) filters in C: the ~50 other children never become Python objects.
    data = _ContentData()
    for el in content.iterchildren(*_CONTENT_TAGS):
        if el.tag != "Section":
            data.fields.setdefault(el.tag, _text(el))
            continue
        kind = _section_kind(el)
        if kind == "OperatingSystemSection" and not data.vm_id:
            data.vm_id = _attr(el, _A_ID)
            data.os = _text(next(el.iterchildren("Description"), None))
        elif kind == "VirtualHardwareSection":
            data.items.extend(_hardware_items(el))
            data.devices.update(_special_devices(el))
        elif kind == "SnapshotsSection":
            data.snapshots.extend(_snapshot(s) for s in el.iterchildren("Snapshot"))
    return data


def _hardware_items(section: Any) -> Iterator[Dict[str, str]]:
    """The CPU, memory, NIC and disk Items of a VirtualHardwareSection, as name -> text."""
    for resource_type in section.iter(_RASD_RESOURCE_TYPE):
        if _text(resource_type) in _READ_RESOURCE_TYPES:
            item = resource_type.getparent()
            if item is not None and item.tag == "Item":
                yield _children_text(item)


def _special_devices(section: Any) -> Iterator[str]:
    """``tpm`` and ``hostdev`` when the section has such devices: an Item's ``<Type>``
    (OvfWriter L497-503, L560-585: ResourceType 0 Items), or a TPM's ``rasd:Caption``."""
    for el in section.iter("Type"):
        kind = (el.text or "").strip().lower()
        if kind in ("tpm", "hostdev"):
            yield kind
    for el in section.iter(_RASD_CAPTION):
        if (el.text or "").strip().upper() == "TPM":
            yield "tpm"


def _flags(data: "_ContentData", disks: Tuple[Disk, ...]) -> Tuple[str, ...]:
    flags = []
    if "tpm" in data.devices:
        flags.append(FLAG_TPM)
    if data.fields.get("BiosType", "") in UEFI_BIOS_TYPES:
        flags.append(FLAG_NVRAM)
    if any(d.lun for d in disks):
        flags.append(FLAG_DIRECT_LUN)
    if "hostdev" in data.devices:
        flags.append(FLAG_HOST_DEVICE)
    return tuple(flags)


def _identity(content: Any, disk_elements: List[Any], luns: Sequence[str] = ()) -> VmIdentity:
    data = _read_content(content)
    fields = data.fields
    vm_id, name = data.vm_id, fields.get("Name", "")
    if not vm_id:
        raise OvfError("OVF has no VM id (Content/Section[OperatingSystemSection]/@ovf:id)")
    if not _UUID_RE.match(vm_id):
        raise OvfError(f"OVF VM id {vm_id[:64]!r} is not a UUID")
    if not name:
        raise OvfError(f"OVF of VM {vm_id} has no <Name>")
    kind, template_id, template_name = _kind_and_template(vm_id, fields)
    active = next((s.id for s in data.snapshots if s.type.upper() == "ACTIVE"), "")
    disks = _disks(disk_elements, data.items, active, frozenset(luns))
    return VmIdentity(
        id=vm_id,
        name=name,
        description=fields.get("Description", ""),
        cluster=fields.get("ClusterName", ""),
        os=data.os,
        memory_mb=_memory_mb(data.items),
        cpus=_cpus(data.items),
        creation_date=fields.get("CreationDate", ""),
        cluster_version=fields.get("ClusterCompatibilityVersion", ""),
        template_id=template_id,
        template_name=template_name,
        kind=kind,
        disks=disks,
        nics=tuple(_nic(item) for item in data.items if item.get("ResourceType") == _RT_NIC),
        snapshots=tuple(data.snapshots),
        bios_type=fields.get("BiosType", ""),
        flags=_flags(data, disks),
    )


def _kind_and_template(vm_id: str, fields: Dict[str, str]) -> Tuple[str, str, str]:
    """("vm" | "template", template id, template name).

    A VM names the template it was created from. A template names itself in <TemplateId>
    (the engine's own OvfParser.isTemplate test) and writes <TemplateType>; for it we report
    its base template when it is a version of another one, else nothing.
    """
    template_id = fields.get("TemplateId", "")
    if "TemplateType" in fields or (template_id and template_id.lower() == vm_id.lower()):
        base = fields.get("BaseTemplateId", "")
        return "template", (base if base and base.lower() != vm_id.lower() else ""), ""
    return "vm", template_id, fields.get("TemplateName", "")


def _cpus(items: Iterable[Dict[str, str]]) -> Optional[int]:
    for item in items:
        if item.get("ResourceType") == _RT_CPU:
            quantity = _to_int(item.get("VirtualQuantity", ""))
            if quantity is not None:
                return quantity
            # virt-v2v writes topology only: sockets x cores x threads.
            sockets = _to_int(item.get("num_of_sockets", ""))
            cores = _to_int(item.get("cpu_per_socket", ""))
            threads = _to_int(item.get("threads_per_cpu", "")) or 1
            if sockets is not None and cores is not None:
                return sockets * cores * threads
            return None
    return None


# AllocationUnits -> factor to MiB. The engine and virt-v2v write "MegaBytes".
_MEMORY_UNITS = {
    "": 1, "megabytes": 1, "mb": 1, "mib": 1, "byte * 2^20": 1,
    "gigabytes": 1024, "gb": 1024, "gib": 1024, "byte * 2^30": 1024,
}


def _memory_mb(items: Iterable[Dict[str, str]]) -> Optional[int]:
    for item in items:
        if item.get("ResourceType") == _RT_MEMORY:
            quantity = _to_int(item.get("VirtualQuantity", ""))
            factor = _MEMORY_UNITS.get(item.get("AllocationUnits", "").strip().lower())
            if quantity is None or factor is None:
                return None
            return quantity * factor
    return None


def _disks(disk_elements: List[Any], items: List[Dict[str, str]],
           active_snapshot: str, luns: frozenset = frozenset()) -> Tuple[Disk, ...]:
    """One Disk per disk id (the first part of ovf:fileRef), from its active volume."""
    storage_by_volume = {
        item.get("InstanceId", ""): item.get("StorageId", "")
        for item in items if item.get("ResourceType") == _RT_DISK
    }
    volumes: Dict[str, List[Any]] = {}          # disk id -> its <Disk> volumes, in document order
    for el in disk_elements:
        volume_id = _attr(el, _A_DISK_ID)
        disk_id = _attr(el, _A_FILE_REF).partition("/")[0] or volume_id
        if disk_id:
            volumes.setdefault(disk_id, []).append(el)
    return tuple(
        _disk(disk_id, _active_volume(els, active_snapshot), storage_by_volume, disk_id in luns)
        for disk_id, els in volumes.items()
    )


def _active_volume(volumes: List[Any], active_snapshot: str) -> Any:
    """The volume of the ACTIVE snapshot; else the last listed (the engine lists base -> leaf)."""
    if active_snapshot and len(volumes) > 1:
        for el in volumes:
            if _attr(el, _A_SNAPSHOT_ID) == active_snapshot:
                return el
    return volumes[-1]


def _disk(disk_id: str, el: Any, storage_by_volume: Dict[str, str], lun: bool = False) -> Disk:
    return Disk(
        id=disk_id,
        alias=_attr(el, _A_ALIAS),
        size_gb=_to_int(_attr(el, _A_SIZE)),
        interface=_attr(el, _A_INTERFACE),
        storage_domain=storage_by_volume.get(_attr(el, _A_DISK_ID), ""),
        boot=_attr(el, _A_BOOT).lower() == "true",
        lun=lun,
    )


def _nic(item: Dict[str, str]) -> Nic:
    return Nic(
        name=item.get("Name") or item.get("ElementName", ""),
        network=item.get("Connection", ""),
        vnic_profile=item.get("OtherResourceType", ""),   # OvfWriter: the vNIC profile name
        mac=item.get("MACAddress", ""),
    )


def _snapshot(el: Any) -> Snapshot:
    fields = _children_text(el)
    return Snapshot(
        id=_attr(el, _A_ID),
        type=fields.get("Type", ""),
        description=fields.get("Description", ""),
        date=fields.get("CreationDate", ""),
    )
