"""The engine adapter's own rendering of ``POST /vms`` (it bypasses the SDK's XML writer,
which keeps every chunk it writes: see ``engine.adapter._vm_add_body``)."""
import pytest
from lxml import etree
from ovirtsdk4 import types, writer

from ovirt_backup_plugin.engine.adapter import _vm_add_body

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
