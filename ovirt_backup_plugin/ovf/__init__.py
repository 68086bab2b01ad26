"""OVF documents: parsing (hardened), content hashing, change descriptions, sealed blobs.

Pure functions over text and bytes: no engine, no I/O.
"""
from .diff import diff_identities
from .digest import VOLATILE_ATTRIBUTES, VOLATILE_ELEMENTS, normalize_for_hash, ovf_hash
from .parse import MAX_OVF_BYTES, parse_ovf
from .seal import (
    HashMismatch,
    Key,
    KeyMissing,
    KeyRing,
    key_id_of,
    open_blob,
    pack,
    seal,
    seal_encrypted,
)

__all__ = ["MAX_OVF_BYTES", "VOLATILE_ELEMENTS", "VOLATILE_ATTRIBUTES", "HashMismatch",
           "Key", "KeyMissing", "KeyRing", "key_id_of", "seal_encrypted",
           "diff_identities", "normalize_for_hash", "open_blob", "ovf_hash", "pack",
           "parse_ovf", "seal"]
