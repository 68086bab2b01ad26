"""What the replay engine remembers between requests, as a real engine would.

A cassette is a list of answers; an engine is state. Three things a restore depends on
cannot be written down as fixed answers, because they depend on what was asked before or on
what the client chose, and :class:`~.replay.ReplayEngine` models them here, following the
engine's own semantics (each rule names its source; see ``/work/notes/engine-facts.md``):

Created VMs
    A ``POST /vms`` answered 201 or 202 creates the VM of its answer: from then on it is
    part of the VM collection. When the recorded ``GET /vms`` (no query) is marked
    ``complete_collection`` (its response says it holds every VM of the engine: synthesized
    engines mark it; nothing recorded is taken for complete), it lists the recorded VMs
    and the created ones; a ``search`` made of ``id=`` / ``name=`` terms joined by ``or`` is
    evaluated over them (exact, case-sensitive values as with ``case_sensitive`` left
    at its default of true; ``or`` is the union: SyntaxChecker, engine-facts A2 and B6),
    ordered by name as the engine orders VMs (``ORDER BY vm_name ASC``, B6). A search with
    anything else in it (``and``, other fields, ``page``) is not evaluated: it needs a
    recorded answer.

Events an answer logs, with the request's correlation id
    An interaction's response may carry ``logged_events``: the audit-log entries the engine
    writes while it executes that request (the synthesized engine decides which, by the
    engine's rules: engine-facts B2). When the replay sends that answer it stores them,
    each with the next event index (above every ``<event id>`` of the cassettes) and, for
    entries marked ``correlated``, the request's ``Correlation-Id`` header filtered as the
    engine's CurrentFilter filters it (``[^0-9a-zA-Z_-]`` removed, 36 characters at most;
    without the header the engine makes a random UUID: B1). ``GET /events`` with
    ``search=correlation_id=X`` (and optionally ``from``, strictly greater, and ``max``) is
    answered from them, newest first (``ORDER BY audit_log_id DESC``, A2); with no such
    event the answer is an empty ``<events/>``, as the engine's. Entries not marked
    ``correlated`` (the engine logs them through a new AuditLogableImpl: 9600, 925) carry no
    correlation id and are never found by such a search. Simplification: the entries are
    stored when the answer is sent, while on an engine that answered 202 they appear when
    the job ends; a client that reads them only after the VM left ``image_locked`` (as
    this product does) sees no difference.

Partial body matches
    A recorded request with the header ``X-Replay-Body: subset`` matches a request whose
    XML body contains the recorded body's elements (tag and text, recursively; other
    elements and order ignored): e.g. ``<vm><name>web01-1</name></vm>`` answers the
    ``POST /vms`` that asks for a VM of that name, whatever OVF it carries. Parallel
    requests are then answered by what they ask, not by their arrival order
    (:func:`body_leaves`, used by :func:`~.replay.make_body_matcher`).
"""
from __future__ import annotations

import re
import threading
import uuid
from dataclasses import dataclass, field
from typing import Dict, FrozenSet, List, Optional, Tuple
from xml.etree import ElementTree
from xml.sax.saxutils import escape

API = "/ovirt-engine/api"
XML_DECL = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
SUBSET_HEADER = "X-Replay-Body"
SUBSET = "subset"
CORRELATION_HEADER = "Correlation-Id"

_EVENT_ID = re.compile(r'<event\b[^>]*\bid="(\d+)"')
_TERM = re.compile(r'\A\s*(id|name)\s*=\s*(?:"([^"]*)"|(\S+))\s*\Z')
_CORRELATION = re.compile(r'\A\s*correlation_id\s*=\s*(?:"([^"]*)"|(\S+))\s*\Z')

Leaves = FrozenSet[Tuple[str, str]]


def filter_correlation_id(value: str) -> str:
    """What the engine keeps of a Correlation-Id header (CurrentFilter L64-71)."""
    return re.sub(r"[^0-9a-zA-Z_-]+", "", value)[:36]


def body_leaves(text: str) -> Optional[Leaves]:
    """The (path, text) pairs of an XML body's leaf elements; None when it is not XML."""
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError:
        return None
    out = set()

    def walk(el: ElementTree.Element, path: str) -> None:
        here = f"{path}/{el.tag}"
        children = list(el)
        if not children:
            out.add((here, (el.text or "").strip()))
        for child in children:
            walk(child, here)

    walk(root, "")
    return frozenset(out)


def split_or(search: str) -> List[str]:
    """The terms of ``a or b or c`` (``or`` outside double quotes)."""
    terms: List[str] = []
    current: List[str] = []
    quoted, i = False, 0
    while i < len(search):
        ch = search[i]
        if ch == '"':
            quoted = not quoted
        if not quoted and search[i:i + 4].lower() == " or ":
            terms.append("".join(current))
            current, i = [], i + 4
            continue
        current.append(ch)
        i += 1
    terms.append("".join(current))
    return [t.strip() for t in terms if t.strip()]


