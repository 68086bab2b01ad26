"""How the connection to the engine is protected, said right.

* :func:`connection_warnings`: TLS verification off (``--insecure`` or ``[engine] insecure =
  true`` in the file: the same warning) for an ``https://`` URL; a plain ``http://`` URL to
  a host that is not this one (the admin password and every OVF travel in clear). An
  ``http://`` URL gets no TLS warning: there is no TLS to verify.
* :func:`ca_advice`: what a TLS verification failure should say: what the certificate was
  checked against (``ca_file``, or the system CA store) and where the engine hands out its
  CA certificate (``/ovirt-engine/services/pki-resource?resource=ca-certificate&format=
  X509-PEM-CA``, served without login by every engine).
"""
from __future__ import annotations

import ipaddress
import urllib.parse
from typing import List, Optional

from .settings import EngineSettings

__all__ = ["connection_warnings", "ca_advice", "ca_url", "is_loopback"]

CA_PATH = "/ovirt-engine/services/pki-resource?resource=ca-certificate&format=X509-PEM-CA"


def is_loopback(host: Optional[str]) -> bool:
    if not host:
        return False
    if host.lower() in ("localhost", "localhost.localdomain") or host.lower().endswith(
            ".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def ca_url(url: str) -> str:
    """Where the engine at ``url`` serves its CA certificate (PEM)."""
    split = urllib.parse.urlsplit(url)
    return f"https://{split.netloc or split.path}{CA_PATH}"


def connection_warnings(settings: Optional[EngineSettings]) -> List[str]:
    """The warnings every command prints before it talks to the engine."""
    if settings is None or not settings.url:
        return []
    split = urllib.parse.urlsplit(settings.url)
    host = split.hostname or ""
    if split.scheme == "http":
        if is_loopback(host):
            return []
        return [f"warning: the engine URL {settings.url} is plain http to {host}: the admin "
                "password and every VM configuration travel in clear; use https://"]
    if split.scheme == "https" and settings.insecure:
        return [f"warning: --insecure / [engine] insecure = true: the engine's TLS certificate "
                f"is NOT verified, so the admin password goes to whoever answers as {host}; "
                f"set [engine] ca_file to the engine's CA certificate ({ca_url(settings.url)}) "
                "instead"]
    return []


def ca_advice(url: str, ca_file: Optional[str]) -> str:
    """The second half of a TLS verification failure's message."""
    against = (f"[engine] ca_file = {ca_file}" if ca_file
               else "the system CA store (no [engine] ca_file is set)")
    return (f"it was checked against {against}. The engine's CA certificate is at "
            f"{ca_url(url)}: fetch it, compare its fingerprint with /etc/pki/ovirt-engine/ca.pem "
            "on the engine host, and set [engine] ca_file to it")
