"""Logging for the command line: no secret and no terminal control in any log line.

:func:`setup` installs one stderr handler on the root logger, so what every library logs
(python-swiftclient, requests, urllib3, the SDK) passes the same two gates:

* :class:`RedactingFilter` masks secrets in each record before it is formatted: the values
  of token and key headers (``X-Auth-Token``, ``X-Storage-Token``, ``X-Auth-Key``,
  ``Authorization``, cookies, S3 request signatures ... -- python-swiftclient logs the first 16 characters of
  ``X-Auth-Token`` at ``-v``), ``password=``/``token=``/``key=`` form fields, and every
  secret value the host read (:func:`mask`: the engine password, providers' declared
  secrets, encryption keys), wherever it occurs;
* :class:`SafeFormatter` escapes control, format and bidi characters in the message
  (engine-supplied names reach log lines too), line by line for tracebacks.
"""
from __future__ import annotations

import logging
import re
import sys
from typing import Any, Optional, Set

from .terminal import safe

__all__ = ["MASK", "mask", "redact", "RedactingFilter", "SafeFormatter", "setup"]

MASK = "***"
#: Shorter values are not searched for in whole texts (they would mask ordinary words).
MIN_SECRET = 4
_secrets: Set[str] = set()

_HEADER = re.compile(
    r"(?i)((?:x-auth-token|x-storage-token|x-auth-key|x-service-token|x-subject-token|"
    r"x-storage-pass|x-auth-user-key|x-amz-security-token|authorization|proxy-authorization|"
    r"set-cookie|cookie)['\"]?\s*[:=]\s*b?['\"]?)((?:bearer|basic|negotiate|aws4-hmac-sha256)\s+)?"
    r"[^\s'\",;}]+")
#: A request signature (S3's SigV4: botocore logs it at DEBUG, in the Authorization header
#: and on its own): it authorizes that request again for minutes.
_SIGNATURE = re.compile(r"(?i)(signature\s*[:=]\s*(?:\\n|\s)*)[0-9a-f]{16,}")
_FORM = re.compile(r"(?i)\b(password|passwd|access_token|refresh_token|token|key|secret)"
                   r"=(?!\*\*\*)[^&\s'\",;}]+")


def mask(value: Optional[str]) -> None:
    """Remember a secret: from now on it is masked in every log line."""
    if value and len(value) >= MIN_SECRET:
        _secrets.add(value)


def redact(text: str) -> str:
    """``text`` with every known secret and every token-like header value masked."""
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    text = _HEADER.sub(lambda m: m.group(1) + (m.group(2) or "") + MASK, text)
    text = _SIGNATURE.sub(lambda m: m.group(1) + MASK, text)
    return _FORM.sub(lambda m: m.group(1) + "=" + MASK, text)


class RedactingFilter(logging.Filter):
    """Masks secrets in a record's message (and in its exception text)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:                 # a library's bad format string: keep it as is
            message = str(record.msg)
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class SafeFormatter(logging.Formatter):
    """Formats a record with its message (and each line of a traceback) made safe."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        record.message = safe(record.message)
        return super().formatMessage(record)

    def formatException(self, ei: Any) -> str:  # noqa: N802
        return "\n".join(safe(line) for line in super().formatException(ei).splitlines())


class _Stderr(logging.StreamHandler):
    """A handler on whatever ``sys.stderr`` is when a record comes (it may be replaced)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def setup(verbosity: int = 0) -> logging.Handler:
    """WARNING, INFO (``-v``) or DEBUG (``-vv``) on stderr, through both gates."""
    handler = _Stderr()
    handler.addFilter(RedactingFilter())
    handler.setFormatter(SafeFormatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_ovirt_backup", False)]:
        root.removeHandler(old)
    handler._ovirt_backup = True          # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel([logging.WARNING, logging.INFO, logging.DEBUG][min(verbosity, 2)])
    return handler
