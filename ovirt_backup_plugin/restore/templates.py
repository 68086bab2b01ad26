"""Templates a restore needs: registering a VM from a storage domain needs its template.

``POST /vms`` with an OVF forces the Blank template, so only a registering provider
(``msd``) needs the VM's template on the engine, or among the templates restored first in
the same run. :class:`TemplateCheck` applies that rule during a restore and in its plan.
"""
from __future__ import annotations

from typing import Optional, Set

from ..engine import Engine
from ..model import Restorable

__all__ = ["BLANK", "TemplateCheck", "needed_template"]

BLANK = "00000000-0000-0000-0000-000000000000"     # the Blank template's id


def needed_template(item: Restorable) -> str:
    """The template id a restore of ``item`` needs on the engine ('' when none is needed)."""
    if item.kind != "vm" or not item.registers or item.identity is None:
        return ""
    template_id = item.identity.template_id
    return "" if template_id in ("", BLANK) else template_id


class TemplateCheck:
    """Whether a VM's template is there when it is registered: on the engine (one
    ``GET /templates``, read when first needed) or restored earlier in the same run."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.restored: Set[str] = set()
        self._on_engine: Optional[Set[str]] = None

    def restored_ok(self, item: Restorable) -> None:
        if item.kind == "template":
            self.restored.add(item.vm_id)

    def missing(self, item: Restorable) -> Optional[str]:
        """Why ``item`` cannot be registered for want of its template, or None."""
        template_id = needed_template(item)
        if not template_id or template_id in self.restored:
            return None
        if self._on_engine is None:
            self._on_engine = {t.id for t in self.engine.templates()}
        if template_id in self._on_engine:
            return None
        return (f"its template {template_id} is neither on the engine nor restored in this "
                "run; register or restore that template first (name it together with the VM)")
