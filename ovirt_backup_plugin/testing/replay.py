"""Replay of vcrpy cassettes on the wire, for the real oVirt SDK.

``ovirtsdk4`` talks HTTP through pycurl, which vcrpy cannot intercept. So the replay
happens one level down: :class:`ReplayEngine` is a loopback HTTP server that answers with
the responses of vcrpy cassettes, and the unmodified SDK connects to its :attr:`~ReplayEngine.url`.

Cassettes are loaded with vcrpy's own persister and serializers (``.json`` files with the
JSON serializer, everything else with the YAML one). Requests are matched with vcrpy's
matchers ``method``, ``path`` and ``query`` (parsed, so ``page+1`` equals ``page%201``)
plus :func:`make_body_matcher`, which compares bodies only when the *recorded* request
has one. Scheme, host and port are ignored: cassettes say ``https://engine.example.com``.

Play order
    Among the interactions that match a request, the first one not yet played answers it.
    When all of them have been played, the last one answers again. So a GET that was
    recorded once can be repeated, and a sequence of ``POST /vms`` gets the recorded
    answers in the recorded order. Later cassettes are searched after earlier ones.

Composed answers
    A request with no exact match that the engine answers by a rule from entities the
    cassette holds is answered by that rule (:mod:`.compose`): a collection searched by
    id (``GET /vms?search=id=A or id=B``, from the recorded ``GET /vms/{id}``) and the
    events feed (``GET /events?from=X&max=N&search=S``, from the recorded ``GET /events``).
    Each such answer is recorded in :attr:`~ReplayEngine.composed`.

Reload
    :meth:`ReplayEngine.reload` swaps the cassettes atomically (a mutation round of a
    synthesized engine), keeping the port and what was received.

Fallback
    ``fallback="path"``: a request with no exact match is answered by an interaction
    with the same method and path (query and body ignored, same play order); each such
    answer is logged at WARNING and recorded in :attr:`~ReplayEngine.fallbacks`.
    ``fallback="none"`` (default) answers what an engine answers for an unknown entity:
    404 with an XML ``<fault>`` naming the request. Nothing is ever invented.

SSO
    Form bodies are scrubbed before they are stored or compared. In a token request the
    password becomes ``***`` if it equals the server's ``password`` and ``***rejected***``
    otherwise, so one cassette holds both the success and the rejection (see
    ``cassettes/sso.yaml``). An SSO request with no recorded answer gets 400 JSON
    ``access_denied``. Tokens and passwords are never stored, logged or compared in clear.

Engine state
    What an engine remembers between requests is modelled by :mod:`.engine_state`, after
    the engine's semantics: a ``POST /vms`` answered 2xx creates its VM (``GET /vms`` and
    ``GET /vms?search=id=… or name=…`` then include it; such searches are evaluated over
    the recorded ``GET /vms`` and the created VMs when no answer was recorded for them,
    only when that recorded answer is marked ``complete_collection``: the engine's every
    VM, as synthesized engines mark it; a recording is never taken for complete),
    the audit-log entries an answer carries (``logged_events``) are stored with the
    request's ``Correlation-Id`` and answer ``GET /events?search=correlation_id=X``, and a
    recorded request marked ``X-Replay-Body: subset`` matches by the elements of its body
    (a ``POST /vms`` by the VM's name). See that module for each rule and its source.

Run ``python -m ovirt_backup_plugin.testing.replay CASSETTE... [--port N] [--delay S]
[--fallback path] [--stats FILE]`` to serve in the foreground; the first line on stdout is
the URL. ``--stats`` keeps the count of requests and body bytes in a JSON file (what the
benchmarks compare runs by).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union
from urllib.parse import parse_qs, parse_qsl, quote, unquote_plus, urlencode, urlsplit
from xml.sax.saxutils import escape

from vcr.matchers import method, path, query, requests_match
from vcr.persisters.filesystem import FilesystemPersister
from vcr.request import Request
from vcr.serializers import jsonserializer, yamlserializer

from .compose import EventFeed, compose_collection, entity_xml, ids_of_search
from .engine_state import SUBSET, SUBSET_HEADER, EngineState, body_leaves
from .loopback import LoopbackHandler, LoopbackServer
from .scrub import MASK, scrub_form, scrub_json

log = logging.getLogger("ovirt_backup_plugin.replay")

API_PREFIX = "/ovirt-engine/api"
SSO_TOKEN_PATH = "/ovirt-engine/sso/oauth/token"
SSO_LOGOUT_PATH = "/ovirt-engine/services/sso-logout"
REJECTED = "***rejected***"
DEFAULT_USERNAME = "admin@internal"

# Never copied from a cassette to the wire: hop-by-hop, length and encoding headers
# (bodies are stored decoded; the length is computed from what is sent).
_SKIPPED_RESPONSE_HEADERS = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
    "trailer", "trailers", "transfer-encoding", "upgrade", "content-length",
    "content-encoding"})

PathLike = Union[str, "os.PathLike[str]"]


#: Request headers kept in :attr:`ReceivedRequest.headers` (lower case): what tells an
#: engine how to run a command, never credentials (Authorization is not kept).
KEPT_HEADERS = ("correlation-id", "x-ovirt-expect", "expect", "prefer")


@dataclass(frozen=True)
class ReceivedRequest:
    """A request as the server received it, secrets scrubbed (of the headers only
    :data:`KEPT_HEADERS` are kept)."""

    method: str
    path: str
    query: Dict[str, str]          # parsed query string (last value wins)
    body: str                      # decoded text, "" when there was none
    headers: Dict[str, str] = field(default_factory=dict)


def load_interactions(cassette: PathLike) -> List[Tuple[Request, dict]]:
    """``(vcr Request, response dict)`` pairs of one cassette, loaded by vcrpy."""
    serializer = jsonserializer if str(cassette).lower().endswith(".json") else yamlserializer
    loaded = FilesystemPersister.load_cassette(cassette, serializer)
    requests, responses = loaded[0], loaded[1]    # vcrpy may add a third item: metadata
    return list(zip(requests, responses))


def _text(body) -> str:
    if body is None:
        return ""
    if isinstance(body, (bytes, bytearray)):
        return bytes(body).decode("utf-8", "replace")
    return str(body)


def _is_form(req: Request) -> bool:
    ctype = req.headers.get("Content-Type", "") or ""
    return "x-www-form-urlencoded" in ctype.lower() or req.path in (SSO_TOKEN_PATH,
                                                                     SSO_LOGOUT_PATH)


def make_body_matcher(scrub=scrub_form):
    """A vcrpy matcher that compares bodies only when the recorded request has one.

    vcrpy calls matchers as ``matcher(request_made, recorded)``. Form bodies are compared
    field by field after ``scrub`` (so secrets are compared masked), JSON bodies as parsed
    documents, anything else as text.
    """
    def body(r1: Request, r2: Request) -> None:
        if r2.body is None:
            return
        new, recorded = _text(r1.body), _text(r2.body)
        if (r2.headers.get(SUBSET_HEADER) or "").lower() == SUBSET:
            wanted, got = _leaves(r2, recorded), _leaves(r1, new)
            if wanted is None or got is None or not wanted <= got:
                raise AssertionError("the body lacks the recorded elements")
            return
        if _is_form(r1) or _is_form(r2):
            same = (parse_qs(scrub(new), keep_blank_values=True)
                    == parse_qs(scrub(recorded), keep_blank_values=True))
        else:
            try:
                same = json.loads(scrub_json(new)) == json.loads(scrub_json(recorded))
            except ValueError:
                same = new == recorded
        if not same:
            raise AssertionError("the bodies differ")

    return body


def _leaves(request: Request, text: str):
    """The body's leaves, computed once per request object (a POST is compared with many)."""
    cached = getattr(request, "_replay_leaves", False)
    if cached is False:
        cached = body_leaves(text)
        request._replay_leaves = cached
    return cached


