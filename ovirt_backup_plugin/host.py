"""The host side of the hooks: one typed handle per enabled provider.

The host calls each provider on its own (pluggy's ``subset_hook_caller``), with that
provider's settings, and owns the policy around the call: transient failures are retried
with back-off, every failure is logged and turned into a :class:`ProviderError` that names
the provider. Providers never see each other's failures.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable, Dict, List, Optional

import pluggy

from .config import Config
from .errors import BackupError, ProviderError
from .model import ProviderSettings

log = logging.getLogger(__name__)

DEFAULT_RETRIES = 2          # extra attempts after a transient failure
DEFAULT_RETRY_DELAY = 0.5    # seconds, doubled per attempt


class ProviderHandle:
    """Calls one provider's hook implementations, and only that provider's."""

    def __init__(self, pm: pluggy.PluginManager, name: str, settings: ProviderSettings,
                 sleep: Callable[[float], None] = time.sleep):
        self.pm = pm
        self.name = name
        self.settings = settings
        self._plugin = pm.get_plugin(name)
        if self._plugin is None:
            raise BackupError(f"provider {name!r} is not registered")
        self._callers: Dict[str, Any] = {}
        self._sleep = sleep
        self.retries = int(settings.get("retries", DEFAULT_RETRIES))
        self.retry_delay = float(settings.get("retry_delay", DEFAULT_RETRY_DELAY))

    def implements(self, hook: str) -> bool:
        return any(impl.plugin is self._plugin
                   for impl in getattr(self.pm.hook, hook).get_hookimpls())

    def _caller(self, hook: str):
        caller = self._callers.get(hook)
        if caller is None:
            others = [p for _, p in self.pm.list_name_plugin()
                      if p is not None and p is not self._plugin]
            caller = self.pm.subset_hook_caller(hook, remove_plugins=others)
            self._callers[hook] = caller
        return caller

    def call(self, hook: str, *, retry: bool = True, **kwargs) -> Any:
        """Call ``hook`` on this provider; retry transient errors; name the provider in errors.

        Returns the provider's result (for non-firstresult hooks the single result, or None
        when the provider does not implement the hook).
        """
        attempts = 1 + (self.retries if retry else 0)
        delay = self.retry_delay
        for attempt in range(1, attempts + 1):
            try:
                result = self._caller(hook)(settings=self.settings, **kwargs)
                if getattr(self.pm.hook, hook).spec.opts.get("firstresult"):
                    return result
                return result[0] if result else None   # one provider: one result
            except ProviderError as e:
                if not e.transient or attempt == attempts:
                    raise ProviderError(f"{self.name}: {e}", transient=e.transient) from e
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


def provider_handles(pm: pluggy.PluginManager, config: Config,
                     names: Optional[List[str]] = None) -> List[ProviderHandle]:
    """Handles for the enabled providers (in the configured order)."""
    names = names if names is not None else [n for n in config.providers if pm.get_plugin(n)]
    return [ProviderHandle(pm, n, config.provider_settings(n)) for n in names]


def as_messages(result) -> List[str]:
    if result is None:
        return []
    if isinstance(result, str):
        return [result]
    return [str(m) for m in result]
