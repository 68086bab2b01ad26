"""Runtime settings: one INI file (``--config``), read once, validated once.

::

    [engine]
    url = https://engine.example.com/ovirt-engine/api
    username = admin@internal
    password_file = /etc/ovirt-backup/engine-password   ; or: password_env = OVIRT_ENGINE_PASSWORD
    ca_file = /etc/pki/ovirt-engine/ca.pem               ; TLS is verified unless --insecure
    timeout = 300
    page_size = 100

    [backup]
    system = engine.example.com      ; the name this engine's backups go under (default: URL host)
    providers = localdb, swift       ; enabled providers; empty = none (the noop provider)
    datacenter =                     ; default scope; empty = every data center
    state_dir = /var/lib/ovirt-backup
    workers =                        ; processes reading pages and parsing OVFs (default:
                                     ; one per core, at most 4; 0: all in one process)
    mode = auto                      ; auto: incremental when it is safe; full: always sweep
    full_every = 24h                 ; auto: a full sweep at least this often
    alerts = yes                     ; warn in the engine's Events tab (backup/health.py)
    alert_after_skips = 3            ; ... when a VM was skipped in more runs in a row
    metrics_file =                   ; a node_exporter textfile (backup/metrics.py)

    encryption_key_file = /etc/ovirt-backup/backup.key   ; or encryption_key_env = VAR:
                                     ; seals what encrypted providers store (see sealing.py)
    encryption_old_key_files =       ; earlier keys, still read (rotation)

    [provider:localdb]
    path = /var/lib/ovirt-backup/catalog.sqlite
    datacenter = Production          ; this provider's own scope
    keep_last = 30                   ; prune: keep the newest 30 generations ...
    keep_within = 90d                ; ... and all younger than 90 days (see retention.py)

Passwords and keys are never read from the file itself nor from the command line: only
from a file (``*_file``) or an environment variable (``*_env``).
"""
from __future__ import annotations

import configparser
import datetime as dt
import difflib
import os
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Optional

from .. import durations, logs
from ..engine import EngineSettings
from ..errors import ConfigError
from .options import SECRET_WORDS

DEFAULT_PROVIDERS = ("localdb",)          # the embedded default
DEFAULT_PASSWORD_ENV = "OVIRT_ENGINE_PASSWORD"
#: The keys each fixed section takes: anything else is a typo, and a clear error.
ENGINE_KEYS = ("url", "username", "password_file", "password_env", "ca_file", "insecure",
               "timeout", "page_size", "retries", "retry_delay")
BACKUP_KEYS = ("system", "providers", "datacenter", "state_dir", "events", "workers", "mode",
               "full_every", "encryption_key_file", "encryption_key_env",
               "encryption_old_key_files", "alerts", "alert_after_skips", "metrics_file")
SECTIONS = ("engine", "backup")


def default_state_dir() -> str:
    env = os.environ.get("OVIRT_BACKUP_STATE_DIR")
    if env:
        return env
    if os.geteuid() == 0 and Path("/var/lib").is_dir():
        return "/var/lib/ovirt-backup"
    return str(Path.home() / ".local" / "state" / "ovirt-backup")


@dataclass(frozen=True)
class Config:
    engine: Optional[EngineSettings]
    system: str
    providers: List[str]
    datacenter: Optional[str] = None
    state_dir: str = field(default_factory=default_state_dir)
    provider_options: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    backup_options: Mapping[str, str] = field(default_factory=dict)

    @property
    def workers(self) -> Optional[int]:
        """``[backup] workers``: processes reading pages and parsing OVFs (0: none)."""
        value = self.backup_options.get("workers")
        if value in (None, ""):
            return None
        try:
            return max(0, int(value))
        except ValueError:
            raise ConfigError(f"[backup] workers = {value!r}: give a number (0: none)") from None

    @property
    def mode(self) -> str:
        """``[backup] mode``: ``auto`` (incremental when it is safe) or ``full`` (sweep)."""
        value = str(self.backup_options.get("mode") or "auto").strip().lower()
        if value not in ("auto", "full"):
            raise ConfigError(f"[backup] mode = {value!r}: use auto (incremental when it is "
                              "safe) or full (read every VM on every run)")
        return value

    @property
    def full_every(self) -> dt.timedelta:
        """``[backup] full_every``: in ``auto`` mode, a full sweep at least this often."""
        value = self.backup_options.get("full_every") or "24h"
        try:
            every = durations.parse_duration(str(value))
        except ValueError as e:
            raise ConfigError(f"[backup] full_every = {value!r}: {e}") from None
        if every <= dt.timedelta(0):
            raise ConfigError(f"[backup] full_every = {value!r}: give a duration such as 24h")
        return every


