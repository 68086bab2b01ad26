"""SSO login and logout bounded by ``[engine] timeout``: the requests the SDK does not bound.

ovirtsdk4 4.6 applies its ``timeout`` to API requests only: the token request of the login
(``Connection._get_access_token``) and the revocation of ``close()`` set no timeout, so an
engine that accepts the connection and never answers blocks them for ever
(engine-facts C.1). So the adapter obtains the token itself, with exactly the SDK's request
(``POST {scheme}://{netloc}/ovirt-engine/sso/oauth/token``, form ``grant_type=password``,
``scope=ovirt-app-api``, ``username``, ``password``, ``Accept: application/json``: SDK
``__init__.py`` L590-641), hands it to ``ovirtsdk4.Connection(token=...)`` and revokes it
itself on close (``POST .../ovirt-engine/services/sso-logout``, ``scope`` and ``token``: SDK
L552-588), each bounded.

These two requests go through ``pycurl``, the library under the SDK: the same libcurl, the
same TLS options set the same way (``SSL_VERIFYPEER``/``SSL_VERIFYHOST`` off only with
``insecure``, ``CAINFO`` = ``ca_file``, else libcurl's system CA store: SDK L673-678), so the
login verifies the engine exactly as the API requests do; and ``pycurl.TIMEOUT`` bounds the
whole exchange (``urllib``'s timeout bounds each socket operation only).
"""
from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from typing import Dict, Optional
from urllib.parse import urlencode, urlsplit

from .. import __version__
from ..errors import EngineError
from .sdk import pycurl
from .settings import EngineSettings
from .transport import ca_advice

__all__ = ["request_token", "revoke_token", "sso_url", "unavailable", "SsoAnswer"]

TOKEN_PATH = "/ovirt-engine/sso/oauth/token"
LOGOUT_PATH = "/ovirt-engine/services/sso-logout"
API_PATH = "/ovirt-engine/api"
#: libcurl's names of its error codes: could not resolve, could not connect, timed out, TLS
#: trouble (read when a login fails: naming them does not load libcurl).
CURL_UNREACHABLE = ("E_COULDNT_RESOLVE_HOST", "E_COULDNT_CONNECT")
CURL_TIMEOUT = ("E_OPERATION_TIMEDOUT",)
CURL_TLS = ("E_SSL_CONNECT_ERROR", "E_PEER_FAILED_VERIFICATION", "E_SSL_CACERT",
            "E_SSL_CERTPROBLEM", "E_SSL_CACERT_BADFILE", "E_SSL_PEER_CERTIFICATE")


def _is(code: Optional[int], names: tuple) -> bool:
    return any(code == getattr(pycurl, name, None) for name in names)

@dataclass(frozen=True)
class SsoAnswer:
    """What the SSO service answered: status, content type and body."""

    status: int
    content_type: str
    body: bytes

    @property
    def is_json(self) -> bool:
        return bool(re.match(r"^\s*(application|text)/json", self.content_type, re.I))


def sso_url(settings: EngineSettings, path: str) -> str:
    """``{scheme}://{netloc}{path}``: where the SDK itself sends its SSO requests."""
    split = urlsplit(settings.url)
    return f"{split.scheme}://{split.netloc}{path}"


def _post(settings: EngineSettings, url: str, form: Dict[str, str]) -> SsoAnswer:
    """One bounded POST of a form, as the SDK sends it; raises ``pycurl.error``."""
    curl = pycurl.Curl()
    try:
        curl.setopt(pycurl.CUSTOMREQUEST, "POST")
        curl.setopt(pycurl.URL, url)
        curl.setopt(pycurl.NOSIGNAL, 1)           # timeouts without SIGALRM (threads, workers)
        if settings.url.startswith("https"):
            curl.setopt(pycurl.SSL_VERIFYPEER, 0 if settings.insecure else 1)
            curl.setopt(pycurl.SSL_VERIFYHOST, 0 if settings.insecure else 2)
            if settings.ca_file is not None:
                curl.setopt(pycurl.CAINFO, settings.ca_file)
        curl.setopt(pycurl.TIMEOUT, max(0, int(settings.timeout)))
        curl.setopt(pycurl.HTTPHEADER, [f"User-Agent: ovirt-backup/{__version__}",
                                         "Accept: application/json"])
        curl.setopt(pycurl.COPYPOSTFIELDS, urlencode(form))
        body, headers = io.BytesIO(), io.BytesIO()

        def header(line: bytes) -> None:
            if line.startswith(b"HTTP/"):        # keep the last response only (as the SDK)
                headers.seek(0)
                headers.truncate(0)
            headers.write(line)

        curl.setopt(pycurl.WRITEFUNCTION, body.write)
        curl.setopt(pycurl.HEADERFUNCTION, header)
        curl.perform()
        status = int(curl.getinfo(pycurl.RESPONSE_CODE))
    finally:
        curl.close()
    content_type = ""
    for line in headers.getvalue().decode("latin-1").splitlines():
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-type":
            content_type = value.strip()
    return SsoAnswer(status, content_type, body.getvalue())


