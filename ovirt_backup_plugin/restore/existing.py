"""Which of the VMs a restore would create the engine has already (by id and by name).

For a few copies the engine is asked by search (``search=id=X or name=Y``, a batch of
terms per request: engine-facts B6), so planning or restoring one VM on an engine of
10,000 costs one small request; above :data:`LIST_ALL_ABOVE` lookups every VM is listed
once (``GET /vms``, names only), cheaper than hundreds of searches and kinder to the
engine's search cache (every distinct search text stays in it until a restart, B6).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Tuple

from ..engine import Engine, VmRef

__all__ = ["LIST_ALL_ABOVE", "ExistingVms"]

LIST_ALL_ABOVE = 200


@dataclass
class ExistingVms:
    by_id: Dict[str, VmRef] = field(default_factory=dict)
    by_name: Dict[str, List[VmRef]] = field(default_factory=dict)

    @classmethod
    def lookup(cls, engine: Engine, wanted: Iterable[Tuple[Optional[str], str]]) -> "ExistingVms":
        """``wanted``: (id or None when the copy gets a new one, name) of each copy."""
        ids, names = set(), set()
        for vm_id, name in wanted:
            if vm_id:
                ids.add(vm_id)
            names.add(name)
        out = cls()
        if not ids and not names:
            return out
        if len(ids) + len(names) > LIST_ALL_ABOVE:
            refs = [VmRef(i, n) for i, n in engine.vm_refs().items()]
        else:
            refs = engine.find_vms(sorted(ids), sorted(names))
        for ref in refs:
            out.by_id[ref.id] = ref
            out.by_name.setdefault(ref.name, []).append(ref)
        return out

    def with_id(self, vm_id: str) -> Optional[VmRef]:
        return self.by_id.get(vm_id)

    def named(self, name: str) -> List[VmRef]:
        return list(self.by_name.get(name, ()))
