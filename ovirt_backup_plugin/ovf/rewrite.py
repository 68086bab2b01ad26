"""Rewriting an OVF for another target: networks, vNIC profiles, cluster, NICs unplugged.

``POST /vms`` with a configuration takes the VM as the OVF describes it; the request can
override fields of the VM (``name``, ``cluster``) but not of its NICs (engine
BackendVmsResource.importVmFromConfiguration overlays the request's VM fields only), so a
restore into another engine maps networks in the OVF itself:

* a NIC ``<Item>`` (``rasd:ResourceType`` 10) names its network in ``rasd:Connection`` and
  its vNIC profile in ``rasd:OtherResourceType`` (OvfWriter.writeNetwork); the engine looks
  the profile up by that name on that network in the target cluster's data center
  (ImportVmCommandBase L677-702, VnicProfileHelper);
* ``NetworkSection/Network/@ovf:name`` lists the networks the NICs use;
* ``<ClusterName>`` names the cluster (the request's ``cluster`` decides; it is rewritten
  so the stored text and the request agree);
* a NIC is plugged by its device's ``<IsPlugged>`` and linked by ``rasd:Linked``.

The document is parsed with the same hardened parser and size limit as every OVF this
product reads (:func:`.parse.parse_tree`), and written back with lxml. When nothing needs
changing the original text is returned as it is.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Tuple

from lxml import etree

from .parse import parse_tree

__all__ = ["NicTarget", "Rewritten", "rewrite_ovf"]

_RASD = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
_OVF_NAMESPACES = ("http://schemas.dmtf.org/ovf/envelope/1/", "http://schemas.dmtf.org/ovf/envelope/1")
_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'

#: profiles: (network, profile) -> (network, profile); "" as the source network matches a
#: profile of that name on any network, "" as the target network keeps the NIC's network.
ProfileMap = Mapping[Tuple[str, str], Tuple[str, str]]


@dataclass(frozen=True)
class NicTarget:
    """Where one NIC of the OVF goes."""

    name: str
    network: str
    profile: str
    source_network: str = ""
    source_profile: str = ""

    @property
    def changed(self) -> bool:
        return (self.network, self.profile) != (self.source_network, self.source_profile)


@dataclass(frozen=True)
class Rewritten:
    text: str
    nics: Tuple[NicTarget, ...] = ()       # every NIC, as the engine will receive it
    changes: Tuple[str, ...] = ()          # what was changed, for the report


def map_nic(network: str, profile: str, networks: Mapping[str, str],
            profiles: ProfileMap) -> Tuple[str, str]:
    """The target (network, profile) of a NIC: a profile mapping for (network, profile),
    else one for the profile on any network, else the network mapping (the network's
    default profile, named like the network, follows it to the target's default)."""
    for key in ((network, profile), ("", profile)):
        if key in profiles:
            target_network, target_profile = profiles[key]
            return target_network or networks.get(network, network), target_profile
    if network in networks:
        target = networks[network]
        return target, target if profile in ("", network) else profile
    return network, profile


def rewrite_ovf(text: str, *, networks: Optional[Mapping[str, str]] = None,
                profiles: Optional[ProfileMap] = None, cluster: Optional[str] = None,
                unplug_nics: bool = False) -> Rewritten:
    """``text`` with its NICs' networks and profiles mapped, its ``<ClusterName>`` set to
    ``cluster`` and, with ``unplug_nics``, every NIC unplugged and unlinked."""
    networks, profiles = dict(networks or {}), dict(profiles or {})
    root = parse_tree(text)
    changes: List[str] = []
    targets: List[NicTarget] = []
    used: Dict[str, str] = {}
    for item in _nic_items(root):
        name = _child_text(item, "Name") or _child_text(item, "ElementName")
        network, profile = _child_text(item, "Connection"), _child_text(item, "OtherResourceType")
        new_network, new_profile = map_nic(network, profile, networks, profiles)
        target = NicTarget(name, new_network, new_profile, network, profile)
        targets.append(target)
        used[network] = new_network
        if target.changed:
            _set_child(item, "Connection", new_network)
            _set_child(item, "OtherResourceType", new_profile)
            caption = item.find(f"{{{_RASD}}}Caption")
            if caption is not None and network and (caption.text or "").endswith(f" {network}"):
                caption.text = (caption.text or "")[:-len(network)] + new_network
            changes.append(f"NIC {name}: {network or '-'}/{profile or '-'} -> "
                           f"{new_network or '-'}/{new_profile or '-'}")
        if unplug_nics:
            plugged = item.find("IsPlugged")
            linked = item.find(f"{{{_RASD}}}Linked")
            if (plugged is not None and (plugged.text or "").strip() != "false") or (
                    linked is not None and (linked.text or "").strip() != "false"):
                if plugged is not None:
                    plugged.text = "false"
                if linked is not None:
                    linked.text = "false"
                changes.append(f"NIC {name}: unplugged")
    if any(old != new for old, new in used.items()):
        _rename_networks(root, used)
    if cluster:
        for el in root.iter("ClusterName"):
            if (el.text or "").strip() != cluster:
                changes.append(f"cluster {el.text or '-'} -> {cluster}")
                el.text = cluster
    if not changes:
        return Rewritten(text, tuple(targets))
    out = etree.tostring(root, encoding="unicode")
    if text.lstrip().startswith("<?xml"):
        out = _DECLARATION + out
    return Rewritten(out, tuple(targets), tuple(changes))


def _nic_items(root: etree._Element) -> List[etree._Element]:
    out = []
    for rt in root.iter(f"{{{_RASD}}}ResourceType"):
        if (rt.text or "").strip() == "10":
            item = rt.getparent()
            if item is not None and etree.QName(item).localname == "Item":
                out.append(item)
    return out


def _child_text(item: etree._Element, name: str) -> str:
    el = item.find(f"{{{_RASD}}}{name}")
    return (el.text or "").strip() if el is not None else ""


def _set_child(item: etree._Element, name: str, value: str) -> None:
    el = item.find(f"{{{_RASD}}}{name}")
    if el is None:
        el = etree.SubElement(item, f"{{{_RASD}}}{name}")
    el.text = value


def _rename_networks(root: etree._Element, used: Mapping[str, str]) -> None:
    """``NetworkSection``: the networks the NICs use after mapping, each once."""
    for section in root.iter():
        if not isinstance(section.tag, str) or etree.QName(section).localname != "NetworkSection":
            continue
        seen = set()
        for net in list(section):
            if not isinstance(net.tag, str) or etree.QName(net).localname != "Network":
                continue
            key = next((k for k in (f"{{{ns}}}name" for ns in _OVF_NAMESPACES) if net.get(k)), None)
            if key is None:
                continue
            new = used.get(net.get(key) or "", net.get(key) or "")
            if new in seen:
                section.remove(net)
                continue
            seen.add(new)
            net.set(key, new)