@dataclass
class LoggedEvent:
    index: int
    code: int
    severity: str
    description: str
    correlation_id: str = ""
    vm_id: str = ""
    vm_name: str = ""
    time: str = "2026-11-26T08:00:00.000+00:00"

    def xml(self) -> str:
        i = "        "
        return (f'    <event href="{API}/events/{self.index}" id="{self.index}">\n'
                f"{i}<description>{escape(self.description)}</description>\n"
                f"{i}<code>{self.code}</code>\n"
                + (f"{i}<correlation_id>{escape(self.correlation_id)}</correlation_id>\n"
                   if self.correlation_id else "")
                + f"{i}<custom_id>-1</custom_id>\n{i}<flood_rate>30</flood_rate>\n"
                f"{i}<index>{self.index}</index>\n{i}<origin>oVirt</origin>\n"
                f"{i}<severity>{self.severity}</severity>\n{i}<time>{self.time}</time>\n"
                + (f'{i}<vm href="{API}/vms/{self.vm_id}" id="{self.vm_id}"/>\n'
                   if self.vm_id else "")
                + "    </event>\n")


@dataclass
class EngineState:
    """Created VMs and logged events of one replay engine (thread-safe)."""

    next_index: int = 1
    created: List[ElementTree.Element] = field(default_factory=list)
    events: List[LoggedEvent] = field(default_factory=list)
    _by_correlation: Dict[str, List[LoggedEvent]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def for_responses(cls, bodies: List[bytes]) -> "EngineState":
        """A state whose event indexes continue above every event of the cassettes."""
        top = 0
        for body in bodies:
            for match in _EVENT_ID.finditer(body.decode("utf-8", "replace")):
                top = max(top, int(match.group(1)))
        return cls(next_index=top + 1)

    # -- after an answer ----------------------------------------------------------------
    def answered(self, method: str, path: str, headers: Dict[str, str], response: dict,
                 payload: bytes) -> None:
        code = int((response.get("status") or {}).get("code", 200))
        logged = response.get("logged_events") or []
        if code >= 400:
            return
        cid = headers.get(CORRELATION_HEADER.lower())
        correlation = filter_correlation_id(cid) if cid else str(uuid.uuid4())
        with self._lock:
            if method == "POST" and path == f"{API}/vms" and code in (200, 201, 202):
                try:
                    self.created.append(ElementTree.fromstring(payload))
                except ElementTree.ParseError:
                    pass
            for entry in logged:
                event = LoggedEvent(
                    index=self.next_index, code=int(entry["code"]),
                    severity=str(entry.get("severity", "normal")),
                    description=str(entry.get("description", "")),
                    correlation_id=correlation if entry.get("correlated", True) else "",
                    vm_id=str(entry.get("vm_id", "")), vm_name=str(entry.get("vm_name", "")))
                self.events.append(event)
                if event.correlation_id:
                    self._by_correlation.setdefault(event.correlation_id, []).append(event)
                self.next_index += 1

    # -- answers of its own ---------------------------------------------------------------
    def events_answer(self, query: Dict[str, str]) -> Optional[bytes]:
        """``GET /events?search=correlation_id=X[&from=N][&max=M]``, or None."""
        match = _CORRELATION.match(query.get("search", ""))
        if not match or set(query) - {"search", "from", "max"}:
            return None
        wanted = filter_correlation_id(match.group(1) if match.group(1) is not None
                                       else match.group(2))
        after = int(query.get("from") or -1)
        with self._lock:
            found = [e for e in self._by_correlation.get(wanted, ()) if e.index > after]
        found.sort(key=lambda e: -e.index)
        if query.get("max"):
            found = found[:int(query["max"])]
        return _collection("events", (e.xml() for e in found)).encode("utf-8")

    def vms_answer(self, query: Dict[str, str], listed: Optional[bytes]) -> Optional[bytes]:
        """``GET /vms`` (no query: ``listed`` plus the created VMs) or ``GET /vms?search=``
        of ``id=``/``name=`` terms joined by ``or``, evaluated over the same; else None."""
        if listed is None:
            return None
        search = query.get("search")
        if set(query) - {"search"}:
            return None
        elements = [el for el in ElementTree.fromstring(listed) if el.tag == "vm"]
        with self._lock:
            elements += list(self.created)
        if search is None:
            chosen = elements
        else:
            terms = []
            for term in split_or(search):
                match = _TERM.match(term)
                if not match:
                    return None
                value = match.group(2) if match.group(2) is not None else match.group(3)
                terms.append((match.group(1), value))
            chosen = [el for el in elements if any(
                (el.get("id") if key == "id" else el.findtext("name")) == value
                for key, value in terms)]
        seen, unique = set(), []
        for el in chosen:
            if el.get("id") not in seen:
                seen.add(el.get("id"))
                unique.append(el)
        unique.sort(key=lambda el: el.findtext("name") or "")
        return _collection("vms", ("    " + ElementTree.tostring(el, encoding="unicode").strip()
                                   + "\n" for el in unique)).encode("utf-8")


def _collection(tag: str, elements) -> str:
    body = "".join(elements)
    return f"{XML_DECL}<{tag}>\n{body}</{tag}>\n" if body else f"{XML_DECL}<{tag}/>\n"
