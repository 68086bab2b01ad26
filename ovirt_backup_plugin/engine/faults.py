"""The engine-side error policy: SDK exceptions become :class:`EngineError` an admin can act on."""
from __future__ import annotations

import re
from typing import Optional

import ovirtsdk4

from ..errors import ConfigError, ConflictError, EngineError
from .transport import ca_advice

__all__ = ["translate", "fault_text", "short"]


#: libcurl's errors of a certificate that does not verify: 60 (issuer unknown), 51 (name
#: mismatch), 58/83/90/91 (client cert, issuer, pinned key, status), 77 (CA file unusable).
_TLS_VERIFY = re.compile(r"\((?:60|51|58|77|83|90|91), |SSL certificate problem|certificate "
                         r"verif|SSL: no alternative certificate|unable to get local issuer")


def translate(what: str, e: Exception, *, url: str, username: str, timeout: float,
              ca_file: Optional[str] = None) -> EngineError:
    """The :class:`EngineError` (transient or not) that ``e`` raised during ``what`` means."""
    if isinstance(e, ConfigError):
        raise e
    if isinstance(e, ovirtsdk4.Error) and _TLS_VERIFY.search(str(e)):
        return EngineError(f"{what}: cannot verify the TLS certificate of the engine at {url} "
                           f"({short(e)}); {ca_advice(url, ca_file)}")
    if isinstance(e, ovirtsdk4.AuthError):
        return EngineError(
            f"the engine at {url} refused the login of {username!r}: {short(e)}. Check the "
            "user name and the password file.", code=e.code or 401)
    text = str(e)
    if isinstance(e, ovirtsdk4.TimeoutError) or (
            type(e) is ovirtsdk4.Error and re.search(r"\b28, |timed out", text)):
        return EngineError(f"{what}: the engine at {url} did not answer within {timeout:g}s",
                           transient=True)
    if isinstance(e, ovirtsdk4.ConnectionError) or (
            type(e) is ovirtsdk4.Error and re.search(r"\b(6|7), |Failed to connect", text)):
        return EngineError(f"{what}: cannot reach the engine at {url}: {short(e)}",
                           transient=True)
    if isinstance(e, ovirtsdk4.NotFoundError):
        return EngineError(f"{what}: not found on the engine ({fault_text(e)})", code=404)
    if isinstance(e, ovirtsdk4.Error):
        code = getattr(e, "code", None)
        if code == 409:
            return ConflictError(f"{what}: the engine answered 409 conflict: {fault_text(e)}",
                                 code=409)
        transient = code is None or code >= 500
        return EngineError(f"{what}: the engine answered {code or 'an error'}: {fault_text(e)}",
                           code=code, transient=transient and code is not None)
    return EngineError(f"{what}: {type(e).__name__}: {e}")


def fault_text(e: BaseException) -> str:
    """The engine's own words for a fault (its ``detail`` or ``reason``)."""
    fault = getattr(e, "fault", None)
    if fault is not None and (fault.detail or fault.reason):
        return str(fault.detail or fault.reason).strip()
    return short(e)


def short(e: BaseException) -> str:
    """One line of an exception's text, at most 300 characters, no password in it."""
    text = str(e).strip().replace("\n", " ")
    return re.sub(r"password=[^&\s]*", "password=***", text)[:300]
