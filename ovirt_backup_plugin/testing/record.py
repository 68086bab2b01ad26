"""Recording of real engine traffic into vcrpy cassettes, on the wire.

``ovirtsdk4`` talks HTTP through pycurl, which vcrpy cannot intercept, so recording happens
one level down, like the replay (:mod:`.replay`): :class:`RecordingProxy` is a loopback
reverse proxy. The unmodified SDK connects to its :attr:`~RecordingProxy.url` over plain
HTTP; the proxy forwards every request to the engine (TLS verified with ``ca_file`` or the
system store; ``insecure=True`` only when asked) and keeps each exchange as a vcrpy
``Request`` and response dict. :meth:`~RecordingProxy.write` saves them with vcrpy's own
serializer (YAML, or JSON for ``*.json``), ready for :class:`.replay.ReplayEngine`.

Nothing secret is ever kept:

* request bodies of the SSO token and logout requests (and any form body or query string)
  are masked with :func:`.scrub.scrub_form` (``password=***``, ``token=***``); JSON
  bodies, sent or received (the SSO token reply), with :func:`.scrub.scrub_json`;
* ``Authorization``, ``Cookie`` and ``Set-Cookie`` are dropped (:func:`.scrub.scrub_headers`);
* as a last net, every secret the proxy saw pass (bearer tokens, cookies, SSO tokens, form
  passwords) and the configured password are replaced by ``***`` wherever they still occur
  before anything is written.

The engine is asked for ``identity`` encoding (the SDK's ``Accept-Encoding`` is dropped),
so bodies are stored decoded. Hop-by-hop headers are not forwarded.

``ovirt-backup record --cassette FILE -- COMMAND...`` (:func:`record_command`) runs an
``ovirt-backup`` command through the proxy and writes what it exchanged with the engine.
"""
from __future__ import annotations

import argparse
import configparser
import datetime as dt
import gzip
import http.client
import json
import logging
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import zlib
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple, Union
from urllib.parse import parse_qsl, quote, quote_plus, urlsplit
from xml.sax.saxutils import escape

from vcr.request import Request
from vcr.serialize import serialize
from vcr.serializers import jsonserializer, yamlserializer

from ..engine.transport import ca_url
from ..errors import ConfigError, EngineError
from ..host.config import load_config
from ..private import private_dir, write_private
from ..terminal import safe
from .loopback import LoopbackHandler, LoopbackServer
from .scrub import FORM_SECRETS, JSON_SECRETS, MASK, scrub_form, scrub_headers, scrub_json

log = logging.getLogger("ovirt_backup_plugin.record")

SSO_TOKEN_PATH = "/ovirt-engine/sso/oauth/token"
SSO_LOGOUT_PATH = "/ovirt-engine/services/sso-logout"

#: Never forwarded in either direction (RFC 9110 7.6.1), plus what the proxy redoes itself.
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
    "proxy-connection", "te", "trailer", "trailers", "transfer-encoding", "upgrade"})
#: Request headers not forwarded: http.client sets Host and Content-Length, asks for
#: ``identity`` itself, and the proxy already answered ``Expect: 100-continue``.
_NOT_FORWARDED = HOP_BY_HOP | {"host", "content-length", "accept-encoding", "expect"}
#: Response headers not kept in a recording (bodies are stored decoded, whole).
_NOT_RECORDED = HOP_BY_HOP | {"set-cookie", "content-length", "content-encoding"}
#: Secrets shorter than this are not searched for in whole texts (they would mask words).
_MIN_SECRET = 4

PathLike = Union[str, "os.PathLike[str]"]
Interaction = Tuple[Request, dict]


class _Upstream:
    """One keep-alive connection to the engine, per client connection of the proxy."""

    def __init__(self, proxy: "RecordingProxy"):
        self.proxy = proxy
        self.conn: Optional[http.client.HTTPConnection] = None
        self.used = False

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def request(self, method: str, target: str, headers: List[Tuple[str, str]],
                body: Optional[bytes]) -> Tuple[http.client.HTTPResponse, bytes]:
        for attempt in (1, 2):
            if self.conn is None:
                self.conn, self.used = self.proxy._connection(), False
            reused = self.used
            try:
                self.conn.putrequest(method, target, skip_accept_encoding=True)
                self.conn.putheader("Accept-Encoding", "identity")
                for name, value in headers:
                    self.conn.putheader(name, value)
                if body is not None:
                    self.conn.putheader("Content-Length", str(len(body)))
                self.conn.endheaders(body)
                response = self.conn.getresponse()
                payload = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if reused and attempt == 1:      # the engine closed an idle keep-alive
                    continue
                raise
            except BaseException:
                self.close()
                raise
            self.used = True
            if response.will_close:
                self.close()
            return response, payload
        raise AssertionError("unreachable")


