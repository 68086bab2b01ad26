"""The host side of the hooks: one typed handle per enabled provider.

A :class:`ProviderHandle` has one method per hook (tox's habit): callers never name a hook
by string, and mypy checks every call. The handle calls that provider's implementation and
no other one (pluggy's ``subset_hook_caller``), with that provider's settings, and owns the
policy around the call: transient failures are retried with back-off, every failure is
logged and turned into an error that names the provider, and an OVF handed back by
``read_ovf`` is checked before anyone uses it (:meth:`ProviderHandle.read_checked`).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

import pluggy

from ..engine import Engine
from ..errors import BackupError, OvfError, ProviderError
from ..model import (
    KEEPS_ENGINE,
    KEEPS_OVF,
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
    VmIdentity,
)
from ..ovf import HashMismatch, KeyMissing, parse_ovf
from .options import HostOptions
from .sealing import Sealer

log = logging.getLogger(__name__)

__all__ = ["ProviderHandle", "CheckedOvf", "quiet"]


def quiet(_text: str) -> None:
    """A ``note`` that drops what it is told."""


@dataclass(frozen=True)
class CheckedOvf:
    """A stored OVF that passed the backup-time checks again: its text and what it says."""

    text: str
    identity: VmIdentity
    key_id: str = ""                       # the key it was encrypted with ('' : in clear)


class ProviderHandle:
    """Calls one provider's hook implementations, and only that provider's."""

    def __init__(self, pm: pluggy.PluginManager, name: str, settings: ProviderSettings,
                 declaration: ProviderDeclaration, host: Optional[HostOptions] = None,
                 sleep: Callable[[float], None] = time.sleep, sealer: Optional[Sealer] = None):
        self.pm = pm
        self.name = name
        self.settings = settings
        self.declaration = declaration
        self.host = host or HostOptions(datacenter=settings.datacenter)
        self._plugin = pm.get_plugin(name)
        if self._plugin is None:
            raise BackupError(f"provider {name!r} is not registered")
        self._callers: Dict[str, Any] = {}
        self._sleep = sleep
        self.sealer = sealer or Sealer(None, False)

    # -- what the provider is ------------------------------------------------------------
    @property
    def keeps_ovf(self) -> bool:
        return self.declaration.keeps == KEEPS_OVF

    @property
    def registers(self) -> bool:
        """Whether it restores what it lists itself (``restore_vm``), not from an OVF."""
        return self.declaration.keeps == KEEPS_ENGINE

    def implements(self, hook: str) -> bool:
        return any(impl.plugin is self._plugin
                   for impl in getattr(self.pm.hook, hook).get_hookimpls())

    # -- the calls -----------------------------------------------------------------------
    def _caller(self, hook: str) -> Any:
        caller = self._callers.get(hook)
        if caller is None:
            others = [p for _, p in self.pm.list_name_plugin()
                      if p is not None and p is not self._plugin]
            caller = self.pm.subset_hook_caller(hook, remove_plugins=others)
            self._callers[hook] = caller
        return caller

    def _call(self, hook: str, *, retry: bool = True, **kwargs: Any) -> Any:
        """Call ``hook`` on this provider; retry transient errors; name the provider in
        errors. Returns its result (None when it does not implement the hook)."""
        attempts = 1 + (self.host.retries if retry else 0)
        delay = self.host.retry_delay
        for attempt in range(1, attempts + 1):
            try:
                result = self._caller(hook)(settings=self.settings, **kwargs)
                return result[0] if result else None     # one provider: one result
            except ProviderError as e:
                if not e.transient or attempt == attempts:
                    raise ProviderError(f"{self.name}: {e}", transient=e.transient,
                                        partial=e.partial) from e
                delay = max(delay, e.retry_after)
                log.warning("provider %s: %s failed (%s); retry %d of %d in %.1fs",
                            self.name, hook, e, attempt, attempts - 1, delay)
                self._sleep(delay)
                delay *= 2
            except BackupError:
                raise              # engine, OVF and settings errors carry their own message
            except Exception as e:
                log.debug("provider %s: %s raised", self.name, hook, exc_info=True)
                raise ProviderError(f"{self.name}: {hook} failed: {type(e).__name__}: {e}") from e
        raise AssertionError("unreachable")

    def before_backup(self, run: Run, engine: Engine, note: Note = quiet) -> object:
        return self._call("before_backup", run=run, engine=engine, note=note)

    def carry_over(self, run: Run, state: object, items: List[Restorable]) -> List[str]:
        result = self._call("carry_over", run=run, state=state, items=items)
        return [str(vm_id) for vm_id in result or ()]

    def check_sealing(self, engine: Engine, note: Note = quiet) -> None:
        """Before a backup writes anything: a provider sealed encrypted needs a key, and
        one whose newest stored blob is sealed with a key the ring does not hold (a wrong
        key file, an old key dropped too early) is refused, so that nothing is written."""
        if not self.sealer.encrypt:
            if self.declaration.off_host and self.keeps_ovf:
                note("stores in clear off this host (encrypt = no)")
            return
        if self.sealer.keys is None:
            raise ProviderError(
                f"{self.name}: its store is sealed encrypted (encrypt = yes"
                f"{', the default for a store off this host' if self.host.encrypt is None else ''})"
                ", but no encryption key is set: set [backup] encryption_key_file (make one "
                "with 'ovirt-backup keygen FILE'; see the README, Security), or encrypt = no "
                f"in [provider:{self.name}] to store in clear. Nothing was written to it")
        newest = self.list_restorable(Query(limit=1), engine)
        if newest:
            from_blob = self.read_ovf(newest[0])
            try:
                self.sealer.open(from_blob, newest[0].ovf_hash)
            except KeyMissing as e:
                raise ProviderError(
                    f"{self.name}: its newest backup (generation {newest[0].generation}) is "
                    f"encrypted with key {e.key_id}, which the key ring does not hold "
                    f"(it holds {', '.join(self.sealer.keys.ids)}): a wrong "
                    "encryption_key_file? After a rotation, list the old key in [backup] "
                    "encryption_old_key_files. Nothing was written to it") from None
            except OvfError:
                pass                        # damaged, not a key problem: check reports it
        note(f"blobs sealed {self.sealer.describe()}")

    def write_ovf(self, run: Run, state: object, vm: VmBackup) -> Optional[bool]:
        vm = self.sealer.seal(vm)              # encrypted stores get the encrypted blob
        result = self._call("write_ovf", run=run, state=state, vm=vm)
        return None if result is None else bool(result)

    def after_backup(self, run: Run, state: object, engine: Engine, outcome: BackupOutcome,
                     note: Note = quiet) -> None:
        self._call("after_backup", run=run, state=state, engine=engine, outcome=outcome,
                   note=note)

    def list_restorable(self, query: Query, engine: Engine) -> List[Restorable]:
        items = self._call("list_restorable", query=query, engine=engine) or []
        return list(items)

    def read_ovf(self, item: Restorable) -> bytes:
        blob = self._call("read_ovf", item=item)
        if blob is None:
            raise ProviderError(f"{self.name}: read_ovf gave nothing for VM {item.name}")
        if isinstance(blob, str):              # a provider that kept the text as it was
            blob = blob.encode("utf-8", "surrogateescape")
        return bytes(blob)

    def read_checked(self, item: Restorable) -> CheckedOvf:
        """The stored OVF of ``item``, opened and checked as at backup: its content hash,
        the size limit and the hardened parser. A damaged or hostile copy is refused with
        the VM, the generation and the provider named."""
        where = f"VM {item.name} ({item.vm_id}), generation {item.generation}, in {self.name}"
        blob = self.read_ovf(item)
        try:
            text, key_id = self.sealer.open(blob, item.ovf_hash)
        except KeyMissing as e:
            raise ProviderError(f"the stored OVF of {where} cannot be decrypted: {e}; set "
                                "[backup] encryption_key_file to its key, or list it in "
                                "encryption_old_key_files") from None
        except HashMismatch as e:
            raise ProviderError(f"the stored OVF of {where} is corrupted: {e}") from None
        except OvfError as e:
            raise ProviderError(f"the stored OVF of {where} is unusable: {e}") from None
        try:
            identity = parse_ovf(text)
        except OvfError as e:
            raise OvfError(f"the stored OVF of {where} is refused: {e}") from None
        return CheckedOvf(text=text, identity=identity, key_id=key_id)

    def restore_vm(self, request: RestoreRequest, engine: Engine) -> RestoreResult:
        result = self._call("restore_vm", retry=False, request=request, engine=engine)
        if not isinstance(result, RestoreResult):
            raise ProviderError(f"{self.name} did not restore {request.item.name}")
        return result

    def describe_store(self) -> Optional[StoreInfo]:
        if not self.implements("describe_store"):
            return None
        result = self._call("describe_store")
        return result if isinstance(result, StoreInfo) else None

    def claim_store(self, owner: EngineIdentity, fresh: bool, note: Note = quiet) -> None:
        self._call("claim_store", owner=owner, fresh=fresh, note=note)

    def list_generations(self) -> List[GenerationInfo]:
        return list(self._call("list_generations") or [])

    def forget_generations(self, generations: List[str]) -> PruneResult:
        result = self._call("forget_generations", generations=generations)
        return result if isinstance(result, PruneResult) else PruneResult()

    def inventory_store(self) -> StoreInventory:
        result = self._call("inventory_store")
        if not isinstance(result, StoreInventory):
            raise ProviderError(f"{self.name}: inventory_store gave no StoreInventory")
        return result
