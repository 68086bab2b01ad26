"""A threaded HTTP/1.1 server on 127.0.0.1, shared by the replay engine and the recorder.

Both stand where an engine would, for the SDK (libcurl): keep-alive connections,
``Expect: 100-continue`` for large bodies, chunked request bodies, and no Nagle delay
between the header and body writes (a 40 ms stall per request otherwise).
"""
from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import List, Optional
from urllib.parse import urlsplit

log = logging.getLogger(__name__)


class LoopbackHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"      # pycurl keeps connections; Expect: 100-continue works
    disable_nagle_algorithm = True     # headers and body are two writes: no 40 ms ACK stall

    def read_body(self) -> bytes:
        """The request body, whether sized by Content-Length or sent chunked."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: List[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def write_payload(self, payload: bytes) -> None:
        try:
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            log.info("the client went away before %s was answered", self.path)
            self.close_connection = True

    def log_request(self, code="-", size="-") -> None:
        # The request line may carry a query with secrets: log the path only.
        log.debug("%s %s -> %s", self.command, urlsplit(self.path).path, code)

    def log_message(self, fmt, *args) -> None:
        log.debug("%s: " + fmt, self.server_version, *args)


class LoopbackServer:
    """Start/stop a :class:`ThreadingHTTPServer` whose handler class gets ``owner_attr``
    set to this object. Subclasses define ``handler_class``, ``owner_attr`` and ``url_path``."""

    handler_class = LoopbackHandler
    owner_attr = "owner"
    url_path = ""                      # appended to http://host:port in :attr:`url`

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.host, self.port = host, port
        self._server: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        host, port = self._server.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        return f"http://{host}:{port}{self.url_path}"

    def start(self):
        if self._server is not None:
            return self
        handler = type(self.handler_class.__name__, (self.handler_class,),
                       {self.owner_attr: self})
        self._server = ThreadingHTTPServer((self.host, self.port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True, name=f"{type(self).__name__}-"
                                        f"{self._server.server_address[1]}")
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
