"""oVirt VM configuration (OVF) backup and restore with pluggable backup providers.

A provider is a module or object with ``@hookimpl`` functions::

    from ovirt_backup_plugin import hookimpl

    @hookimpl
    def write_ovf(run, vm, settings):
        ...
"""
import pluggy

from .names import PROJECT

__version__ = "0.1.0"

#: Marker for hook implementations in providers (built-in and third-party).
hookimpl = pluggy.HookimplMarker(PROJECT)

__all__ = ["hookimpl", "PROJECT", "__version__"]
