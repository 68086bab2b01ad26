"""Engines that stop answering: for tests of timeouts, through the real SDK.

* :class:`SilentServer`: accepts TCP connections and never answers anything, not even the
  SSO login (an engine host whose ovirt-engine process is stopped with SIGSTOP, or a
  firewall that swallows packets after the handshake).
* :class:`FallsSilentEngine`: a :class:`~.replay.ReplayEngine` that answers until a request
  it is told about has been answered, then answers nothing more (an engine that stops in
  the middle of a run, with pages in flight).

Both keep the requests that arrived, so a test can count attempts; neither sends a byte
after going silent, and :meth:`stop` releases everything it holds.
"""
from __future__ import annotations

import socket
import threading
from typing import Callable, Dict, List, Optional, Tuple
from urllib.parse import parse_qsl, urlsplit

from .replay import ReplayEngine

__all__ = ["SilentServer", "FallsSilentEngine", "after_first_page"]


class SilentServer:
    """Listens on 127.0.0.1, accepts every connection, reads what comes, never answers."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.host, self.port = host, port
        self.requests: List[str] = []         # request lines ("POST /ovirt-engine/sso/...")
        self._sock: Optional[socket.socket] = None
        self._url = ""
        self._conns: List[socket.socket] = []
        self._lock = threading.Lock()
        self._stopped = threading.Event()

    @property
    def url(self) -> str:
        if not self._url:
            raise RuntimeError("SilentServer is not started")
        return self._url

    def start(self) -> "SilentServer":
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(64)
        self._sock = sock
        host, port = sock.getsockname()[:2]
        self._url = f"http://{host}:{port}/ovirt-engine/api"
        threading.Thread(target=self._accept, daemon=True, name="silent-accept").start()
        return self

    def _accept(self) -> None:
        assert self._sock is not None
        while not self._stopped.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with self._lock:
                self._conns.append(conn)
            threading.Thread(target=self._swallow, args=(conn,), daemon=True).start()

    def _swallow(self, conn: socket.socket) -> None:
        buffer = b""
        while not self._stopped.is_set():
            try:
                data = conn.recv(65536)
            except OSError:
                return
            if not data:
                return
            buffer += data
            while b"\r\n" in buffer:
                line, _, buffer = buffer.partition(b"\r\n")
                text = line.decode("latin-1")
                if text.split(" ", 1)[0] in ("GET", "POST", "PUT", "DELETE", "HEAD"):
                    with self._lock:
                        self.requests.append(text.rsplit(" ", 1)[0])

    def stop(self) -> None:
        self._stopped.set()
        if self._sock is not None:
            self._sock.close()
        with self._lock:
            for conn in self._conns:
                try:
                    conn.close()
                except OSError:
                    pass

    def __enter__(self) -> "SilentServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


#: (method, path, query) of a request; True: from now on, answer nothing.
Trigger = Callable[[str, str, dict], bool]


def after_first_page(method: str, path: str, query: dict) -> bool:
    """Silent once the first page of VMs (``search=page 1``) has been answered."""
    return method == "GET" and path.endswith("/vms") and query.get("search") == "page 1"


class FallsSilentEngine(ReplayEngine):
    """A replay engine that answers the request ``trigger`` picks, then nothing more: every
    later request is held unanswered (the connection stays open) until :meth:`stop`."""

    def __init__(self, cassettes, *, trigger: Trigger = after_first_page, **kw):
        super().__init__(cassettes, **kw)
        self.trigger = trigger
        self.silent = threading.Event()
        self.held: List[Tuple[str, str]] = []     # (method, path?query) left unanswered
        self._released = threading.Event()

    def answer(self, method_: str, target: str, body: bytes, content_type: str = "",
               headers: Optional[Dict[str, str]] = None,
               ) -> Tuple[int, str, List[Tuple[str, str]], bytes]:
        split = urlsplit(target)
        if self.silent.is_set():
            with self._lock:
                self.held.append((method_, split.path + (f"?{split.query}" if split.query
                                                         else "")))
            self._released.wait()
            return 503, "Gone", [], b""
        result = super().answer(method_, target, body, content_type, headers)
        if self.trigger(method_, split.path, dict(parse_qsl(split.query))):
            self.silent.set()
        return result

    def stop(self) -> None:
        self._released.set()
        super().stop()