@dataclass
class _Table:
    """The interactions of a set of cassettes and their indexes: (method, path) for the
    fallback; the same plus the parsed query (what vcrpy's query matcher compares) narrows
    the candidates of an exact match."""

    requests: List[Request]
    responses: List[dict]
    by_path: Dict[Tuple[str, str], List[int]]
    by_query: Dict[tuple, List[int]]
    played: List[bool]
    feeds: Dict[int, EventFeed]
    #: requests marked ``X-Replay-Body: subset``: index -> the leaves their body must hold
    subset: Dict[int, frozenset]

    @classmethod
    def load(cls, cassettes: Iterable[PathLike]) -> "_Table":
        requests: List[Request] = []
        responses: List[dict] = []
        for cassette in cassettes:
            for request, response in load_interactions(cassette):
                requests.append(request)
                responses.append(response)
        by_path: Dict[Tuple[str, str], List[int]] = defaultdict(list)
        by_query: Dict[tuple, List[int]] = defaultdict(list)
        for i, request in enumerate(requests):
            key = (request.method.upper(), request.path)
            by_path[key].append(i)
            by_query[key + (tuple(request.query),)].append(i)
        subset = {i: body_leaves(_text(r.body)) or frozenset() for i, r in enumerate(requests)
                  if r.body is not None
                  and (r.headers.get(SUBSET_HEADER) or "").lower() == SUBSET}
        return cls(requests, responses, by_path, by_query, [False] * len(requests), {}, subset)


