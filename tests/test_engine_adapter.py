"""The engine adapter: its own rendering of ``POST /vms`` (it bypasses the SDK's XML writer,
which keeps every chunk it writes: see ``engine.adapter._vm_add_body``), and the listings a
restore plan asks for at once (``Engine.prefetch``), through the real SDK."""
import threading
import time

import pytest
from lxml import etree
from ovirtsdk4 import types, writer

from ovirt_backup_plugin.engine import Engine
from ovirt_backup_plugin.engine.adapter import _vm_add_body
from ovirt_backup_plugin.testing import synth
from ovirt_backup_plugin.testing.replay import GatedEngine

TRICKY = ('<?xml version="1.0" encoding="UTF-8"?><ovf:Envelope xmlns:ovf="x" a="1">'
          '<Name>web "01" &amp; é ‮</Name>\r\n\t<Description>a &lt;b&gt; c</Description>'
          '</ovf:Envelope>')


def canonical(text):
    parser = etree.XMLParser(remove_blank_text=True)
    return etree.tostring(etree.fromstring(text.encode("utf-8"), parser), method="c14n")


@pytest.mark.parametrize("regenerate_ids", [True, False])
@pytest.mark.parametrize("name", ["web01", 'a<b>&"c\'', "é‮x"])
def test_the_post_vms_body_is_what_the_sdk_would_write(name, regenerate_ids):
    sdk = writer.Writer.write(types.Vm(
        name=name, cluster=types.Cluster(name="prod & test"),
        initialization=types.Initialization(
            configuration=types.Configuration(type=types.ConfigurationType.OVF, data=TRICKY),
            regenerate_ids=regenerate_ids)), indent=True)
    ours = _vm_add_body(TRICKY, name=name, cluster="prod & test", regenerate_ids=regenerate_ids)
    assert canonical(ours) == canonical(sdk)
    # the OVF travels exactly, \r included (an XML parser would turn a raw \r\n into \n)
    data = etree.fromstring(ours.encode("utf-8")).findtext("initialization/configuration/data")
    assert data == TRICKY


# -- prefetch: the listings a restore plan reads, asked at once --------------------------------
LISTINGS = {"/ovirt-engine/api/datacenters", "/ovirt-engine/api/clusters",
            "/ovirt-engine/api/networks", "/ovirt-engine/api/vnicprofiles"}


def _listed(server):
    return [r.path for r in server.received if r.method == "GET" and r.path in LISTINGS]


def test_prefetch_asks_the_listings_together_then_answers_from_them(tmp_path, settings_for):
    """Held at the engine, GET /networks waits; the other listings arrive
    meanwhile (they are in flight together), and afterwards the adapter answers from what
    came back without asking again."""
    eng = synth.demo_engine()
    server = GatedEngine([eng.write_cassette(tmp_path / "gated.yaml")],
                         holds=lambda method, path, query: path.endswith("/networks"),
                         deadline=30)
    with server:
        engine = Engine(settings_for(server))
        try:
            worker = threading.Thread(target=engine.prefetch, args=(
                "datacenters", "clusters", "networks", "vnic_profiles"))
            worker.start()
            assert server.arrived.wait(30)
            others = LISTINGS - {"/ovirt-engine/api/networks"}   # (held: not received yet)
            for _ in range(300):                 # the others, while /networks is held
                if set(_listed(server)) == others:
                    break
                time.sleep(0.01)
            together = sorted(_listed(server))
            server.gate.set()
            worker.join(30)
            assert together == sorted(others)
            before = len(server.received)
            assert {c.name for c in engine.clusters()} == {c.name for c in eng.clusters}
            assert {d.name for d in engine.datacenters()} == {d.name for d in eng.datacenters}
            engine.networks(), engine.vnic_profiles()
            assert len(server.received) == before          # nothing asked again
        finally:
            engine.close()


def test_a_listing_whose_prefetch_failed_is_asked_again_when_used(tmp_path, serve,
                                                                settings_for):
    eng = synth.demo_engine()
    eng.add_error("GET", "clusters", 503, times=1)
    with serve(tmp_path, eng) as server:
        engine = Engine(settings_for(server, retry_delay=0.01))
        try:
            engine.prefetch("clusters", "datacenters")
            assert {c.name for c in engine.clusters()} == {c.name for c in eng.clusters}
            assert {d.name for d in engine.datacenters()} == {d.name for d in eng.datacenters}
        finally:
            engine.close()
    assert sorted(_listed(server)) == ["/ovirt-engine/api/clusters",       # the 503
                                       "/ovirt-engine/api/clusters",       # asked again
                                       "/ovirt-engine/api/datacenters"]