class _Handler(LoopbackHandler):
    """Reads one request, forwards it, answers the client, records the exchange."""

    server_version = "ovirt-backup-record"
    proxy: RecordingProxy
    _upstream: Optional[_Upstream] = None

    def _handle(self) -> None:
        proxy = self.proxy
        body = self.read_body()
        target = proxy._upstream_target(self.path)
        headers = [(n, v) for n, v in self.headers.items() if n.lower() not in _NOT_FORWARDED]
        send_body = body if body or self.command in ("POST", "PUT", "PATCH") else None
        if self._upstream is None:
            self._upstream = _Upstream(proxy)
        try:
            response, payload = self._upstream.request(self.command, target, headers, send_body)
        except (OSError, http.client.HTTPException) as e:
            message = proxy.describe_error(e)
            proxy.note_error(message)
            self._bad_gateway(urlsplit(target).path, message)
            return
        payload, decoded = _decode(payload, response.getheader("Content-Encoding") or "")
        response_headers = response.getheaders()
        # Recorded before the client gets the answer: whatever it sends next (on this or
        # another connection, like the SDK's separate SSO handle) is recorded after it.
        try:
            proxy.record(self.command, target, headers, body or None, response.status,
                         response.reason, response_headers, payload, decoded=decoded)
        except Exception:                                  # pragma: no cover - a bug here
            log.exception("recording proxy: failed to record %s %s", self.command,
                          urlsplit(target).path)
        dropped = HOP_BY_HOP | {"content-length"} | ({"content-encoding"} if decoded else set())
        self.send_response_only(response.status, response.reason or None)
        for name, value in response_headers:
            if name.lower() not in dropped:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.write_payload(payload)
        self.log_request(response.status)

    def _bad_gateway(self, req_path: str, message: str) -> None:
        detail = f"recording proxy: {message}"
        if req_path.startswith("/ovirt-engine/sso/") or req_path == SSO_LOGOUT_PATH:
            ctype = "application/json"
            payload = json.dumps({"error_code": "bad_gateway", "error": detail}).encode()
        else:
            ctype = "application/xml"
            payload = (f"<fault><reason>Bad Gateway</reason><detail>{escape(detail)}</detail>"
                       f"</fault>").encode()
        self.send_response(502, "Bad Gateway")
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.write_payload(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _handle

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            if self._upstream is not None:
                self._upstream.close()


class RecordingProxy(LoopbackServer):
    """A loopback reverse proxy to one engine that records every exchange, scrubbed.

    ``interactions`` (``(vcr Request, response dict)`` pairs, like
    :func:`.replay.load_interactions` returns) and ``errors`` (messages of exchanges that
    could not reach the engine; those are not recorded) are appended under a lock.
    """

    handler_class, owner_attr = _Handler, "proxy"

    def __init__(self, upstream_url: str, *, ca_file: Optional[str] = None,
                 insecure: bool = False, timeout: Optional[float] = 300.0,
                 host: str = "127.0.0.1", port: int = 0, secrets: Iterable[str] = ()):
        split = urlsplit(upstream_url)
        if split.scheme not in ("http", "https") or not split.hostname:
            raise ConfigError(f"the engine URL {upstream_url!r} is not an http(s) URL")
        self.upstream_url = upstream_url.rstrip("/")
        self.scheme, self.netloc = split.scheme, split.netloc
        self.upstream_host = split.hostname
        self.upstream_port = split.port or (443 if split.scheme == "https" else 80)
        self.base_path = split.path.rstrip("/")
        self.ca_file, self.insecure, self.timeout = ca_file, insecure, timeout
        super().__init__(host, port)
        self.url_path = self.base_path     # the SDK's URL: http://127.0.0.1:PORT + the path
        self._ssl = self._ssl_context() if self.scheme == "https" else None
        self._lock = threading.Lock()
        self._secrets: Set[str] = {s for s in secrets if s}
        self.interactions: List[Interaction] = []
        self.errors: List[str] = []

    # -- TLS to the engine -----------------------------------------------------------
    def _ssl_context(self) -> ssl.SSLContext:
        if self.insecure:               # the command line warned (engine.transport)
            log.info("recording proxy: the TLS certificate of %s is NOT verified (insecure)",
                     self.netloc)
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            return context
        if self.ca_file and not os.path.isfile(self.ca_file):
            raise ConfigError(f"the engine CA file {self.ca_file} does not exist "
                              "([engine] ca_file)")
        try:
            return ssl.create_default_context(cafile=self.ca_file or None)
        except ssl.SSLError as e:
            raise ConfigError(f"the engine CA file {self.ca_file} is not a PEM CA "
                              f"certificate: {e}") from None

    def _connection(self) -> http.client.HTTPConnection:
        if self._ssl is not None:
            return http.client.HTTPSConnection(self.upstream_host, self.upstream_port,
                                               timeout=self.timeout, context=self._ssl)
        return http.client.HTTPConnection(self.upstream_host, self.upstream_port,
                                          timeout=self.timeout)

    def describe_error(self, error: BaseException) -> str:
        """A message an admin can act on, for a failure to reach the engine."""
        where = f"{self.scheme}://{self.netloc}"
        if isinstance(error, ssl.SSLCertVerificationError):
            reason = error.verify_message or str(error)
            hint = (f"[engine] ca_file {self.ca_file}" if self.ca_file
                    else "the system CA store (set [engine] ca_file)")
            return (f"cannot reach the engine at {where}: TLS certificate verification "
                    f"failed ({reason}); it was checked against {hint}; the engine's CA "
                    f"certificate is at {ca_url(self.upstream_url)}")
        if isinstance(error, ssl.SSLError):
            return f"cannot reach the engine at {where}: TLS error: {error}"
        if isinstance(error, socket.timeout):
            return f"cannot reach the engine at {where}: no answer within {self.timeout:g}s"
        text = getattr(error, "strerror", None) or str(error) or type(error).__name__
        return f"cannot reach the engine at {where}: {text}"

    def check(self) -> None:
        """Connect to the engine once (TCP, and the TLS handshake for https); nothing is sent.

        Raises :class:`~.errors.EngineError` with a clear message when it cannot.
        """
        conn = self._connection()
        try:
            conn.connect()
        except (OSError, http.client.HTTPException) as e:
            raise EngineError(self.describe_error(e)) from None
        finally:
            conn.close()

    # -- secrets ---------------------------------------------------------------------
    def add_secret(self, value: Optional[str]) -> None:
        """Remember a value that must never be written (masked wherever it occurs)."""
        if value:
            with self._lock:
                self._secrets.add(value)

    def _learn_secrets(self, headers, form: str, json_body: bytes) -> None:
        for name, value in headers:
            low = name.lower()
            if low == "authorization":
                self.add_secret(value.split(None, 1)[-1].strip())
            elif low == "cookie":                     # name=value; name=value
                for part in value.split(";"):
                    self.add_secret(part.partition("=")[2].strip())
            elif low == "set-cookie":                 # name=value; Path=/; HttpOnly
                self.add_secret(value.split(";", 1)[0].partition("=")[2].strip())
        for key, value in parse_qsl(form, keep_blank_values=True):
            if key.lower() in FORM_SECRETS:
                self.add_secret(value)
        if json_body:
            try:
                doc = json.loads(json_body.decode("utf-8", "replace"))
            except ValueError:
                return
            stack = [doc]
            while stack:
                obj = stack.pop()
                if isinstance(obj, dict):
                    for k, v in obj.items():
                        if isinstance(k, str) and k.lower() in JSON_SECRETS and isinstance(v, str):
                            self.add_secret(v)
                        else:
                            stack.append(v)
                elif isinstance(obj, list):
                    stack.extend(obj)

    def _redactor(self):
        with self._lock:
            secrets = sorted({s for s in self._secrets if len(s) >= _MIN_SECRET}
                             - {MASK}, key=len, reverse=True)
        variants: Set[str] = set()
        for s in secrets:
            variants.update({s, quote_plus(s), quote(s, safe=""), json.dumps(s)[1:-1]})
        forms = sorted((f for f in variants if len(f) >= _MIN_SECRET), key=len, reverse=True)
        encoded = [f.encode("utf-8") for f in forms]

        def redact(value):
            if isinstance(value, str):
                for f in forms:
                    if f in value:
                        log.warning("recording proxy: a secret left after scrubbing is masked")
                        value = value.replace(f, MASK)
                return value
            if isinstance(value, (bytes, bytearray)):
                value = bytes(value)
                for b in encoded:
                    if b in value:
                        log.warning("recording proxy: a secret left after scrubbing is masked")
                        value = value.replace(b, MASK.encode())
                return value
            if isinstance(value, dict):
                return {k: redact(v) for k, v in value.items()}
            if isinstance(value, (list, tuple)):
                return type(value)(redact(v) for v in value)
            return value

        return redact

    # -- recording -------------------------------------------------------------------
    def _upstream_target(self, target: str) -> str:
        if target.startswith(("http://", "https://")):          # absolute-form request line
            split = urlsplit(target)
            target = split.path + (f"?{split.query}" if split.query else "")
        return target if target.startswith("/") else "/" + target

    @staticmethod
    def _is_form(req_path: str, content_type: str) -> bool:
        return ("x-www-form-urlencoded" in content_type.lower()
                or req_path in (SSO_TOKEN_PATH, SSO_LOGOUT_PATH))

    def record(self, method: str, target: str, headers: Sequence[Tuple[str, str]],
               body: Optional[bytes], status: int, reason: str,
               response_headers: Sequence[Tuple[str, str]], payload: bytes, *,
               decoded: bool = True) -> Interaction:
        """Scrub one exchange and append it to :attr:`interactions`.

        ``payload`` is the body as the client got it; ``decoded=False`` when the engine
        used a content encoding the proxy cannot undo (its header is then kept).
        """
        split = urlsplit(target)
        req_path = split.path
        query = scrub_form(split.query)
        uri = f"{self.scheme}://{self.netloc}{req_path}" + (f"?{query}" if query else "")
        req_type = next((v for n, v in headers if n.lower() == "content-type"), "")
        resp_type = next((v for n, v in response_headers if n.lower() == "content-type"), "")

        form_text = ""
        stored_body: Optional[bytes] = None
        if body:
            if self._is_form(req_path, req_type):
                form_text = body.decode("utf-8", "replace")
                stored_body = scrub_form(form_text).encode("utf-8")
            elif "json" in req_type.lower():
                stored_body = scrub_json(body)
            else:
                stored_body = body
        is_json_reply = "json" in resp_type.lower() or req_path in (SSO_TOKEN_PATH,
                                                                    SSO_LOGOUT_PATH)
        json_sources = b"".join(x for x in (
            payload if is_json_reply else b"",
            body if body and "json" in req_type.lower() else b"") if x)
        self._learn_secrets(list(headers) + list(response_headers), form_text + "&" + split.query,
                            json_sources)
        if is_json_reply and payload:
            payload = scrub_json(payload)

        request_headers = scrub_headers({n: v for n, v in headers
                                         if n.lower() not in _NOT_FORWARDED})
        request = Request(method, uri, stored_body, request_headers)
        grouped: Dict[str, List[str]] = {}
        names: Dict[str, str] = {}
        for name, value in response_headers:
            low = name.lower()
            if low in _NOT_RECORDED and (decoded or low != "content-encoding"):
                continue
            grouped.setdefault(names.setdefault(low, name), []).append(value)
        response = {"status": {"code": int(status), "message": reason or ""},
                    "headers": scrub_headers(grouped),
                    "body": {"string": payload}}
        with self._lock:
            self.interactions.append((request, response))
        return request, response

    def note_error(self, message: str) -> None:
        with self._lock:
            if message not in self.errors:
                self.errors.append(message)
        log.debug("recording proxy: %s", message)    # record_command reports them once

    # -- output ----------------------------------------------------------------------
    def cassette_dict(self) -> dict:
        """The recording as vcrpy's ``serialize`` takes it, every known secret masked."""
        redact = self._redactor()
        with self._lock:
            pairs = list(self.interactions)
        requests, responses = [], []
        for request, response in pairs:
            body = request.body
            requests.append(Request(request.method, redact(request.uri),
                                    redact(body) if body is not None else None,
                                    redact(dict(request.headers))))
            responses.append(redact(response))
        return {"requests": requests, "responses": responses}

    def write(self, path: PathLike, *, provenance: Optional[str] = None) -> Path:
        """Write the recording as a vcrpy cassette: JSON for ``*.json``, YAML otherwise;
        0600 whatever the umask (it can hold OVFs, and OVFs can hold secrets).

        ``provenance`` goes where vcrpy keeps it loadable: a comment line at the top of a
        YAML cassette; in a JSON cassette (no comments) vcrpy's cassette ``metadata``.
        """
        path = Path(path)
        data = self.cassette_dict()
        if path.suffix.lower() == ".json":
            if provenance:
                data["metadata"] = {"provenance": provenance}
            text = serialize(data, jsonserializer)
        else:
            text = serialize(data, yamlserializer)
            if provenance:
                text = "".join(f"# {line}\n" for line in provenance.splitlines()) + text
        private_dir(path.parent)
        return write_private(path, text)


def _decode(payload: bytes, encoding: str) -> Tuple[bytes, bool]:
    """Decode a body the engine compressed although asked not to; (body, decoded?)."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return payload, True
    try:
        if encoding in ("gzip", "x-gzip"):
            return gzip.decompress(payload), True
        if encoding == "deflate":
            try:
                return zlib.decompress(payload), True
            except zlib.error:
                return zlib.decompress(payload, -zlib.MAX_WBITS), True
    except (OSError, EOFError, zlib.error) as e:
        log.warning("recording proxy: cannot decode a %s body: %s", encoding, e)
    return payload, False


# -- ovirt-backup record -------------------------------------------------------------------
def _read_settings(config_path: Optional[str]) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=(";", "#"))
    if config_path:
        if not os.path.isfile(config_path):
            raise ConfigError(f"configuration file {config_path} does not exist")
        parser.read(config_path, encoding="utf-8")
    return parser


def _refuse_own_config(argv: Sequence[str]) -> None:
    for arg in argv:
        if arg in ("-c", "--config") or arg.startswith("--config=") or (
                arg.startswith("-c") and not arg.startswith("--")):
            raise ConfigError("give --config before 'record', not in the recorded command: "
                              "the recorded command must use the recording proxy")
        if not arg.startswith("-"):
            if arg == "record":
                raise ConfigError("'record' cannot record itself")
            return


def _no_proxy_env() -> Dict[str, str]:
    """The environment of the recorded command: libcurl must reach the proxy directly."""
    env = dict(os.environ)
    for key in ("no_proxy", "NO_PROXY"):
        current = env.get(key, "")
        env[key] = ",".join(x for x in (current, "127.0.0.1", "localhost") if x)
    return env


def cli_record(args: argparse.Namespace) -> int:
    """``ovirt-backup record --cassette FILE -- COMMAND...``."""
    return record_command(args.config, args.cassette, args.argv, insecure=args.insecure)


def record_command(config_path: Optional[str], cassette: PathLike, argv: Sequence[str], *,
                   insecure: bool = False) -> int:
    """Run ``ovirt-backup ARGV`` through a :class:`RecordingProxy`; write ``cassette``.

    The command runs as a subprocess with a temporary copy of the settings whose
    ``[engine] url`` is the proxy (the password stays where the settings say:
    ``password_file`` or ``password_env``). Its output passes through. Returns its exit
    code. The cassette is written whatever happens, with what was recorded.
    """
    argv = list(argv)
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        raise ConfigError("give the command to record after '--', e.g. "
                          "ovirt-backup record --cassette run.yaml -- backup")
    _refuse_own_config(argv)
    config_path = config_path or os.environ.get("OVIRT_BACKUP_CONFIG")
    config = load_config(config_path, insecure=insecure)
    engine = config.engine
    if engine is None or not engine.url:
        raise ConfigError("no engine is configured: set [engine] url in the configuration "
                          "file (--config)")
    # insecure: --insecure, or [engine] insecure = true; the proxy warns (log, WARNING)
    proxy = RecordingProxy(engine.url, ca_file=engine.ca_file, insecure=engine.insecure,
                           timeout=engine.timeout or None,
                           secrets=[engine.password] if engine.password else [])
    host = proxy.upstream_host
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    provenance = f"recorded by ovirt-backup record from {host} on {when}"
    print(safe(f"warning: the cassette {cassette} will hold what the engine sends, VM "
               "configurations (OVFs) included, and those can carry secrets (cloud-init root "
               "passwords, scripts, keys); it is written readable by you only (0600): keep it "
               "private, and read it before you share it"), file=sys.stderr)
    tmpdir = tempfile.mkdtemp(prefix="ovirt-backup-record-")
    try:
        proxy.start()
        proxy.check()                  # a clear error before the command runs, if unreachable
        settings = _read_settings(config_path)
        if not settings.has_section("engine"):
            settings.add_section("engine")
        settings.set("engine", "url", proxy.url)
        tmp_config = os.path.join(tmpdir, "settings.conf")
        fd = os.open(tmp_config, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            settings.write(f)
        command = [sys.executable, "-m", "ovirt_backup_plugin.cli", "--config", tmp_config,
                   *argv]
        log.info("recording %s through %s", " ".join(argv), proxy.url)
        return subprocess.call(command, env=_no_proxy_env())
    finally:
        proxy.stop()
        try:
            written = proxy.write(cassette, provenance=provenance)
            print(f"recorded {len(proxy.interactions)} exchanges with {proxy.netloc} "
                  f"into {written}", file=sys.stderr)
        finally:
            for name in os.listdir(tmpdir):
                os.unlink(os.path.join(tmpdir, name))
            os.rmdir(tmpdir)
        for message in proxy.errors:
            print(f"error: record: {message}", file=sys.stderr)