def unavailable(status: int, url: str) -> str:
    """What an HTML (non-API) answer of ``status`` most likely means, for the admin."""
    if status in (502, 503, 504):
        return (f"the engine is unavailable (HTTP {status}); the web server in front of it "
                "answered: check that ovirt-engine is running (systemctl status ovirt-engine)")
    if status == 404:
        split = urlsplit(url)
        return (f"the web server at {split.scheme}://{split.netloc} answered HTTP 404 (not "
                f"found): wrong URL path? The API is at {split.scheme}://{split.netloc}"
                f"{API_PATH} (check [engine] url)")
    return f"the web server at {url} answered HTTP {status} with a page, not the engine's API"


def _curl_error(what: str, e: pycurl.error, settings: EngineSettings) -> EngineError:
    code = e.args[0] if e.args else None
    text = str(e.args[1] if len(e.args) > 1 else e)
    if _is(code, CURL_TIMEOUT):
        return EngineError(f"{what}: the engine at {settings.url} did not answer within "
                           f"{settings.timeout:g}s", transient=True)
    if _is(code, CURL_UNREACHABLE):
        return EngineError(f"{what}: cannot reach the engine at {settings.url}: {text}",
                           transient=True)
    if _is(code, CURL_TLS):
        return EngineError(f"{what}: cannot verify the TLS certificate of the engine at "
                           f"{settings.url} ({text}); {ca_advice(settings.url, settings.ca_file)}")
    return EngineError(f"{what}: cannot talk to the engine at {settings.url}: {text}",
                       transient=True)


def request_token(settings: EngineSettings) -> str:
    """Log in (one bounded attempt): the SSO token of ``settings.username``.

    Raises :class:`EngineError`: transient for timeouts, unreachable engines and 5xx.
    """
    what = "logging in"
    url = sso_url(settings, TOKEN_PATH)
    form = {"grant_type": "password", "scope": "ovirt-app-api",
            "username": settings.username, "password": settings.password or ""}
    try:
        answer = _post(settings, url, form)
    except pycurl.error as e:
        raise _curl_error(what, e, settings) from None
    if not answer.is_json:
        transient = answer.status >= 500
        raise EngineError(f"{what}: {unavailable(answer.status, settings.url)}",
                          code=answer.status, transient=transient)
    try:
        data = json.loads(answer.body.decode("utf-8"))
    except ValueError:
        raise EngineError(f"{what}: the engine's SSO service at {url} answered HTTP "
                          f"{answer.status} with JSON that does not parse",
                          code=answer.status) from None
    if isinstance(data, list):
        data = data[0] if data else {}
    if not isinstance(data, dict):
        data = {}
    token = data.get("access_token")
    if "error" in data or not token:
        reason = data.get("error_description") or data.get("error") or f"HTTP {answer.status}"
        raise EngineError(f"the engine at {settings.url} refused the login of "
                          f"{settings.username!r}: {reason}. Check the user name and the "
                          "password file.", code=401)
    return str(token)


def revoke_token(settings: EngineSettings, token: str) -> None:
    """Log out: revoke ``token`` (one bounded attempt). Raises :class:`EngineError`."""
    try:
        answer = _post(settings, sso_url(settings, LOGOUT_PATH),
                       {"scope": "ovirt-app-api", "token": token})
    except pycurl.error as e:
        raise _curl_error("logging out", e, settings) from None
    if not answer.is_json:
        raise EngineError(f"logging out: {unavailable(answer.status, settings.url)}",
                          code=answer.status)
    try:
        data = json.loads(answer.body.decode("utf-8") or "{}")
    except ValueError:
        data = {}
    if isinstance(data, dict) and "error" in data:
        raise EngineError(f"logging out: the engine refused: {data.get('error')}")

