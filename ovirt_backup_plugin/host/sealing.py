"""Encryption at rest: the key ring, and how each provider's blobs are sealed and opened.

The host seals what a provider stores (:mod:`ovirt_backup_plugin.ovf.seal`). Each provider
is sealed one of two ways, by the host key ``encrypt`` of its ``[provider:NAME]`` section:

* ``encrypt = yes`` -- the default for providers that ship what they store off this host
  (``ProviderDeclaration.off_host``: ``swift``): blobs are encrypted with AES-256-GCM under
  the current key of the ring and stored under keyed names. Without a key such a provider
  is refused for backups with a message that says what to set; ``encrypt = no`` stores in
  clear, on purpose.
* ``encrypt = no`` -- the default for the others (``localdb``): blobs are compressed only.

Either way every key of the ring opens what it sealed, so turning encryption on or off, or
rotating the key, never makes a stored generation unreadable.

The key ring comes from ``[backup]``: ``encryption_key_file`` (a file holding one key, as
``ovirt-backup keygen`` writes it) or ``encryption_key_env`` (a variable holding it) is the
*current* key, which seals every new blob; ``encryption_old_key_files`` (files, separated
by commas or spaces) are keys that only open what they sealed. Rotating: make a new key,
make it the current one, list the old one among the old keys; the next run stores every
VM anew under the new key (keyed names change with the key), and the old key is needed
until ``prune`` has removed the generations sealed with it (``check --read-data`` counts
the blobs of each key).

A :class:`Sealer` is shared by every provider sealed the same way, and remembers the VM
it sealed last: one VM is sealed once per way, not once per provider.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Mapping, Optional, Tuple

from .. import logs
from ..errors import ConfigError
from ..model import VmBackup
from ..ovf import Key, KeyRing, key_id_of, open_blob, pack, seal_encrypted
from ..ovf.seal import new_key_text, payload_of
from ..private import check_private, write_private

__all__ = ["KEY_OPTIONS", "Sealer", "load_keyring", "write_new_key"]

#: The ``[backup]`` keys of the key ring.
KEY_OPTIONS = ("encryption_key_file", "encryption_key_env", "encryption_old_key_files")
SECTION = "[backup]"


def _key_from_text(text: str, where: str) -> Key:
    lines = [line.strip() for line in text.splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    if len(lines) != 1:
        raise ConfigError(f"{where} holds {len(lines)} keys; give one key per file (older keys "
                          f"go in {SECTION} encryption_old_key_files)")
    try:
        key = Key.from_text(lines[0])
    except ValueError as e:
        raise ConfigError(f"{where} does not hold a key as 'ovirt-backup keygen FILE' makes "
                          f"one ({e})") from None
    logs.mask(lines[0])
    return key


def _key_file(path: str, option: str) -> Key:
    path = os.path.expanduser(path)
    where = f"{SECTION} {option} {path}"
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ConfigError(f"{where}: cannot read it: {e.strerror or e}. Without its key the "
                          "backups sealed with it cannot be read") from None
    check_private(path)
    return _key_from_text(text, where)


def load_keyring(options: Mapping[str, str]) -> Optional[KeyRing]:
    """The key ring ``[backup]`` describes (None when it names no key)."""
    path = (options.get("encryption_key_file") or "").strip()
    env = (options.get("encryption_key_env") or "").strip()
    if path and env:
        raise ConfigError(f"{SECTION} sets both encryption_key_file and encryption_key_env; "
                          "give one (the current key)")
    keys = []
    if path:
        keys.append(_key_file(path, "encryption_key_file"))
    elif env:
        value = os.environ.get(env)
        if value is None:
            raise ConfigError(f"{SECTION} encryption_key_env: the environment variable {env} "
                              "is not set")
        keys.append(_key_from_text(value, f"{SECTION} encryption_key_env ({env})"))
    old = (options.get("encryption_old_key_files") or "").replace(",", " ").split()
    if old and not keys:
        raise ConfigError(f"{SECTION} encryption_old_key_files needs a current key too "
                          "(encryption_key_file or encryption_key_env): the one new backups "
                          "are sealed with")
    keys += [_key_file(p, "encryption_old_key_files") for p in old]
    return KeyRing(keys) if keys else None


def write_new_key(path: str) -> Key:
    """Write a fresh random key to ``path`` (0600; an existing file is never replaced)."""
    if os.path.lexists(path):
        raise ConfigError(f"{path} exists; a key file is never overwritten (losing a key "
                          "loses the backups sealed with it)")
    text = new_key_text()
    write_private(path, "# ovirt-backup encryption key (base64 of 32 random bytes); keep a "
                        "copy offline, with the engine's own backup\n" + text + "\n")
    return Key.from_text(text)


class Sealer:
    """How blobs of the providers sealed one way are sealed, and how every blob is opened."""

    def __init__(self, keys: Optional[KeyRing], encrypt: bool):
        self.keys, self.encrypt = keys, encrypt
        self._last: Optional[Tuple[VmBackup, VmBackup]] = None

    @property
    def ready(self) -> bool:
        """Whether it can seal: in clear always, encrypted with a key."""
        return not self.encrypt or self.keys is not None

    def describe(self) -> str:
        if not self.encrypt:
            return "in clear (compressed)"
        if self.keys is None:
            return "encrypted, but no key is set"
        return f"encrypted (AES-256-GCM) with key {self.keys.current.id}"

    def seal(self, vm: VmBackup) -> VmBackup:
        """``vm`` as providers sealed this way store it (the same object when in clear)."""
        if not self.encrypt or key_id_of(vm.blob):
            return vm
        if self.keys is None:
            raise ConfigError("no encryption key is set ([backup] encryption_key_file)")
        last = self._last
        if last is not None and last[0] is vm:
            return last[1]
        payload = payload_of(vm.blob)
        if payload is None:
            payload = pack(vm.ovf or open_blob(vm.blob, vm.ovf_hash))
        key = self.keys.current
        name = key.name(vm.ovf_hash)
        sealed = dataclasses.replace(vm, ovf_hash=name, blob=seal_encrypted(payload, key, name),
                                     ovf="")
        self._last = (vm, sealed)
        return sealed

    @property
    def writes_with(self) -> str:
        """The id of the key new blobs are sealed with; '' in clear (or without a key)."""
        return self.keys.current.id if self.encrypt and self.keys is not None else ""

    def holds_content(self, stored_name: str, plain_hash: str) -> bool:
        """Whether the blob stored as ``stored_name`` holds the OVF whose content hash is
        ``plain_hash``: the same name in clear, the keyed name under a key of the ring."""
        if stored_name == plain_hash:
            return True
        return self.keys is not None and any(k.name(plain_hash) == stored_name
                                             for k in self.keys.keys)

    def open(self, blob: bytes, name: str) -> Tuple[str, str]:
        """``(OVF text, id of the key it was sealed with or '')`` of the blob stored as
        ``name``; the errors of :func:`~ovirt_backup_plugin.ovf.open_blob`."""
        return open_blob(blob, name, keys=self.keys), key_id_of(blob)
