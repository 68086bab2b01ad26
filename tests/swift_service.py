"""A real OpenStack Swift for tests, and a TCP forwarder that can take it away.

Fixtures (use ``pytest_plugins = ["tests.swift_service"]`` in a test module):
``swift_service`` (session), ``swift_container`` (a fresh container name, deleted after the
test) and ``swift_netcut`` (a :class:`NetCut` in front of the proxy); for Swift's S3 API
(the ``s3api`` middleware of the same proxy): ``s3_bucket`` (a fresh bucket name, deleted
after the test).

``swift_service`` yields a :class:`SwiftService`:

* if ``SWIFT_AUTH_URL``, ``SWIFT_USER`` and ``SWIFT_KEY`` are set (``.ci/run`` started Swift
  with ``scripts/start-saio.sh``), it uses that Swift;
* otherwise it starts one with ``scripts/start-saio.sh`` in a temporary directory, on free
  ports, and stops it (wiping its data) at the end of the session. If that start fails the
  tests are skipped, except under ``CI`` where they fail.

The S3 API is at ``S3_ENDPOINT_URL`` with ``S3_ACCESS_KEY_ID`` / ``S3_SECRET_ACCESS_KEY`` /
``S3_REGION`` (exported by ``start-saio.sh``; when this plugin starts Swift itself it reads
them from the script's output and exports them for the session too).

The key reaches providers through ``key_env`` (:data:`KEY_ENV`), never a file or a log; the
S3 credentials through ``access_key_id_env`` / ``secret_access_key_env``
(:data:`S3_ACCESS_ENV`, :data:`S3_SECRET_ENV`).

:class:`NetCut` listens on ``127.0.0.1:<free port>`` and forwards to the Swift proxy;
``cut()`` closes its live connections and refuses new ones (the port is closed),
``hang()`` accepts connections but forwards nothing (timeouts), ``restore()`` resumes;
with ``recording = True`` it keeps what clients sent in ``sent`` (what went on the wire).
Use it with :meth:`SwiftService.via` so that auth *and* object traffic pass through it.
"""
from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Dict, Optional
from urllib.parse import urlsplit, urlunsplit

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
START = PROJECT_ROOT / "scripts" / "start-saio.sh"
STOP = PROJECT_ROOT / "scripts" / "stop-saio.sh"
#: The environment variable the fixture sets to the Swift key; settings name it as key_env.
KEY_ENV = "OVIRT_BACKUP_TEST_SWIFT_KEY"
S3_ACCESS_ENV = "OVIRT_BACKUP_TEST_S3_ACCESS_KEY_ID"
S3_SECRET_ENV = "OVIRT_BACKUP_TEST_S3_SECRET_ACCESS_KEY"
S3_VARS = ("S3_ENDPOINT_URL", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY", "S3_REGION")
PORT_VARS = ("SAIO_PROXY_PORT", "SAIO_OBJECT_PORT", "SAIO_CONTAINER_PORT",
             "SAIO_ACCOUNT_PORT", "SAIO_MEMCACHED_PORT")


class SwiftService:
    """Where a Swift is, and small conveniences for tests that use it."""

    def __init__(self, auth_url: str, user: str, key: str, saio_dir: Optional[Path] = None,
                 s3: Optional[Dict[str, str]] = None):
        self.auth_url, self.user, self.key = auth_url, user, key
        self.saio_dir = saio_dir            # set when this process started Swift
        parts = urlsplit(auth_url)
        self.host, self.port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
        self._storage_url: Optional[str] = None
        # the S3 API of the same proxy (s3api): tempauth's account:user and key
        s3 = {k: v for k, v in (s3 or {}).items() if v}
        self.s3_endpoint = s3.get("S3_ENDPOINT_URL") or f"{parts.scheme}://{parts.netloc}"
        self.s3_access_key = s3.get("S3_ACCESS_KEY_ID") or user
        self.s3_secret = s3.get("S3_SECRET_ACCESS_KEY") or key
        self.s3_region = s3.get("S3_REGION") or "us-east-1"

    @classmethod
    def from_env(cls) -> Optional["SwiftService"]:
        env = [os.environ.get(v) for v in ("SWIFT_AUTH_URL", "SWIFT_USER", "SWIFT_KEY")]
        if not all(env):
            return None
        return cls(*env, s3={v: os.environ.get(v, "") for v in S3_VARS})

    @property
    def s3_vars(self) -> Dict[str, str]:
        """The S3 variables ``scripts/dev test`` exports, for this Swift."""
        return dict(zip(S3_VARS, (self.s3_endpoint, self.s3_access_key, self.s3_secret,
                                  self.s3_region)))

    @classmethod
    def start(cls, saio_dir: Path, timeout: float = 600) -> "SwiftService":
        """Run ``scripts/start-saio.sh`` on free ports; raise RuntimeError if it fails."""
        env = dict(os.environ)
        for var, port in zip(PORT_VARS, free_ports(len(PORT_VARS))):
            env[var] = str(port)
        proc = subprocess.run(["bash", str(START), str(saio_dir)], env=env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"start-saio.sh failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        exported = parse_exports(proc.stdout)
        return cls(exported["SWIFT_AUTH_URL"], exported["SWIFT_USER"], exported["SWIFT_KEY"],
                   saio_dir, s3={v: exported.get(v, "") for v in S3_VARS})

    def stop(self) -> None:
        if self.saio_dir is not None:
            subprocess.run(["bash", str(STOP), str(self.saio_dir)], env=dict(os.environ, SAIO_WIPE="1"),
                           stdin=subprocess.DEVNULL, check=False, timeout=120)
            self.saio_dir = None

    # -- direct access, behind the provider's back --------------------------------------
    def connection(self, **kwargs):
        """A swiftclient Connection straight to the proxy (no retries)."""
        from swiftclient.client import Connection

        return Connection(self.auth_url, self.user, self.key, retries=0, **kwargs)

    @property
    def storage_url(self) -> str:
        """The storage URL auth hands out, e.g. ``http://127.0.0.1:8080/v1/AUTH_test``."""
        if self._storage_url is None:
            conn = self.connection()
            self._storage_url = conn.get_auth()[0]
            conn.close()
        return self._storage_url

    def names(self, container: str, prefix: str = "") -> list:
        conn = self.connection()
        try:
            return [o["name"] for o in conn.get_container(container, prefix=prefix, full_listing=True)[1]]
        finally:
            conn.close()

    def delete_container(self, container: str) -> None:
        """Delete a container and everything in it; a missing one is fine."""
        from swiftclient.exceptions import ClientException

        conn = self.connection()
        try:
            for name in conn.get_container(container, full_listing=True)[1]:
                conn.delete_object(container, name["name"])
            conn.delete_container(container)
        except ClientException as e:
            if e.http_status != 404:
                raise
        finally:
            conn.close()

    # -- the S3 API, behind the provider's back -------------------------------------------
    def s3_client(self, endpoint: Optional[str] = None):
        """A boto3 S3 client straight to the S3 API (no retries), as scripts/check-s3api.py
        makes it: SigV4, path-style, checksums only when required."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3", endpoint_url=endpoint or self.s3_endpoint, region_name=self.s3_region,
            aws_access_key_id=self.s3_access_key, aws_secret_access_key=self.s3_secret,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                          request_checksum_calculation="when_required",
                          response_checksum_validation="when_required",
                          retries={"total_max_attempts": 1}))

    def s3_keys(self, bucket: str, prefix: str = "") -> list:
        client = self.s3_client()
        try:
            pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            return sorted(o["Key"] for page in pages for o in page.get("Contents", ()))
        finally:
            client.close()

    def delete_bucket(self, bucket: str) -> None:
        """Delete a bucket and everything in it; a missing one is fine."""
        from botocore.exceptions import ClientError

        client = self.s3_client()
        try:
            for key in self.s3_keys(bucket):
                client.delete_object(Bucket=bucket, Key=key)
            client.delete_bucket(Bucket=bucket)
        except ClientError as e:
            if e.response["Error"].get("Code") != "NoSuchBucket":
                raise
        finally:
            client.close()

    def s3_options(self, **extra) -> Dict[str, str]:
        """``[provider:s3]`` options for this S3 API; the credentials by ``*_env``. Stored
        in clear (``encrypt = no``) unless ``encrypt=None`` (the default of an off-host
        store: encrypted, with the ``[backup]`` key) or ``encrypt="yes"`` is given."""
        options = {"endpoint_url": self.s3_endpoint, "region": self.s3_region,
                   "access_key_id_env": S3_ACCESS_ENV, "secret_access_key_env": S3_SECRET_ENV,
                   "encrypt": "no", **extra}
        return {k: v for k, v in options.items() if v is not None}

    def s3_via(self, cut: "NetCut") -> Dict[str, str]:
        """Options that send the S3 traffic through ``cut``."""
        return {"endpoint_url": _with_port(self.s3_endpoint, cut.port)}

    # -- provider settings ----------------------------------------------------------------
    def options(self, **extra) -> Dict[str, str]:
        """``[provider:swift]`` options for this Swift; the key by ``key_env``. Stored in
        clear (``encrypt = no``) unless ``encrypt=None`` (the default of an off-host store:
        encrypted, with the ``[backup]`` key) or ``encrypt="yes"`` is given."""
        options = {"auth_url": self.auth_url, "user": self.user, "key_env": KEY_ENV,
                   "encrypt": "no", **extra}
        return {k: v for k, v in options.items() if v is not None}

    def via(self, cut: "NetCut") -> Dict[str, str]:
        """Options that send auth *and* object traffic through ``cut``.

        tempauth builds the storage URL from the request's Host header, but other auth
        systems (Keystone's catalog) hand out a fixed one, so ``storage_url`` is given too.
        """
        return {"auth_url": _with_port(self.auth_url, cut.port),
                "storage_url": _with_port(self.storage_url, cut.port)}


def _with_port(url: str, port: int) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"127.0.0.1:{port}"))


def parse_exports(text: str) -> Dict[str, str]:
    """``export K=V`` lines (shell-quoted) as a dict."""
    found = {}
    for line in text.splitlines():
        words = shlex.split(line)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            key, _, value = words[1].partition("=")
            found[key] = value
    return found


def free_ports(count: int) -> list:
    """``count`` distinct ports that were free on 127.0.0.1 a moment ago."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@pytest.fixture(scope="session")
def swift_service():
    """A running Swift for the whole session (see the module docstring)."""
    service = SwiftService.from_env()
    tmp = None
    if service is None:
        tmp = tempfile.mkdtemp(prefix="ovirt-backup-saio-")
        try:
            service = SwiftService.start(Path(tmp))
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            subprocess.run(["bash", str(STOP), tmp], env=dict(os.environ, SAIO_WIPE="1"), check=False)
            if os.environ.get("CI"):
                pytest.fail(f"cannot start Swift, and CI needs it: {e}")
            pytest.skip(f"cannot start Swift (not in CI): {e}")
    exported = {KEY_ENV: service.key, S3_ACCESS_ENV: service.s3_access_key,
                S3_SECRET_ENV: service.s3_secret, **service.s3_vars}
    previous = {k: os.environ.get(k) for k in exported}
    os.environ.update(exported)
    try:
        yield service
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        service.stop()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def swift_container(swift_service, request):
    """A fresh container name for one test; the container is deleted afterwards."""
    name = f"test-{request.node.name[:40]}-{uuid.uuid4().hex[:8]}".replace("[", "-").replace("]", "")
    yield name
    swift_service.delete_container(name)


@pytest.fixture
def s3_bucket(swift_service, request):
    """A fresh, valid S3 bucket name for one test; the bucket is deleted afterwards."""
    pytest.importorskip("boto3")
    name = f"test-{uuid.uuid4().hex[:12]}"
    yield name
    swift_service.delete_bucket(name)


@pytest.fixture
def swift_netcut(swift_service):
    """A :class:`NetCut` in front of the Swift proxy, closed after the test."""
    with NetCut.to(swift_service) as cut:
        yield cut


class NetCut:
    """A loopback TCP forwarder to ``target`` that a test can cut, hang and restore."""

    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.connections = 0                # connections forwarded so far
        self.accepted = 0                   # connections accepted (also while hanging)
        self.bytes = 0                      # bytes forwarded, both ways
        self.sent = bytearray()             # what clients sent, when recording
        self.recording = False
        self._lock = threading.Lock()
        self._live: set = set()
        self._upstreams: set = set()
        self._mode = "up"                   # up | cut | hang
        self._closed = False
        self._listener: Optional[socket.socket] = self._listen(0)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, name=f"netcut:{self.port}", daemon=True)
        self._thread.start()

    @classmethod
    def to(cls, service: SwiftService) -> "NetCut":
        return cls(service.host, service.port)

    def __enter__(self) -> "NetCut":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- controls ---------------------------------------------------------------------------
    def cut(self) -> None:
        """Close every live connection and refuse new ones (the port stops listening)."""
        with self._lock:
            self._mode = "cut"
            listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        self._drop_all()

    def hang(self) -> None:
        """Close every live connection; accept new ones but forward nothing."""
        with self._lock:
            self._mode = "hang"
        self._ensure_listening()
        self._drop_all()

    def restore(self) -> None:
        with self._lock:
            self._mode = "up"
        self._ensure_listening()
        self._drop_all()    # connections accepted while hanging carry nothing

    def close(self) -> None:
        self._closed = True
        self.cut()
        self._thread.join(timeout=2)

    # -- internals --------------------------------------------------------------------------
    def _listen(self, port: int) -> socket.socket:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen(64)
        s.settimeout(0.05)
        return s

    def _ensure_listening(self) -> None:
        with self._lock:
            if self._listener is None:
                self._listener = self._listen(self.port)

    def _drop_all(self) -> None:
        with self._lock:
            live, self._live = self._live, set()
        for s in live:
            _close(s)

    def _serve(self) -> None:
        while not self._closed:
            listener = self._listener
            if listener is None:
                time.sleep(0.02)
                continue
            try:
                client, _ = listener.accept()
            except OSError:         # timeout, or closed by cut()
                continue
            client.settimeout(None)
            with self._lock:
                mode = self._mode
                self._live.add(client)
                self.accepted += 1
            if mode != "up":
                continue            # "hang": held open, silent, until restore/cut drops it
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                self._forget(client)
                continue
            with self._lock:
                self._live.add(upstream)
                self._upstreams.add(upstream)
                self.connections += 1
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                with self._lock:          # before it is sent: an answer may beat a late record
                    self.bytes += len(data)
                    if self.recording and dst in self._upstreams and len(self.sent) < 1 << 24:
                        self.sent += data
                dst.sendall(data)
        except OSError:
            pass
        finally:
            self._forget(src)
            self._forget(dst)

    def _forget(self, s: socket.socket) -> None:
        with self._lock:
            self._live.discard(s)
            self._upstreams.discard(s)
        _close(s)


def _close(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)    # wakes a thread blocked in recv() on it
    except OSError:
        pass
    s.close()
