"""The blobs providers store: an OVF sealed by the host, and opened again on the way back.

A provider stores ``VmBackup.blob`` as it is and hands it back from ``read_ovf``; only the
host looks inside. A sealed blob is ``OVB1`` + one flags byte + the payload: zlib of the
UTF-8 OVF (made beside the parse, on a worker's core). Blobs written by version 0.1 are
read too: ``localdb`` stored bare zlib, ``swift`` and ``ovfdir`` the plain XML.

:func:`open_blob` is what every read goes through before a plan, a restore or a check: it
inflates with a bound (a decompression bomb stops at the OVF size limit), checks the text
against the content hash the generation recorded, and returns the text for the hardened
parser.

Encrypted blobs (flag ``0x02``, for the stores that are sealed encrypted: everything shipped
off the host, and ``localdb`` with ``encrypt = yes``) are::

    OVB1 | flags 0x03 | key id (8 bytes) | nonce (12 bytes) | AES-256-GCM(zlib of the OVF)

The associated data is the header (magic, flags, key id) and the blob's *name*, so a blob
moved under another name, or another key id written into it, does not authenticate. The
name of an encrypted blob is a keyed hash, :meth:`Key.name` (HMAC-SHA256 of the plain
content hash with a name key derived from the encryption key): equal content has equal
names in one store (it is stored once), but a name tells nothing about the content to whoever
reads another store, or the same store without the key. After decrypting, the host computes
the keyed name of what it got and compares it with the name it asked for.

Keys: :class:`Key` derives, with HKDF-SHA256, from one 32-byte secret its encryption key,
its name key and its id (what every blob records, so a key ring can hold several keys and
the right one is picked). ``cryptography`` (pyca) provides AES-GCM and HKDF: a well-kept,
audited library on every distribution oVirt runs on; nothing here is home-made crypto.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import zlib
from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence, Tuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..errors import OvfError
from .digest import ovf_hash
from .parse import MAX_OVF_BYTES

__all__ = ["MAGIC", "seal", "seal_encrypted", "open_blob", "key_id_of", "HashMismatch",
           "KeyMissing", "Key", "KeyRing", "payload_of"]

MAGIC = b"OVB1"
FLAG_ZLIB = 0x01
FLAG_AESGCM = 0x02
_KNOWN_FLAGS = FLAG_ZLIB | FLAG_AESGCM
KEY_BYTES = 32                  # AES-256
KEY_ID_BYTES = 8
NONCE_BYTES = 12                # random per blob: 2**-32 collision odds only after 2**32 blobs
_HEADER = len(MAGIC) + 1
ZLIB_LEVEL = 1      # twice as fast as the default 6 for a tenth more bytes on OVFs


class HashMismatch(OvfError):
    """The blob opened, but its OVF is not the content the generation recorded."""


class KeyMissing(OvfError):
    """The blob is encrypted with a key that is not in the key ring (or there is none)."""

    def __init__(self, message: str, key_id: str):
        super().__init__(message)
        self.key_id = key_id


def _derive(secret: bytes, purpose: bytes, length: int = 32) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None,
                info=b"ovirt-backup blob seal v1: " + purpose).derive(secret)


@dataclass(frozen=True)
class Key:
    """One key of a key ring: its id and the keys derived from its 32-byte secret."""

    id: str                                            # 16 hex digits, recorded in each blob
    data: bytes = field(repr=False)                    # AES-256-GCM key
    names: bytes = field(repr=False)                   # HMAC-SHA256 key of blob names

    @classmethod
    def from_secret(cls, secret: bytes) -> "Key":
        if len(secret) != KEY_BYTES:
            raise ValueError(f"a key is {KEY_BYTES} bytes, not {len(secret)}")
        return cls(id=_derive(secret, b"key id", KEY_ID_BYTES).hex(),
                   data=_derive(secret, b"encryption"), names=_derive(secret, b"names"))

    @classmethod
    def from_text(cls, text: str) -> "Key":
        """A key written as ``ovirt-backup keygen`` writes it (base64 of 32 bytes)."""
        try:
            secret = base64.b64decode(text.strip(), validate=True)
        except (ValueError, TypeError):
            raise ValueError("it is not base64") from None
        return cls.from_secret(secret)

    def name(self, plain_hash: str) -> str:
        """The blob name of content whose ``ovf_hash`` is ``plain_hash``, under this key."""
        return hmac.new(self.names, plain_hash.encode("ascii"), hashlib.sha256).hexdigest()


def new_key_text() -> str:
    """A fresh random key, as a key file holds it."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode("ascii")