def _xml_response(body: str) -> dict:
    return {"status": {"code": 200, "message": "OK"},
            "headers": {"content-type": ["application/xml;charset=UTF-8"]},
            "body": {"string": body}}


class _Handler(LoopbackHandler):
    """Reads one request, asks the engine for the answer, writes it (keep-alive)."""

    server_version = "ovirt-backup-replay"
    engine: ReplayEngine

    def _handle(self) -> None:
        body = self.read_body()
        try:
            kept = {k: v for k, v in ((k.lower(), v) for k, v in self.headers.items())
                    if k in KEPT_HEADERS}
            # through a thread-local, so subclasses overriding answer() keep their signature
            self.engine.request_headers.value = kept
            code, reason, headers, payload = self.engine.answer(
                self.command, self.path, body, self.headers.get("Content-Type") or "")
        except Exception:                                  # pragma: no cover - a bug here
            log.exception("replay: failed to answer %s", self.command)
            code, reason, headers, payload = 500, "Internal Server Error", [], b""
        self.send_response(code, reason or None)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.write_payload(payload)
        self.engine.count(len(body), len(payload))

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle


class ReplayEngine(LoopbackServer):
    """A loopback HTTP server that answers the SDK from vcrpy cassettes.

    ``received``, ``unmatched`` and ``fallbacks`` are lists appended under a lock in
    arrival order; read them (or copy them) at any time.
    """

    handler_class, owner_attr, url_path = _Handler, "engine", API_PREFIX

    def __init__(self, cassettes: Union[PathLike, Iterable[PathLike]], *, fallback: str = "none",
                 delay: float = 0.0, password: str = "replay-secret", host: str = "127.0.0.1",
                 port: int = 0):
        if fallback not in ("none", "path"):
            raise ValueError(f"fallback must be 'none' or 'path', not {fallback!r}")
        if isinstance(cassettes, (str, os.PathLike)):
            cassettes = [cassettes]
        super().__init__(host, port)
        self.fallback, self.delay, self.password = fallback, float(delay), password
        self._lock = threading.Lock()
        self._table = _Table.load(cassettes)
        self._matchers = [method, path, query, make_body_matcher(self.scrub_form)]
        self.state = EngineState.for_responses([_body_bytes(r) for r in self._table.responses])
        self.request_headers = threading.local()     # the headers of the request at hand
        self.received: List[ReceivedRequest] = []
        self.unmatched: List[str] = []
        self.fallbacks: List[str] = []
        self.composed: List[str] = []
        self.username = self._recorded_username()
        self.stats = {"requests": 0, "bytes_in": 0, "bytes_out": 0}   # bodies, as sent
        self.stats_path: Optional[str] = None       # rewritten after every request

    def count(self, bytes_in: int, bytes_out: int) -> None:
        """Count one answered request (``stats``; written to ``stats_path`` when set)."""
        with self._lock:
            self.stats["requests"] += 1
            self.stats["bytes_in"] += bytes_in
            self.stats["bytes_out"] += bytes_out
            if self.stats_path:
                tmp = self.stats_path + ".tmp"
                with open(tmp, "w", encoding="utf-8") as f:
                    json.dump(self.stats, f)
                os.replace(tmp, self.stats_path)

    # The interactions, swapped as a whole by reload(): a request is answered from one
    # table, old or new, never from a mix.
    @property
    def _requests(self) -> List[Request]:
        return self._table.requests

    @property
    def _responses(self) -> List[dict]:
        return self._table.responses

    def reload(self, cassettes: Union[PathLike, Iterable[PathLike]]) -> None:
        """Answer from these cassettes from now on (the engine changed); the port, the
        settings and what was received so far stay. The swap is atomic."""
        if isinstance(cassettes, (str, os.PathLike)):
            cassettes = [cassettes]
        table = _Table.load(cassettes)
        with self._lock:
            self._table = table

    # -- scrubbing -------------------------------------------------------------------
    def _mask(self, key: str, value: str) -> str:
        raw = unquote_plus(value)
        if key.lower() == "password":
            if raw == self.password:
                return MASK
            if raw.startswith("***") and raw.endswith("***"):
                return value                # already masked (a recording)
            return REJECTED
        return MASK

    def scrub_form(self, text: str) -> str:
        """Mask form secrets; a password is ``***`` only if it is this server's password."""
        return scrub_form(text, mask=self._mask)

    def _recorded_username(self) -> str:
        for request, response in zip(self._requests, self._responses):
            if request.path == SSO_TOKEN_PATH and request.body is not None \
                    and response["status"]["code"] == 200:
                names = parse_qs(_text(request.body)).get("username")
                if names:
                    return names[0]
        return DEFAULT_USERNAME

    # -- answering -------------------------------------------------------------------
    def _pick(self, table: "_Table", candidates: Sequence[int]) -> int:
        with self._lock:
            for i in candidates:
                if not table.played[i]:
                    table.played[i] = True
                    return i
            return candidates[-1]

    def find(self, request: Request, *, fallback: bool = True) -> Tuple[Optional[int], bool]:
        """Index of the interaction that answers ``request``, and whether by fallback."""
        return self._find(self._table, request, fallback=fallback)

    def _find(self, table: "_Table", request: Request, *,
              fallback: bool = True) -> Tuple[Optional[int], bool]:
        key = (request.method.upper(), request.path)
        candidates_q = table.by_query.get(key + (tuple(request.query),), ())
        if any(i in table.subset for i in candidates_q):
            # many POST /vms of one name each: leave out the other names before matching
            got = _leaves(request, _text(request.body))
            candidates_q = [i for i in candidates_q if i not in table.subset
                            or (got is not None and table.subset[i] <= got)]
        matches = [i for i in candidates_q
                   if requests_match(request, table.requests[i], self._matchers)]
        if matches:
            return self._pick(table, matches), False
        candidates = table.by_path.get(key)
        if fallback and self.fallback == "path" and candidates:
            return self._pick(table, candidates), True
        return None, False

    def compose(self, request: Request) -> Optional[dict]:
        """An answer derived from recorded ones (see :mod:`.compose`), or None: a
        collection searched by id, or the events feed."""
        return self._compose(self._table, request)

    def _compose(self, table: "_Table", request: Request) -> Optional[dict]:
        if request.method.upper() != "GET":
            return None
        params = dict(request.query)
        if request.path.endswith("/events") and set(params) & {"from", "max", "search"}:
            plain = table.by_query.get(("GET", request.path, ()))
            if not plain:
                return None
            index = plain[-1]
            feed = table.feeds.get(index)
            if feed is None:
                feed = table.feeds[index] = EventFeed(_text(
                    (table.responses[index].get("body") or {}).get("string")))
            body = feed.answer(params)
            return None if body is None else _xml_response(body)
        ids = ids_of_search(params.get("search", ""))
        if ids is None:
            return None
        rest = {k: v for k, v in params.items() if k not in ("search", "max")}
        elements = []
        for entity_id in ids:
            single = Request("GET", "http://replay" + request.path + "/" + quote(entity_id)
                             + ("?" + urlencode(sorted(rest.items())) if rest else ""),
                             None, {})
            found, _ = self._find(table, single, fallback=False)
            if found is None:
                return None                # an id the cassette knows nothing about
            response = table.responses[found]
            if int((response.get("status") or {}).get("code", 200)) == 404:
                continue                   # the engine has no such entity: not listed
            elements.append(entity_xml(_text((response.get("body") or {}).get("string"))))
        try:
            max_ = int(params["max"]) if "max" in params else None
        except ValueError:
            return None
        return _xml_response(compose_collection(request.path.rsplit("/", 1)[-1], elements,
                                                max_))

    def answer(self, method_: str, target: str, body: bytes, content_type: str = "",
               headers: Optional[Dict[str, str]] = None,
               ) -> Tuple[int, str, List[Tuple[str, str]], bytes]:
        """Status, reason, headers and body for one request (what the handler sends)."""
        if headers is None:
            headers = getattr(self.request_headers, "value", None)
            self.request_headers.value = None
        headers = {k.lower(): v for k, v in (headers or {}).items() if k.lower() in KEPT_HEADERS}
        if self.delay:
            time.sleep(self.delay)
        split = urlsplit(target)
        req_path, qs = split.path, scrub_form(split.query, mask=self._mask)
        text = _text(body)
        if text and ("x-www-form-urlencoded" in content_type.lower()
                     or req_path in (SSO_TOKEN_PATH, SSO_LOGOUT_PATH)):
            text = self.scrub_form(text)
        elif text and "json" in content_type.lower():
            text = scrub_json(text)
        label = f"{method_} {req_path}" + (f"?{qs}" if qs else "")
        with self._lock:
            self.received.append(ReceivedRequest(
                method_, req_path, dict(parse_qsl(qs, keep_blank_values=True)), text, headers))
        request = Request(method_, "http://replay" + req_path + (f"?{qs}" if qs else ""),
                          text.encode("utf-8") if body else None,
                          {"Content-Type": content_type})
        table = self._table
        index, by_fallback = self._find(table, request, fallback=False)
        own = self._state_answer(table, method_, req_path, qs, index)
        if own is not None:
            return 200, "OK", [("Content-Type", "application/xml;charset=UTF-8")], own
        if index is None:
            composed = self._compose(table, request)
            if composed is not None:
                with self._lock:
                    self.composed.append(label)
                return self._response(composed)
            index, by_fallback = self._find(table, request)
        if index is None:
            with self._lock:
                self.unmatched.append(label)
            log.warning("replay: no recorded interaction for %s", label)
            return self._not_recorded(req_path, label)
        if by_fallback:
            with self._lock:
                self.fallbacks.append(label)
            log.warning("replay: fallback (method+path) for %s: answering with the recorded %s",
                        label, table.requests[index].uri)
        answer = self._response(table.responses[index])
        self.state.answered(method_, req_path, headers, table.responses[index], answer[3])
        return answer

    def _state_answer(self, table: "_Table", method_: str, req_path: str, qs: str,
                      index: Optional[int]) -> Optional[bytes]:
        """An answer from the engine state (:mod:`.engine_state`), or None."""
        if method_ != "GET":
            return None
        query = dict(parse_qsl(qs, keep_blank_values=True))
        if req_path == f"{API_PREFIX}/events" and index is None:
            return self.state.events_answer(query)
        if req_path == f"{API_PREFIX}/vms" and (index is None or not query) \
                and set(query) <= {"search"} and (query or self.state.created):
            listed = [i for i in table.by_query.get(("GET", req_path, ()), ())
                      if table.responses[i].get("complete_collection")]
            if not listed:
                return None
            return self.state.vms_answer(query, _body_bytes(table.responses[listed[0]]))
        return None

    @staticmethod
    def _response(response: dict) -> Tuple[int, str, List[Tuple[str, str]], bytes]:
        status = response.get("status") or {}
        headers = []
        for name, values in (response.get("headers") or {}).items():
            if name.lower() in _SKIPPED_RESPONSE_HEADERS:
                continue
            for value in values if isinstance(values, (list, tuple)) else [values]:
                headers.append((name, str(value)))
        payload = (response.get("body") or {}).get("string") or b""
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        return int(status.get("code", 200)), status.get("message") or "", headers, payload

    @staticmethod
    def _not_recorded(req_path: str, label: str):
        detail = f"replay: no recorded interaction for {label}"
        if req_path.startswith("/ovirt-engine/sso/") or req_path == SSO_LOGOUT_PATH:
            body = json.dumps({"error_code": "access_denied", "error": detail})
            return 400, "Bad Request", [("Content-Type", "application/json")], body.encode()
        body = (f"<fault><reason>Operation Failed</reason>"
                f"<detail>{escape(detail)}</detail></fault>")
        return 404, "Not Found", [("Content-Type", "application/xml")], body.encode()


