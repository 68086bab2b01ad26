"""The composition root: settings → plugin manager → provider handles → engine adapter.

Every entry point builds what it needs here, and only here: the CLI's commands, the runner,
the demo, the provider contract suite and the tests. :meth:`Session.open` loads the
enabled providers (checked against the contract), parses each provider's section against
what it declared, and wraps each in a :class:`~.handle.ProviderHandle`.
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import pluggy

from .. import logs
from ..engine import Engine, EngineSettings
from ..errors import BackupError, ConfigError
from ..model import KEEPS_OVF, ProviderDeclaration, ProviderSettings
from .config import Config
from .handle import ProviderHandle
from .options import HostOptions, parse_section
from .plugins import declaration_of, get_plugin_manager
from .sealing import Sealer, load_keyring

log = logging.getLogger(__name__)

__all__ = ["Session", "make_handles"]


def make_handles(pm: pluggy.PluginManager, config: Config,
                 names: Optional[Sequence[str]] = None) -> List[ProviderHandle]:
    """Handles for the enabled providers (in the configured order), each with its section
    parsed against its declaration."""
    names = list(names) if names is not None else [n for n in config.providers
                                                   if pm.get_plugin(n) is not None]
    keys = load_keyring(config.backup_options)
    sealers = {False: Sealer(keys, False), True: Sealer(keys, True)}   # shared: seal once
    handles = []
    for name in names:
        declaration = declaration_of(pm, name)
        options, host = parse_section(name, declaration, config.provider_options.get(name, {}),
                                      default_scope=config.datacenter)
        settings = ProviderSettings(name=name, options=options, datacenter=host.datacenter,
                                    system=config.system, state_dir=config.state_dir)
        _mask_secrets(declaration, settings)
        handles.append(ProviderHandle(pm, name, settings, declaration, host,
                                      sealer=sealers[_encrypts(name, declaration, host)]))
    stray = sorted(set(config.provider_options) - set(config.providers))
    if stray:                  # a provider kept for later, or a typo in its name: say so
        log.warning("section(s) %s name no enabled provider ([backup] providers = %s); they "
                    "are not used", ", ".join(f"[provider:{n}]" for n in stray),
                    ", ".join(config.providers))
    return handles


def _encrypts(name: str, declaration: ProviderDeclaration, host: HostOptions) -> bool:
    """Whether the provider's blobs are sealed encrypted (see :mod:`.sealing`)."""
    if declaration.keeps != KEEPS_OVF:
        if host.encrypt:
            raise ConfigError(f"[provider:{name}] encrypt = yes: {name} keeps no OVF copies of "
                              "its own, so there is nothing to encrypt")
        return False
    return declaration.off_host if host.encrypt is None else host.encrypt


def _mask_secrets(declaration: ProviderDeclaration, settings: ProviderSettings) -> None:
    """The provider's declared secrets are masked in every log line (third-party loggers
    included); one that cannot be read now is reported when the provider reads it."""
    for option in declaration.options:
        if option.type == "secret":
            try:
                logs.mask(settings.secret(option.name))
            except ConfigError:
                pass


class Session:
    """What one command needs: settings, plugin manager, provider handles, engine adapter."""

    def __init__(self, config: Config, pm: pluggy.PluginManager,
                 handles: List[ProviderHandle], engine: Engine):
        self.config, self.pm, self.handles, self.engine = config, pm, handles, engine

    @classmethod
    def open(cls, config: Config, *,
             extra: Iterable[Tuple[str, object]] = ()) -> "Session":
        """Load the enabled providers of ``config`` (and ``extra`` ``(name, plugin)`` pairs,
        which are enabled too) and connect nothing yet."""
        extra = list(extra)
        names = list(dict.fromkeys(list(config.providers) + [n for n, _ in extra]))
        if names != list(config.providers):
            config = dataclasses.replace(config, providers=names)
        installed = [n for n in config.providers if n not in {e for e, _ in extra}]
        pm = get_plugin_manager(installed, extra=extra)
        return cls(config, pm, make_handles(pm, config), Engine(config.engine))

    @classmethod
    def for_engine(cls, settings: Optional[EngineSettings], *, system: str,
                   providers: Sequence[str], state_dir: str,
                   provider_options: Optional[Dict[str, Dict[str, str]]] = None,
                   extra: Iterable[Tuple[str, object]] = (), **backup: str) -> "Session":
        """A session without a settings file (the demo, the contract suite, tests)."""
        config = Config(engine=settings, system=system, providers=list(providers),
                        state_dir=state_dir, provider_options=provider_options or {},
                        backup_options=backup, datacenter=backup.get("datacenter") or None)
        return cls.open(config, extra=extra)

    def handle(self, name: str) -> ProviderHandle:
        for h in self.handles:
            if h.name == name:
                return h
        raise BackupError(f"provider {name!r} is not enabled ([backup] providers = "
                          f"{', '.join(self.config.providers) or 'none'})")

    def chosen(self, provider: Optional[str]) -> List[ProviderHandle]:
        """Every handle, or the one named (an error when it is not enabled)."""
        return list(self.handles) if provider is None else [self.handle(provider)]

    def close(self) -> None:
        self.engine.close()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
