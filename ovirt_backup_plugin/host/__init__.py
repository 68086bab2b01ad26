"""The host: everything between the commands and the providers.

* :mod:`.plugins` -- the plugin manager; providers checked against the contract;
* :mod:`.options` -- a provider's section parsed against what it declared;
* :mod:`.handle` -- :class:`ProviderHandle`, the typed facade over one provider's hooks
  (retries, error wrapping, checking what a provider hands back);
* :mod:`.config` -- the settings file;
* :mod:`.session` -- :class:`Session`, the composition root every entry point uses.
"""
from .config import Config, load_config
from .handle import CheckedOvf, ProviderHandle, quiet
from .session import Session, make_handles

__all__ = ["Config", "load_config", "CheckedOvf", "ProviderHandle", "quiet", "Session",
           "make_handles"]
