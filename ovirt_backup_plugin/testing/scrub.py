"""Masking of secrets in recorded or logged HTTP traffic.

Three helpers, used by the replay server (and by any recorder) before a request or a
response is stored, logged or compared:

* :func:`scrub_form` masks ``password``, ``token``, ``access_token`` and ``refresh_token``
  in ``application/x-www-form-urlencoded`` text (SSO request bodies, query strings);
* :func:`scrub_json` masks ``access_token``, ``refresh_token``, ``id_token`` and
  ``password`` in JSON documents (SSO replies);
* :func:`scrub_headers` drops ``Authorization``, ``Cookie`` and ``Set-Cookie`` and masks
  ``X-Auth-Token`` / ``X-Storage-Token`` (Swift), whatever their case.

A masked value is ``***``. Only the secret values change; everything else stays as it was
written, so a scrubbed body still compares equal to a scrubbed recording.
"""
from __future__ import annotations

import json
import re
from typing import Any, Callable, Mapping, Optional

MASK = "***"

#: Form fields (and query parameters) whose values are secrets.
FORM_SECRETS = frozenset({"password", "token", "access_token", "refresh_token"})
#: JSON keys whose values are secrets, at any depth.
JSON_SECRETS = frozenset({"access_token", "refresh_token", "id_token", "password"})
#: Headers that are removed: they authenticate the caller and are useless in a recording.
DROP_HEADERS = frozenset({"authorization", "cookie", "set-cookie"})
#: Headers whose value is replaced by ``***``: a client replaying them needs them present.
MASK_HEADERS = frozenset({"x-auth-token", "x-storage-token"})

#: ``mask(key, value) -> replacement``; receives the still-encoded value of a form field.
Masker = Callable[[str, str], str]


def _default_mask(key: str, value: str) -> str:
    return MASK


def scrub_form(body: str, *, mask: Optional[Masker] = None) -> str:
    """Return ``body`` with the values of secret form fields replaced by ``***``.

    ``body`` is ``application/x-www-form-urlencoded`` text (``a=1&password=x``) or a query
    string. Fields are edited in place, so order and encoding of the others are kept.
    ``mask`` may choose the replacement per field (the replay server uses it to tell a
    right password from a wrong one); it gets the key and the raw (still encoded) value.
    """
    if not body:
        return body
    mask = mask or _default_mask
    parts = body.split("&")
    for i, part in enumerate(parts):
        key, sep, value = part.partition("=")
        if sep and key.replace("+", " ").strip().lower() in FORM_SECRETS:
            parts[i] = f"{key}={mask(key, value)}"
    return "&".join(parts)


def _scrub_obj(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: (MASK if isinstance(k, str) and k.lower() in JSON_SECRETS and v is not None
                    else _scrub_obj(v)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_scrub_obj(v) for v in obj]
    return obj


_JSON_SECRET_RE = re.compile(
    r'("(?:%s)"\s*:\s*)"(?:[^"\\]|\\.)*"' % "|".join(sorted(JSON_SECRETS)), re.IGNORECASE)


def scrub_json(body: Any) -> Any:
    """Return ``body`` with the values of secret JSON keys replaced by ``"***"``.

    Accepts a JSON text (``str`` or ``bytes``, returned as the same type) or an already
    parsed ``dict``/``list`` (a scrubbed copy is returned). Text that is not valid JSON is
    masked with a pattern instead, so a broken document never leaks its token either.
    """
    if isinstance(body, (dict, list)):
        return _scrub_obj(body)
    if body is None:
        return None
    as_bytes = isinstance(body, (bytes, bytearray))
    text = bytes(body).decode("utf-8", "replace") if as_bytes else str(body)
    try:
        doc = json.loads(text)
    except ValueError:
        scrubbed = _JSON_SECRET_RE.sub(lambda m: m.group(1) + json.dumps(MASK), text)
    else:
        clean = _scrub_obj(doc)
        if clean == doc:
            return body                    # nothing secret: keep the text as it was
        scrubbed = json.dumps(clean, separators=(",", ":"))
    return scrubbed.encode("utf-8") if as_bytes else scrubbed


def scrub_headers(headers: Mapping[str, Any]) -> dict:
    """Return a copy of ``headers`` without credentials.

    ``Authorization``, ``Cookie`` and ``Set-Cookie`` are dropped; ``X-Auth-Token`` and
    ``X-Storage-Token`` keep their name with the value ``***`` (a list of ``***`` when the
    value was a list, as in vcrpy cassettes). Other headers are kept unchanged.
    """
    out = {}
    for name, value in headers.items():
        low = name.lower()
        if low in DROP_HEADERS:
            continue
        if low in MASK_HEADERS:
            value = [MASK] * len(value) if isinstance(value, (list, tuple)) else MASK
        out[name] = value
    return out
