"""Answers the replay server derives from recorded ones, with the engine's own semantics.

A cassette cannot hold every ``search`` and ``from`` a client may send, and it must not be
written for one client's request pattern. Two kinds of request are answered from what the
cassette does hold, by the rules the engine applies (engine-facts A2, B6):

* **A collection searched by id** -- ``GET /vms?search=id=A or id=B ...`` (with ``max``,
  ``all_content`` ...): the engine answers the entities with those ids, ``ORDER BY
  vm_name ASC``, at most ``max``. Composed from the recorded ``GET /vms/{id}`` answers with
  the same other parameters: a 404 there is an entity the engine does not have (left out);
  an id with no recording at all makes the request unanswerable (the server says so).
* **The events feed** -- ``GET /events?from=X&max=N&search=S``: the events not dismissed
  with ``audit_log_id > X`` (only when ``X > 0``: SyntaxChecker adds the condition then),
  matching ``S``, newest first (``ORDER BY audit_log_id DESC``), at most ``N``. Composed from
  the recorded plain ``GET /events`` (every event, newest first).

The search grammar is the engine's (SyntaxChecker): ``field = value`` and ``field !=
value`` terms joined by ``and`` and ``or``, all ANDs grouped before the ORs. Only the fields
listed here are understood; a search with any other field, a wildcard or parentheses is not
composed (the request stays unanswered rather than answered wrongly).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple
from xml.etree import ElementTree

__all__ = ["Term", "parse_search", "ids_of_search", "EventFeed", "compose_collection",
           "EVENT_FIELDS"]

XML_DECL = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_TERM = re.compile(r'\s*([A-Za-z_][\w.]*)\s*(!=|=)\s*("[^"]*"|[^\s"()]+)\s*')
_JOIN = re.compile(r"(and|or)\b\s*", re.I)


@dataclass(frozen=True)
class Term:
    field: str
    op: str                                 # "=" or "!="
    value: str


def parse_search(text: str) -> Optional[List[List[Term]]]:
    """``text`` as an OR of AND-groups of terms, or None when it is not that grammar."""
    groups: List[List[Term]] = [[]]
    pos, text = 0, text.strip()
    while True:
        term = _TERM.match(text, pos)
        if term is None:
            return None
        value = term.group(3)
        if value.startswith('"'):
            value = value[1:-1]
        if "*" in value:
            return None                     # the engine's wildcard: not modelled
        groups[-1].append(Term(term.group(1).lower(), term.group(2), value))
        pos = term.end()
        if pos == len(text):
            return groups
        join = _JOIN.match(text, pos)
        if join is None:
            return None
        if join.group(1).lower() == "or":
            groups.append([])
        pos = join.end()


def ids_of_search(text: str) -> Optional[List[str]]:
    """The ids of a search that is only ``id=A or id=B ...``; None for any other search."""
    groups = parse_search(text)
    if not groups or any(len(g) != 1 or g[0].field != "id" or g[0].op != "=" for g in groups):
        return None
    return [g[0].value for g in groups]


def compose_collection(tag: str, elements: Sequence[str], max_: Optional[int]) -> str:
    """A collection document of ``elements`` (each one entity's XML), sorted by name as the
    engine's default ``ORDER BY <name> ASC``, at most ``max_``."""
    def name(element: str) -> str:
        found = re.search(r"<name>(.*?)</name>", element, re.S)
        return found.group(1) if found else ""
    chosen = sorted(elements, key=name)
    if max_ is not None and max_ >= 0:
        chosen = chosen[:max_]
    body = "".join("    " + e.strip() + "\n" for e in chosen)
    return f"{XML_DECL}<{tag}>\n{body}</{tag}>\n" if body else f"{XML_DECL}<{tag}/>\n"


def entity_xml(document: str) -> str:
    """The entity element of a single-entity answer (its XML declaration removed)."""
    return re.sub(r"^\s*<\?xml[^>]*\?>\s*", "", document)


# -- the events feed ------------------------------------------------------------------------
#: Search fields of events (AuditLogConditionFieldAutoCompleter) this model understands, and
#: where REST shows each (an element's text, or a link's ``id``).
EVENT_FIELDS: Dict[str, Tuple[str, str]] = {
    "type": ("code", "text"), "severity": ("severity", "text"), "origin": ("origin", "text"),
    "correlation_id": ("correlation_id", "text"), "custom_event_id": ("custom_id", "text"),
    "_event_vm_id": ("vm", "id"), "_event_template_id": ("template", "id"),
    "_event_datacenter_id": ("data_center", "id"),
}


@dataclass(frozen=True)
class _Event:
    id: int
    xml: str
    fields: Dict[str, str]


class EventFeed:
    """The recorded plain ``GET /events`` answer, answering ``from``/``max``/``search``."""

    def __init__(self, document: str):
        root = ElementTree.fromstring(document.encode("utf-8"))
        self.events: List[_Event] = []
        for element in root.findall("event"):
            fields = {}
            for name, (tag, kind) in EVENT_FIELDS.items():
                child = element.find(tag)
                if child is not None:
                    value = child.get("id") if kind == "id" else child.text
                    fields[name] = (value or "").strip()
            self.events.append(_Event(int(element.get("id") or element.findtext("index") or 0),
                                      ElementTree.tostring(element, encoding="unicode"), fields))
        self.events.sort(key=lambda e: -e.id)

    @staticmethod
    def _matches(event: _Event, groups: List[List[Term]]) -> bool:
        def term(t: Term) -> bool:
            same = event.fields.get(t.field, "").lower() == t.value.lower()
            return same if t.op == "=" else not same
        return any(all(term(t) for t in group) for group in groups)

    def answer(self, query: Dict[str, str]) -> Optional[str]:
        """The body for ``query`` (``from``, ``max``, ``search``, ``case_sensitive``), or
        None when it asks for something this model does not know."""
        if set(query) - {"from", "max", "search", "case_sensitive"}:
            return None
        groups = None
        if query.get("search"):
            groups = parse_search(query["search"])
            if groups is None or any(t.field not in EVENT_FIELDS for g in groups for t in g):
                return None
        try:
            after = int(query.get("from", "-1"))
            limit = int(query["max"]) if "max" in query else None
        except ValueError:
            return None
        chosen = [e for e in self.events if (after <= 0 or e.id > after)
                  and (groups is None or self._matches(e, groups))]
        if limit is not None and limit >= 0:
            chosen = chosen[:limit]
        body = "".join("    " + e.xml.strip() + "\n" for e in chosen)
        return f"{XML_DECL}<events>\n{body}</events>\n" if body else f"{XML_DECL}<events/>\n"