class KeyRing:
    """The keys blobs may be sealed with: the first writes, every one reads."""

    def __init__(self, keys: Sequence[Key]):
        if not keys:
            raise ValueError("a key ring needs a key")
        self.keys: Tuple[Key, ...] = tuple(keys)
        self._by_id: Dict[str, Key] = {}
        for key in self.keys:
            self._by_id.setdefault(key.id, key)

    @property
    def current(self) -> Key:
        return self.keys[0]

    def get(self, key_id: str) -> Optional[Key]:
        return self._by_id.get(key_id)

    @property
    def ids(self) -> Tuple[str, ...]:
        return tuple(k.id for k in self.keys)


def pack(text: str) -> bytes:
    """zlib of the UTF-8 OVF (what workers make beside the parse)."""
    return zlib.compress(text.encode("utf-8", "surrogateescape"), ZLIB_LEVEL)


def seal(packed: bytes) -> bytes:
    """The blob a provider stores for an OVF whose zlib is ``packed``."""
    return MAGIC + bytes([FLAG_ZLIB]) + packed


def payload_of(blob: bytes) -> Optional[bytes]:
    """The zlib payload of a blob sealed in clear by :func:`seal` (None for any other)."""
    if blob[:_HEADER] == MAGIC + bytes([FLAG_ZLIB]):
        return blob[_HEADER:]
    return None


def _associated(header: bytes, name: str) -> bytes:
    return header + b"\0" + name.encode("ascii", "replace")


def seal_encrypted(packed: bytes, key: Key, name: str) -> bytes:
    """The encrypted blob of an OVF whose zlib is ``packed``, to be stored as ``name``
    (``key.name(ovf_hash)``)."""
    header = MAGIC + bytes([FLAG_ZLIB | FLAG_AESGCM]) + bytes.fromhex(key.id)
    nonce = os.urandom(NONCE_BYTES)
    return header + nonce + AESGCM(key.data).encrypt(nonce, packed, _associated(header, name))


def key_id_of(blob: bytes) -> str:
    """The id of the key an encrypted blob is sealed with; '' for a blob in clear."""
    blob = bytes(blob[:_HEADER + KEY_ID_BYTES])
    if len(blob) == _HEADER + KEY_ID_BYTES and blob.startswith(MAGIC) and \
            blob[len(MAGIC)] & FLAG_AESGCM:
        return blob[_HEADER:].hex()
    return ""


def _decrypt(blob: bytes, name: Optional[str], keys: Optional[KeyRing]) -> bytes:
    start = _HEADER + KEY_ID_BYTES
    if len(blob) < start + NONCE_BYTES + 16:
        raise OvfError("the stored blob is truncated")
    key_id = blob[_HEADER:start].hex()
    key = keys.get(key_id) if keys is not None else None
    if key is None:
        known = (f"the key ring holds {', '.join(keys.ids)}" if keys is not None
                 else "no encryption key is configured")
        raise KeyMissing(f"it is encrypted with key {key_id}, and {known}", key_id)
    if name is None:
        raise OvfError("an encrypted blob opens only under its name")
    nonce = blob[start:start + NONCE_BYTES]
    try:
        return AESGCM(key.data).decrypt(nonce, blob[start + NONCE_BYTES:],
                                        _associated(blob[:start], name))
    except InvalidTag:
        raise HashMismatch(f"it does not authenticate with key {key_id}: it was altered, or "
                           "it is not the object stored under this name") from None


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
              max_bytes: int = MAX_OVF_BYTES, keys: Optional[KeyRing] = None) -> str:
    """The OVF text in ``blob``; :class:`HashMismatch` when it is not ``expected_hash``'s
    content (for an encrypted blob: when it does not authenticate, or its keyed name is not
    ``expected_hash``), :class:`KeyMissing` when its key is not in ``keys``,
    :class:`OvfError` when it is damaged or over ``max_bytes``."""
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
        key: Optional[Key] = None
        if flags & FLAG_AESGCM:
            payload = _decrypt(blob, expected_hash, keys)
            assert keys is not None
            key = keys.get(key_id_of(blob))
        data = _inflate(payload, max_bytes) if flags & FLAG_ZLIB else payload
        if key is not None:
            text = _text(data, max_bytes)
            if expected_hash is not None and key.name(ovf_hash(text)) != expected_hash:
                raise HashMismatch("its content does not match the name recorded at backup")
            return text
    elif blob[:1] == b"\x78":                    # 0.1 localdb: bare zlib
        data = _inflate(blob, max_bytes)
    else:                                        # 0.1 swift / ovfdir: the plain XML
        data = blob
    text = _text(data, max_bytes)
    if expected_hash is not None and ovf_hash(text) != expected_hash:
        raise HashMismatch("its content does not match the hash recorded at backup")
    return text


def _text(data: bytes, max_bytes: int) -> str:
    if len(data) > max_bytes:
        raise OvfError(f"the stored OVF is {len(data)} bytes, over the limit of "
                       f"{max_bytes} bytes")
    return data.decode("utf-8", "surrogateescape")
