"""The plugin manager: one factory that registers built-in and third-party providers alike.

Built-in providers live in ``ovirt_backup_plugin.hooks`` (``hooks/`` of a checkout) and are
listed in :data:`BUILTIN_PROVIDERS`; third-party providers are entry points in the group
``ovirt_backup_plugin`` (the entry-point name is the provider name). Both go through the
same :func:`_register` path: import on demand, register under the provider name, report an
import failure with the provider's name and distribution, and check the provider against
the contract (:func:`check_provider`): what it declares it keeps decides which hooks it
must and must not implement.

Only enabled providers are imported, so a missing optional dependency (python-swiftclient)
cannot break a system that does not use that provider.
"""
from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass
from importlib import metadata
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import pluggy

from .. import __version__, hookspecs
from ..errors import ConfigError
from ..model import KEEPS_ENGINE, KEEPS_NOTHING, KEEPS_OVF, ProviderDeclaration
from ..names import PROJECT

__all__ = ["BUILTIN_PROVIDERS", "HIDDEN_PROVIDERS", "ProviderInfo", "installed_providers",
           "get_plugin_manager", "declaration_of", "check_provider", "implemented_hooks"]

#: name → module of every built-in provider.
BUILTIN_PROVIDERS: Dict[str, str] = {
    "localdb": "ovirt_backup_plugin.hooks.localdb",
    "msd": "ovirt_backup_plugin.hooks.msd",
    "swift": "ovirt_backup_plugin.hooks.swift",
    "s3": "ovirt_backup_plugin.hooks.s3",
    "noop": "ovirt_backup_plugin.hooks.noop",
    "debug": "ovirt_backup_plugin.hooks.debug",
}
#: Built-ins not shown to users unless asked for (``providers --all``).
HIDDEN_PROVIDERS = frozenset({"debug"})
DISTRIBUTION = "ovirt-backup-plugin"

#: What each kind of provider must implement, and must not.
REQUIRED: Dict[str, Tuple[str, ...]] = {
    KEEPS_OVF: ("write_ovf", "list_restorable", "read_ovf"),
    KEEPS_ENGINE: ("list_restorable", "restore_vm"),
    KEEPS_NOTHING: (),
}
FORBIDDEN: Dict[str, Tuple[str, ...]] = {
    KEEPS_OVF: ("restore_vm",),          # the host restores OVF copies, checked, itself
    KEEPS_ENGINE: ("write_ovf", "read_ovf", "carry_over"),
    KEEPS_NOTHING: ("list_restorable", "read_ovf", "restore_vm"),
}
#: Hooks that only make sense together.
PAIRS = (("describe_store", "claim_store"), ("list_generations", "forget_generations"))
_WHY = {
    KEEPS_OVF: "keeps OVF copies",
    KEEPS_ENGINE: "restores what the engine keeps",
    KEEPS_NOTHING: "keeps nothing restorable",
}


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
                                   name in HIDDEN_PROVIDERS, functools.partial(
                                       importlib.import_module, module))
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
                       extra: Iterable[Tuple[str, object]] = ()) -> pluggy.PluginManager:
    """A fresh manager with the hook specs and the ``enabled`` providers (all if None),
    each checked against the contract.

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
    origins: Dict[str, str] = {}
    for name in wanted:
        if name in providers and name not in extra_names:
            info = providers[name]
            _register(pm, name, info.load, info.distribution)
            origins[name] = info.distribution
    for name, plugin in extra:
        _register(pm, name, functools.partial(_same, plugin), "extra")
        origins[name] = "extra"
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as e:
        raise ConfigError(f"provider {pm.get_name(e.plugin)!r} implements a hook that does "
                          f"not exist: {e}") from e
    for name, origin in origins.items():
        check_provider(pm, name, origin)
    return pm


def _same(plugin: object) -> object:
    return plugin


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


def implemented_hooks(pm: pluggy.PluginManager, name: str) -> List[str]:
    """The hook names the provider registered as ``name`` implements."""
    plugin = pm.get_plugin(name)
    return [caller.name for caller in pm.get_hookcallers(plugin) or ()]


def declaration_of(pm: pluggy.PluginManager, name: str) -> ProviderDeclaration:
    """What the provider declares (``declare_provider``), or what its hooks imply."""
    plugin = pm.get_plugin(name)
    impls = [impl for impl in pm.hook.declare_provider.get_hookimpls() if impl.plugin is plugin]
    if impls:
        declared = impls[0].function()
        if not isinstance(declared, ProviderDeclaration):
            raise ConfigError(f'provider "{name}": declare_provider must return a '
                              f"ProviderDeclaration, not {type(declared).__name__}")
        if declared.keeps not in REQUIRED:
            raise ConfigError(f'provider "{name}" declares keeps={declared.keeps!r}; use one '
                              f"of {', '.join(REQUIRED)}")
        return declared
    hooks = set(implemented_hooks(pm, name))
    if {"write_ovf", "list_restorable", "read_ovf"} <= hooks:
        return ProviderDeclaration(keeps=KEEPS_OVF)
    if {"list_restorable", "restore_vm"} <= hooks and "write_ovf" not in hooks:
        return ProviderDeclaration(keeps=KEEPS_ENGINE)
    if "write_ovf" in hooks and "list_restorable" not in hooks:
        raise ConfigError(f'provider "{name}" stores OVFs (write_ovf) but cannot list them '
                          "(no list_restorable), so nothing it stores could be restored; "
                          "implement list_restorable and read_ovf, or declare "
                          "keeps='nothing' in declare_provider if it only observes backups")
    return ProviderDeclaration(keeps=KEEPS_NOTHING if not hooks & {
        "list_restorable", "read_ovf", "restore_vm"} else KEEPS_OVF)


def check_provider(pm: pluggy.PluginManager, name: str, origin: str = "") -> ProviderDeclaration:
    """The provider's declaration, once its hooks fit it; ConfigError naming what does not."""
    declaration = declaration_of(pm, name)
    hooks = set(implemented_hooks(pm, name))
    who = f'provider "{name}"' + (f" (from {origin})" if origin else "")
    why = _WHY[declaration.keeps]
    missing = [h for h in REQUIRED[declaration.keeps] if h not in hooks]
    if missing:
        raise ConfigError(f"{who} {why} but does not implement {', '.join(missing)}")
    extra = [h for h in FORBIDDEN[declaration.keeps] if h in hooks]
    if extra:
        raise ConfigError(f"{who} {why} and must not implement {', '.join(extra)}")
    if declaration.keeps == KEEPS_NOTHING and not hooks & {"before_backup", "write_ovf",
                                                             "after_backup"}:
        raise ConfigError(f"{who} implements no hook of a backup run")
    for one, other in PAIRS:
        if (one in hooks) != (other in hooks):
            have, lack = (one, other) if one in hooks else (other, one)
            raise ConfigError(f"{who} implements {have} but not {lack}; they go together")
    return declaration


def _dist_name(ep: metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return dist.metadata["Name"] if dist is not None else "?"


def provider_names(pm: pluggy.PluginManager, order: Sequence[str]) -> List[str]:
    """The registered providers of ``order``, in that order."""
    return [n for n in order if pm.get_plugin(n) is not None]
