"""Errors the user sees. The CLI prints them without a traceback."""
from typing import Optional

#: The exit codes of every command: done; done in part (some VMs, copies or providers
#: failed, the rest was done); failed (nothing was done).
EXIT_OK, EXIT_PARTIAL, EXIT_FAILED = 0, 1, 2


class BackupError(Exception):
    """Base class: a failure with a message meant for the admin."""


class ConfigError(BackupError):
    """The settings are missing, wrong or unsafe."""


class ProviderError(BackupError):
    """A provider cannot do what was asked.

    ``transient=True`` tells the host that retrying the same call may succeed
    (a backend that timed out or answered 5xx); the host retries with back-off, waiting at
    least ``retry_after`` seconds when the provider knows how long the backend needs.
    ``partial=True`` (from ``after_backup``): part of the work was done (msd: some data
    centers were updated, another failed); the run is then partial (exit 1), not failed.
    """

    def __init__(self, message: str, *, transient: bool = False, retry_after: float = 0.0,
                 partial: bool = False):
        super().__init__(message)
        self.transient = transient
        self.retry_after = retry_after      # seconds the backend asked to wait, if any
        self.partial = partial


class OvfError(BackupError):
    """An OVF document is malformed, hostile or too large. Affects one VM only."""


class EngineError(BackupError):
    """The engine refused or failed a request. ``code`` is the HTTP status when known;
    ``unreadable``: the engine answered, but the answer could not be read (it did not parse)."""

    def __init__(self, message: str, *, code: Optional[int] = None, transient: bool = False,
                 unreadable: bool = False):
        super().__init__(message)
        self.code = code
        self.transient = transient
        self.unreadable = unreadable


class ConflictError(EngineError):
    """The engine answered 409: the object exists or is busy."""
