"""The plugin manager: one factory that registers built-in and third-party providers alike.

Built-in providers live in ``ovirt_backup_plugin.hooks`` and are listed in
:data:`BUILTIN_PROVIDERS`; third-party providers are entry points in the group
``ovirt_backup_plugin`` (the entry-point name is the provider name). Both go through the
same :func:`_register` path: import on demand, register under the provider name, report an
import failure with the provider's name and distribution.

Only enabled providers are imported, so a missing optional dependency (python-swiftclient)
cannot break a system that does not use that provider.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib import metadata
from typing import Callable, Dict, Iterable, Optional

import pluggy

from . import __version__, hookspecs
from .errors import ConfigError
from .names import PROJECT

#: name → module of every built-in provider.
BUILTIN_PROVIDERS: Dict[str, str] = {
    "localdb": "ovirt_backup_plugin.hooks.localdb",
    "msd": "ovirt_backup_plugin.hooks.msd",
    "swift": "ovirt_backup_plugin.hooks.swift",
    "noop": "ovirt_backup_plugin.hooks.noop",
    "debug": "ovirt_backup_plugin.hooks.debug",
}
#: Built-ins not shown to users unless asked for (``providers --all``).
HIDDEN_PROVIDERS = frozenset({"debug"})
DISTRIBUTION = "ovirt-backup-plugin"


@dataclass(frozen=True)
class ProviderInfo:
    name: str
    module: str
    distribution: str
    version: str
    builtin: bool
    hidden: bool
    load: Callable[[], object]


def installed_providers() -> Dict[str, ProviderInfo]:
    """Every installed provider, built-in and third-party, without importing any."""
    found: Dict[str, ProviderInfo] = {}
    for name, module in BUILTIN_PROVIDERS.items():
        found[name] = ProviderInfo(name, module, DISTRIBUTION, __version__, True,
                                   name in HIDDEN_PROVIDERS,
                                   lambda module=module: importlib.import_module(module))
    for ep in metadata.entry_points(group=PROJECT):
        if ep.name in found:
            if found[ep.name].builtin and ep.value == found[ep.name].module:
                continue
            raise ConfigError(f"provider name {ep.name!r} is taken twice: by {found[ep.name].module}"
                              f" and by {ep.value} ({_dist_name(ep)})")
        dist = ep.dist
        found[ep.name] = ProviderInfo(ep.name, ep.value, _dist_name(ep),
                                      dist.version if dist else "?", False, False, ep.load)
    return found


def get_plugin_manager(enabled: Optional[Iterable[str]] = None,
                       extra: Iterable[tuple] = ()) -> pluggy.PluginManager:
    """A fresh manager with the hook specs and the ``enabled`` providers (all if None).

    ``extra`` is ``(name, plugin)`` pairs registered the same way (tests, embedding).
    """
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    extra = list(extra)
    extra_names = {name for name, _ in extra}
    providers = installed_providers()
    wanted = list(providers) if enabled is None else list(dict.fromkeys(enabled))
    unknown = [n for n in wanted if n not in providers and n not in extra_names]
    if unknown:
        raise ConfigError(f"unknown provider(s): {', '.join(unknown)}; installed: "
                          f"{', '.join(sorted(n for n in providers if n not in HIDDEN_PROVIDERS))}")
    for name in wanted:
        if name in providers and name not in extra_names:
            info = providers[name]
            _register(pm, name, info.load, info.distribution)
    for name, plugin in extra:
        _register(pm, name, lambda plugin=plugin: plugin, "extra")
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as e:
        raise ConfigError(f"provider {pm.get_name(e.plugin)!r} implements a hook that does "
                          f"not exist: {e}") from e
    return pm


def _register(pm: pluggy.PluginManager, name: str, load: Callable[[], object], dist: str) -> None:
    try:
        plugin = load()
    except Exception as e:
        raise ConfigError(f'error importing provider "{name}" (from {dist}): '
                          f"{type(e).__name__}: {e}") from e
    try:
        pm.register(plugin, name=name)
    except (ValueError, pluggy.PluginValidationError) as e:
        raise ConfigError(f'provider "{name}" (from {dist}) is invalid: {e}') from e


def _dist_name(ep) -> str:
    dist = getattr(ep, "dist", None)
    return dist.metadata["Name"] if dist is not None else "?"