def load_config(path: Optional[str] = None, *, insecure: bool = False,
                overrides: Optional[Dict[str, str]] = None) -> Config:
    """Read settings from ``path`` (or ``$OVIRT_BACKUP_CONFIG``); no file means defaults."""
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=(";", "#"))
    path = path or os.environ.get("OVIRT_BACKUP_CONFIG")
    if path:
        if not os.path.isfile(path):
            raise ConfigError(f"configuration file {path} does not exist")
        try:
            parser.read(path, encoding="utf-8")
        except configparser.Error as e:
            raise ConfigError(f"{path}: {e}") from None
    _check_sections(parser, path)
    backup = dict(parser["backup"]) if parser.has_section("backup") else {}
    backup.update({k: v for k, v in (overrides or {}).items() if v is not None})
    engine = _engine_settings(parser, insecure, path)

    if "providers" in backup:
        providers = [p.strip() for p in backup["providers"].replace(",", " ").split() if p.strip()]
    else:
        providers = list(DEFAULT_PROVIDERS)
    if not providers:
        providers = ["noop"]

    provider_options = {}
    for section in parser.sections():
        if section.startswith("provider:"):
            name = section.split(":", 1)[1].strip()
            provider_options[name] = dict(parser[section])

    system = backup.get("system") or (urllib.parse.urlsplit(engine.url).hostname
                                      if engine else None) or "default"
    return Config(engine=engine, system=system, providers=providers,
                  datacenter=backup.get("datacenter") or None,
                  state_dir=os.path.expanduser(backup.get("state_dir") or default_state_dir()),
                  provider_options=provider_options, backup_options=backup)


def _engine_settings(parser: configparser.ConfigParser, insecure: bool,
                     path: Optional[str]) -> Optional[EngineSettings]:
    section = dict(parser["engine"]) if parser.has_section("engine") else {}
    url = section.get("url") or os.environ.get("OVIRT_ENGINE_URL")
    if not url:
        return None
    _refuse_inline_secrets(section, "[engine]")
    password = None
    if section.get("password_file"):
        pw_path = os.path.expanduser(section["password_file"])
        try:
            with open(pw_path, encoding="utf-8") as f:
                password = f.read().strip()
        except OSError as e:
            raise ConfigError(f"cannot read the engine password file {pw_path}: {e.strerror}") from None
    else:
        password = os.environ.get(section.get("password_env") or DEFAULT_PASSWORD_ENV)
    logs.mask(password)
    insecure = insecure or _bool(section.get("insecure", "false"))
    try:
        return EngineSettings(
            url=url.rstrip("/"),
            username=section.get("username", "admin@internal"),
            password=password,
            ca_file=section.get("ca_file") or None,
            insecure=insecure,
            timeout=int(section.get("timeout", 300)),
            page_size=int(section.get("page_size", 100)),
            retries=int(section.get("retries", 2)),
            retry_delay=float(section.get("retry_delay", 1.0)))
    except ValueError as e:
        raise ConfigError(f"{path or 'settings'} [engine]: {e}") from None


def _check_sections(parser: configparser.ConfigParser, path: Optional[str]) -> None:
    for section in parser.sections():
        if section.startswith("provider:"):
            continue                      # checked against the provider's declaration
        if section not in SECTIONS:
            close = difflib.get_close_matches(section, SECTIONS, n=1)
            hint = f"; did you mean [{close[0]}]?" if close else ""
            raise ConfigError(f"{path}: unknown section [{section}]{hint} (sections: "
                              "[engine], [backup], [provider:NAME])")
        keys = ENGINE_KEYS if section == "engine" else BACKUP_KEYS
        for key in parser[section]:
            if key in keys:
                continue
            if section == "engine":
                _refuse_inline_secrets({key: ""}, "[engine]")
            if section == "backup" and key in ("encryption_key", "encryption_old_keys"):
                raise ConfigError(f"{path}: [backup] sets {key!r} inline; use "
                                  "encryption_key_file (a file only the backup user can read) "
                                  "or encryption_key_env, and encryption_old_key_files")
            close = difflib.get_close_matches(key, keys, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{path}: [{section}] has an unknown key {key!r}{hint} "
                              f"([{section}] takes: {', '.join(keys)})")


def _refuse_inline_secrets(options: Mapping[str, str], where: str) -> None:
    for key in options:
        if key in SECRET_WORDS:
            raise ConfigError(f"{where} sets {key!r} inline; use {key}_file (a file only the "
                              f"backup user can read) or {key}_env (an environment variable)")


def _bool(value: str) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")
