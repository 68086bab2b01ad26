"""oVirt VM configuration (OVF) backup and restore with pluggable backup providers.

A provider is a module or object with ``@hookimpl`` functions (see :mod:`.hookspecs`)::

    from ovirt_backup_plugin import hookimpl

    @hookimpl
    def write_ovf(run, state, vm, settings):
        ...

The built-in providers live in ``hooks/`` at the top of a checkout and are installed as
``ovirt_backup_plugin.hooks``; from a checkout that is not installed, that name is mapped to
``hooks/`` here, so both import the same way.
"""
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from pathlib import Path
from typing import Optional, Sequence

import pluggy

from .names import PROJECT
from .private import check_private, private_dir, private_file, write_private

__version__ = "0.2.0"

#: Marker for hook implementations in providers (built-in and third-party).
hookimpl = pluggy.HookimplMarker(PROJECT)

__all__ = ["hookimpl", "PROJECT", "__version__", "private_dir", "private_file", "write_private",
           "check_private"]

_CHECKOUT = Path(__file__).resolve().parent.parent
_HOOKS = _CHECKOUT / "hooks"


class _CheckoutHooks(importlib.abc.MetaPathFinder):
    """Finds ``ovirt_backup_plugin.hooks`` in ``hooks/`` of a source checkout. It is asked
    last, so an installed (or editable) copy always wins."""

    def find_spec(self, fullname: str, path: Optional[Sequence[str]],
                  target: object = None) -> Optional[importlib.machinery.ModuleSpec]:
        if fullname != __name__ + ".hooks":
            return None
        return importlib.util.spec_from_file_location(
            fullname, _HOOKS / "__init__.py", submodule_search_locations=[str(_HOOKS)])


if (_HOOKS / "__init__.py").is_file() and (_CHECKOUT / "setup.cfg").is_file() and not any(
        isinstance(f, _CheckoutHooks) for f in sys.meta_path):
    sys.meta_path.append(_CheckoutHooks())