class GatedEngine(ReplayEngine):
    """A replay engine that holds every request ``holds(method, path, query)`` accepts
    until the test opens ``gate`` (at most ``deadline`` seconds), and sets ``arrived`` when
    one comes: a test acts while a run is certainly in the middle of that request (kill it,
    signal it, change the engine). ``stop`` opens the gate."""

    def __init__(self, cassettes: Union[PathLike, Iterable[PathLike]], *,
                 holds: Callable[[str, str, Dict[str, str]], bool], deadline: float = 60.0,
                 **kw: Any) -> None:
        super().__init__(cassettes, **kw)
        self.holds, self.deadline = holds, deadline
        self.arrived, self.gate = threading.Event(), threading.Event()

    def answer(self, method_: str, target: str, body: bytes, content_type: str = "",
               headers: Optional[Dict[str, str]] = None,
               ) -> Tuple[int, str, List[Tuple[str, str]], bytes]:
        split = urlsplit(target)
        if not self.gate.is_set() and self.holds(method_, split.path,
                                                 dict(parse_qsl(split.query))):
            self.arrived.set()
            self.gate.wait(self.deadline)
        return super().answer(method_, target, body, content_type, headers)

    def stop(self) -> None:
        self.gate.set()
        super().stop()


def _body_bytes(response: dict) -> bytes:
    payload = (response.get("body") or {}).get("string") or b""
    return payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ovirt_backup_plugin.replay",
        description="Serve vcrpy cassettes to ovirtsdk4 over loopback HTTP. "
                    "Prints the API URL as the first line on stdout.")
    parser.add_argument("cassettes", nargs="+", metavar="CASSETTE")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds of sleep per request")
    parser.add_argument("--fallback", choices=("none", "path"), default="none")
    parser.add_argument("--password", default="replay-secret",
                        help="the password the SSO token request must carry")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    parser.add_argument("--stats", metavar="FILE", help="keep the number of requests and the "
                        "bytes of their bodies in this JSON file (rewritten after each request)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    engine = ReplayEngine(args.cassettes, fallback=args.fallback, delay=args.delay,
                          password=args.password, host=args.host, port=args.port)
    engine.stats_path = args.stats
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with engine:
        print(engine.url, flush=True)
        try:
            while not stop.wait(1.0):
                pass
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
