"""A provider's ``[provider:NAME]`` section: its declared options, and the host's own keys.

The host's keys (:data:`HOST_KEYS`) are applied by the host and never reach the provider;
every other key must be one of the options the provider declared
(:class:`~ovirt_backup_plugin.model.ProviderDeclaration`), so that a typo is a clear error
naming the section, the key and the closest valid one. Values are parsed by their declared
type; secret options are accepted only as ``NAME_file`` or ``NAME_env``.
"""
from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

from ..durations import parse_duration
from ..errors import ConfigError
from ..model import OPTION_TYPES, Option, ProviderDeclaration

__all__ = ["HOST_KEYS", "HostOptions", "parse_section", "SECRET_WORDS"]

#: Keys of a ``[provider:NAME]`` section that the host applies itself.
HOST_KEYS: Dict[str, str] = {
    "datacenter": "back up only this data center (default: the [backup] scope, or all)",
    "retries": "extra attempts after a transient failure of this provider (default 2)",
    "retry_delay": "seconds before the first retry, doubled per attempt (default 0.5)",
    "keep_last": "prune: keep the newest N generations",
    "keep_within": "prune: keep generations younger than this (30d, 12h, 6mo)",
    "encrypt": "seal what it stores encrypted, with [backup] encryption_key_file (yes/no; "
               "default yes for providers that store off this host, no for the others)",
}
#: Words that are secrets whatever a section declares: never written inline.
SECRET_WORDS = ("password", "key", "token", "secret")
DEFAULT_RETRIES = 2
DEFAULT_RETRY_DELAY = 0.5


@dataclass(frozen=True)
class HostOptions:
    """What the host itself takes from a provider's section."""

    datacenter: Optional[str] = None
    retries: int = DEFAULT_RETRIES
    retry_delay: float = DEFAULT_RETRY_DELAY
    retention: Mapping[str, str] = field(default_factory=dict)   # keep_last, keep_within
    encrypt: Optional[bool] = None         # None: the default (yes when the store is off-host)


def _convert(section: str, option: Option, key: str, value: str) -> Any:
    text = value.strip()
    kind = option.type
    try:
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
        if kind == "bool":
            lowered = text.lower()
            if lowered in ("1", "yes", "true", "on"):
                return True
            if lowered in ("0", "no", "false", "off"):
                return False
            raise ValueError("use yes or no")
        if kind == "duration":
            return parse_duration(text, bare_seconds=True).total_seconds()
        if kind == "path":
            return os.path.expanduser(text)
        return text
    except ValueError as e:
        raise ConfigError(f"[{section}] {key} = {value!r}: {e}") from None


def _accepted(declaration: ProviderDeclaration) -> Dict[str, Option]:
    accepted: Dict[str, Option] = {}
    for option in declaration.options:
        if option.type not in OPTION_TYPES:
            raise ConfigError(f"option {option.name!r} has an unknown type {option.type!r} "
                              f"(one of {', '.join(OPTION_TYPES)})")
        if option.type == "secret":
            accepted[option.name + "_file"] = Option(option.name + "_file", "path",
                                                     help=f"file holding the {option.name}")
            accepted[option.name + "_env"] = Option(option.name + "_env", "str",
                                                    help=f"variable holding the {option.name}")
        else:
            accepted[option.name] = option
    return accepted


def parse_section(name: str, declaration: ProviderDeclaration, raw: Mapping[str, str],
                  *, default_scope: Optional[str] = None) -> Tuple[Dict[str, Any], HostOptions]:
    """``(options, host options)`` of ``[provider:name]``; ConfigError for a bad key."""
    section = f"provider:{name}"
    accepted = _accepted(declaration)
    secrets = {o.name for o in declaration.options if o.type == "secret"}
    options: Dict[str, Any] = {o.name: o.default for o in accepted.values()}
    host: Dict[str, str] = {}
    for key, value in raw.items():
        if key in HOST_KEYS:
            host[key] = value
        elif key in accepted:
            options[key] = _convert(section, accepted[key], key, value)
        elif key in secrets or key in SECRET_WORDS:
            raise ConfigError(f"[{section}] sets {key!r} inline; use {key}_file (a file only "
                              f"the backup user can read) or {key}_env (an environment "
                              "variable)")
        else:
            valid = sorted(set(accepted) | set(HOST_KEYS))
            close = difflib.get_close_matches(key, valid, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"[{section}] has an unknown key {key!r}{hint} (provider {name} "
                              f"takes: {', '.join(valid)})")
    return options, _host_options(section, host, default_scope)


def _host_options(section: str, host: Mapping[str, str],
                  default_scope: Optional[str]) -> HostOptions:
    try:
        retries = int(host.get("retries", DEFAULT_RETRIES))
        delay = float(host.get("retry_delay", DEFAULT_RETRY_DELAY))
    except ValueError as e:
        raise ConfigError(f"[{section}] retries / retry_delay: {e}") from None
    if retries < 0 or delay < 0:
        raise ConfigError(f"[{section}] retries and retry_delay must be 0 or more")
    encrypt = None
    if "encrypt" in host:
        value = host["encrypt"].strip().lower()
        if value not in ("1", "yes", "true", "on", "0", "no", "false", "off"):
            raise ConfigError(f"[{section}] encrypt = {host['encrypt']!r}: use yes or no")
        encrypt = value in ("1", "yes", "true", "on")
    return HostOptions(datacenter=(host.get("datacenter") or "").strip() or default_scope,
                       retries=retries, retry_delay=delay, encrypt=encrypt,
                       retention={k: host[k] for k in ("keep_last", "keep_within") if k in host})


def describe_options(declaration: ProviderDeclaration) -> List[Tuple[str, str]]:
    """``(key, help)`` of every key a section of this provider takes (for ``providers``)."""
    own = [(key, option.help) for key, option in _accepted(declaration).items()]
    return own + sorted(HOST_KEYS.items())
