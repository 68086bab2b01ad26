"""The replay engine's events feed and searches by id, through the real SDK: the engine's
semantics (engine-facts A2, B6), whatever ``from``, ``max`` and ``search`` a client sends.

* ``from`` is strictly greater, and only applied when above 0; newest first; ``max`` keeps
  the *newest* N; ``search`` by ``type`` (OR), ``_event_vm_id``, AND before OR;
* dismissed and aged-out events are gone; the API root has the engine's clock and count;
* ``GET /vms?search=id=A or id=B`` is the VMs with those ids, by name, at most ``max``; a
  removed VM is absent; an id the cassette never knew is not answered (404);
* ``reload`` swaps the engine atomically.
"""
import datetime as dt
import re

import ovirtsdk4
import pytest

from ovirt_backup_plugin.engine import Engine, EngineSettings
from ovirt_backup_plugin.engine.events import FEED_MAX, feed_search, read_feed
from ovirt_backup_plugin.testing import synth
from ovirt_backup_plugin.testing.compose import parse_search
from ovirt_backup_plugin.testing.replay import ReplayEngine

PASSWORD = "replay-secret"


@pytest.fixture
def engine_with_log():
    eng = synth.demo_engine()
    web, db, app = (next(v for v in eng.vms if v.name == n) for n in ("web01", "db01", "app01"))
    eng.log_event(30)                                    # 1001 a login: no VM
    eng.tick()
    eng.change_vm(web)                                   # 1002 type 35 web01
    eng.tick()
    eng.run_vm(db)                                       # 1003 153, 1004 32 db01
    eng.tick()
    eng.change_vm(app, "nic")                            # 1005 934 app01
    eng.tick()
    eng.remove_vm(app)                                   # 1006 113 app01
    return eng


@pytest.fixture
def server(tmp_path, engine_with_log):
    with ReplayEngine([engine_with_log.write_cassette(tmp_path / "e.yaml")],
                      password=PASSWORD) as s:
        s.synthetic = engine_with_log
        yield s


@pytest.fixture
def events(server):
    conn = ovirtsdk4.Connection(url=server.url, username=server.username, password=PASSWORD)
    yield conn.system_service().events_service()
    conn.close()


def ids(events):
    return [int(e.id) for e in events]


def test_from_is_strictly_greater_and_the_feed_is_newest_first(events):
    assert ids(events.list()) == [1006, 1005, 1004, 1003, 1002, 1001]
    assert ids(events.list(from_=1003)) == [1006, 1005, 1004]
    assert ids(events.list(from_=0)) == ids(events.list())     # only from > 0 narrows
    assert ids(events.list(from_=1006)) == []


def test_max_keeps_the_newest_events_above_from_not_the_next_ones(events):
    assert ids(events.list(from_=1001, max=2)) == [1006, 1005]
    assert ids(events.list(max=1)) == [1006]


def test_search_by_type_and_by_vm_id(events, engine_with_log):
    web = next(v for v in engine_with_log.vms if v.name == "web01")
    assert ids(events.list(search="type=35 or type=113")) == [1006, 1002]
    assert ids(events.list(search=f"_event_vm_id={web.id}")) == [1002]
    app = engine_with_log.removed[0]
    # AND binds before OR: (type=934 and vm=app01) or type=30
    assert ids(events.list(search=f"type=934 and _event_vm_id={app.id} or type=30")) == [
        1005, 1001]
    got = {int(e.id): (e.code, e.vm.id if e.vm else None) for e in events.list()}
    assert got[1006] == (113, app.id) and got[1001] == (30, None)


def test_dismissed_and_aged_out_events_vanish(tmp_path, engine_with_log):
    eng = engine_with_log
    eng.dismiss(next(e for e in eng.events if e.index == 1005))
    eng.tick(31 * 86400)
    eng.log_event(35, vm=eng.vms[0])                    # 1007, a month later
    assert eng.age_out() == 6                           # 1001-1006, the dismissed one too
    with ReplayEngine([eng.write_cassette(tmp_path / "later.yaml")], password=PASSWORD) as s:
        conn = ovirtsdk4.Connection(url=s.url, username=s.username, password=PASSWORD)
        assert ids(conn.system_service().events_service().list(from_=1000)) == [1007]
        eng.clear_all_events()
        s.reload(eng.write_cassette(tmp_path / "cleared.yaml"))
        assert ids(conn.system_service().events_service().list()) == []
        conn.close()


