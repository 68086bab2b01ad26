"""``ovf_hash``: the name of an OVF's content, equal for an unchanged VM on every run.

sha256 of the OVF with the fields the engine rewrites on every read (or that follow power
state, the guest agent or disk usage) removed. ``VOLATILE_ELEMENTS`` and
``VOLATILE_ATTRIBUTES`` list what is removed, and why.
"""
from __future__ import annotations

import hashlib
import re
from typing import Union

__all__ = ["VOLATILE_ELEMENTS", "VOLATILE_ATTRIBUTES", "normalize_for_hash", "ovf_hash"]

#: Elements removed before hashing (with their content), and why:
#:
#: * ``ExportDate`` -- the engine stamps the time of *this read* on every OVF it writes.
#: * ``BootTime``, ``StopTime``, ``Downtime`` -- power-state history of the VM.
#: * ``app_list``, ``rasd:ApplicationList`` -- installed packages as the guest agent reports
#:   them (the VM-level list and the disk item's copy).
#: * ``rasd:last_modified_date`` -- a disk volume's timestamp; in the real engine OVF it is
#:   identical to ``ExportDate`` to the second, i.e. stamped at read time.
#:
#: ``ProductSection`` elements (the engine's per-application rendering of the same guest
#: agent list) are removed too. Nothing here is configuration: excluding it cannot hide a
#: change to memory, CPUs, disks, NICs or any other setting.
VOLATILE_ELEMENTS = (
    "ExportDate", "BootTime", "StopTime", "Downtime",
    "app_list", "rasd:ApplicationList", "rasd:last_modified_date",
)

# Disk usage, not configuration: grows as the guest writes to a thin-provisioned disk.
#   <File ovf:size="...">   actual size of the volume in bytes (OvfOvirtWriter.writeFile)
#   <Disk ovf:actual_size>  the same in GiB. (<Disk ovf:size> is the provisioned size: kept.)
VOLATILE_ATTRIBUTES = ("File ovf:size", "Disk ovf:actual_size")

_VOLATILE_ELEMENT_RE = re.compile(
    r"<(%s)(?:\s[^>]*?)?(?:/>|>[^<]*</\1\s*>)" % "|".join(re.escape(n) for n in VOLATILE_ELEMENTS)
)
_PRODUCT_SECTION_RE = re.compile(r"<ProductSection\b[^>]*?(?:/>|>.*?</ProductSection\s*>)", re.DOTALL)
# Patterns start with a literal so the regex engine can skip ahead: this runs 10,000 times a run.
_FILE_TAG_RE = re.compile(r"<File\b[^>]*")
_SIZE_ATTR_RE = re.compile(r"\sovf:size\s*=\s*(?:\"[^\"]*\"|'[^']*')")
_ACTUAL_SIZE_RE = re.compile(r"ovf:actual_size\s*=\s*(?:\"[^\"]*\"|'[^']*')")


def _drop_file_size(match: "re.Match[str]") -> str:
    return _SIZE_ATTR_RE.sub("", match.group(0))


def normalize_for_hash(text: str) -> str:
    """The OVF text with the volatile elements and attributes above removed."""
    text = _VOLATILE_ELEMENT_RE.sub("", text)
    if "<ProductSection" in text:
        text = _PRODUCT_SECTION_RE.sub("", text)
    text = _FILE_TAG_RE.sub(_drop_file_size, text)
    return _ACTUAL_SIZE_RE.sub("", text)


def ovf_hash(text: Union[str, bytes]) -> str:
    """sha256 hex of the OVF without its volatile parts: equal for an unchanged VM."""
    if isinstance(text, (bytes, bytearray, memoryview)):
        text = bytes(text).decode("utf-8", "surrogateescape")
    normalized = normalize_for_hash(text)
    return hashlib.sha256(normalized.encode("utf-8", "surrogateescape")).hexdigest()
