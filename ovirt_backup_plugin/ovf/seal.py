"""The blobs providers store: an OVF sealed by the host, and opened again on the way back.

A provider stores ``VmBackup.blob`` as it is and hands it back from ``read_ovf``; only the
host looks inside. A sealed blob is ``OVB1`` + one flags byte + the payload: zlib of the
UTF-8 OVF (made beside the parse, on a worker's core). Blobs written by version 0.1 are
read too: ``localdb`` stored bare zlib, ``swift`` and ``ovfdir`` the plain XML.

:func:`open_blob` is what every read goes through before a plan, a restore or a check: it
inflates with a bound (a decompression bomb stops at the OVF size limit), checks the text
against the content hash the generation recorded, and returns the text for the hardened
parser.
"""
from __future__ import annotations

import zlib
from typing import Optional

from ..errors import OvfError
from .digest import ovf_hash
from .parse import MAX_OVF_BYTES

__all__ = ["MAGIC", "seal", "open_blob", "HashMismatch"]

MAGIC = b"OVB1"
FLAG_ZLIB = 0x01
_KNOWN_FLAGS = FLAG_ZLIB
ZLIB_LEVEL = 1      # twice as fast as the default 6 for a tenth more bytes on OVFs


class HashMismatch(OvfError):
    """The blob opened, but its OVF is not the content the generation recorded."""


def pack(text: str) -> bytes:
    """zlib of the UTF-8 OVF (what workers make beside the parse)."""
    return zlib.compress(text.encode("utf-8", "surrogateescape"), ZLIB_LEVEL)


def seal(packed: bytes) -> bytes:
    """The blob a provider stores for an OVF whose zlib is ``packed``."""
    return MAGIC + bytes([FLAG_ZLIB]) + packed


def _inflate(data: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as e:
        raise OvfError(f"the stored blob does not inflate: {e}") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise OvfError(f"the stored OVF inflates to more than the limit of {limit} bytes")
    if not inflater.eof:
        raise OvfError("the stored blob is truncated")
    return out


def open_blob(blob: bytes, expected_hash: Optional[str] = None, *,
              max_bytes: int = MAX_OVF_BYTES) -> str:
    """The OVF text in ``blob``; :class:`HashMismatch` when it is not ``expected_hash``'s
    content, :class:`OvfError` when it is damaged or over ``max_bytes``."""
    if not isinstance(blob, (bytes, bytearray, memoryview)):
        raise OvfError(f"a stored blob must be bytes, not {type(blob).__name__}")
    blob = bytes(blob)
    if blob.startswith(MAGIC):
        if len(blob) < len(MAGIC) + 1:
            raise OvfError("the stored blob is truncated")
        flags, payload = blob[len(MAGIC)], blob[len(MAGIC) + 1:]
        if flags & ~_KNOWN_FLAGS:
            raise OvfError(f"the stored blob is sealed in a way this version does not know "
                           f"(flags {flags:#04x}); a newer ovirt-backup wrote it")
        data = _inflate(payload, max_bytes) if flags & FLAG_ZLIB else payload
    elif blob[:1] == b"\x78":                    # 0.1 localdb: bare zlib
        data = _inflate(blob, max_bytes)
    else:                                        # 0.1 swift / ovfdir: the plain XML
        data = blob
    if len(data) > max_bytes:
        raise OvfError(f"the stored OVF is {len(data)} bytes, over the limit of "
                       f"{max_bytes} bytes")
    text = data.decode("utf-8", "surrogateescape")
    if expected_hash is not None and ovf_hash(text) != expected_hash:
        raise HashMismatch("its content does not match the hash recorded at backup")
    return text