def test_the_api_root_has_the_engines_clock_and_vm_count(server, engine_with_log):
    conn = ovirtsdk4.Connection(url=server.url, username=server.username, password=PASSWORD)
    api = conn.system_service().get()
    conn.close()
    assert api.time == engine_with_log.now
    assert api.summary.vms.total == len(engine_with_log.vms) == 5


def test_vms_searched_by_id_are_answered_from_their_entities(server, engine_with_log):
    eng = engine_with_log
    web, db = (next(v for v in eng.vms if v.name == n) for n in ("web01", "db01"))
    app = eng.removed[0]
    conn = ovirtsdk4.Connection(url=server.url, username=server.username, password=PASSWORD)
    vms = conn.system_service().vms_service()
    found = vms.list(search=f"id={web.id} or id={app.id} or id={db.id}", all_content=True, max=50)
    assert [v.name for v in found] == ["db01", "web01"]          # by name; app01 is removed
    assert found[1].initialization.configuration.data == web.ovf
    assert [v.name for v in vms.list(search=f"id={web.id} or id={db.id}", all_content=True,
                                     max=1)] == ["db01"]
    with pytest.raises(ovirtsdk4.NotFoundError):                   # never recorded: no answer
        vms.list(search="id=00000000-1111-2222-3333-444444444444", all_content=True)
    conn.close()
    assert server.unmatched == [
        "GET /ovirt-engine/api/vms?all_content=true&search=id%3D00000000-1111-2222-3333-444444444444"]


def test_reload_swaps_the_engine_and_keeps_the_port(server, engine_with_log, tmp_path):
    url = server.url
    eng = engine_with_log
    eng.tick()
    eng.change_vm(eng.vms[0])
    server.reload(eng.write_cassette(tmp_path / "next.yaml"))
    conn = ovirtsdk4.Connection(url=url, username=server.username, password=PASSWORD)
    assert ids(conn.system_service().events_service().list(from_=1006)) == [1007]
    conn.close()


def test_the_feed_the_product_reads(server):
    """The adapter's read: the followed codes only, the cursor's own event included (it
    proves nothing was aged out or dismissed since), ``from_`` an int, ids from ``id``."""
    with Engine(synth_settings(server)) as engine:
        got = read_feed(engine, 1003)
    assert [(e.id, e.code) for e in got] == [(1006, 113), (1005, 934), (1004, 32), (1003, 153)]
    asked = [r for r in server.received if r.path.endswith("/events")][-1]
    assert asked.query["from"] == "1002" and asked.query["max"] == str(FEED_MAX)
    assert parse_search(asked.query["search"]) is not None
    assert asked.query["search"] == feed_search()


def synth_settings(server):
    return EngineSettings(url=server.url, username=server.username, password=PASSWORD)


def gen(text):
    return int(re.search(r"<Generation>(\d+)</Generation>", text).group(1))


def test_synthesized_mutations_bump_the_generation(engine_with_log):
    eng = engine_with_log
    vm = eng.vms[1]
    before = vm.ovf
    eng.stop_vm(vm)
    assert gen(vm.ovf) == gen(before) + 1
    assert [e.code for e in eng.events[-2:]] == [33, 61]
    dc = vm.cluster.datacenter
    others = {v.id: gen(v.ovf) for v in eng.vms}
    eng.upgrade_datacenter(dc)
    assert all(gen(v.ovf) == others[v.id] + (v.cluster.datacenter is dc) for v in eng.vms)
    assert eng.events[-1].code == 952 and not eng.events[-1].vm_id
    assert eng.now > dt.datetime(2026, 11, 26, tzinfo=dt.timezone.utc)
