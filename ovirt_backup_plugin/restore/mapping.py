"""Mapping a restore into another engine: networks, vNIC profiles, clusters.

``--map-network SRC=DST``, ``--map-vnic-profile SRC=DST`` (``NETWORK/PROFILE`` or
``PROFILE`` on either side) and ``--map-cluster SRC=DST``, or a mapping file
(``--map-file``): YAML, so JSON works too (PyYAML is already a dependency, and JSON is
YAML)::

    networks:
      ovirtmgmt: dr-mgmt
    vnic_profiles:
      frontend/frontend-qos: dr-front/dr-front-qos
    clusters:
      prod-a: dr-a

What the command line gives wins over the file. On the ``POST /vms`` path the mapping is
applied to the OVF sent (:func:`~ovirt_backup_plugin.ovf.rewrite.rewrite_ovf`) and the
cluster of the request; for a registering provider (``msd``) it becomes the
``registration_configuration`` (vNIC profile and cluster mappings).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ..errors import BackupError
from ..model import ClusterMapping

__all__ = ["TargetMapping", "load_map_file", "mapping_from_args", "split_profile"]


def split_profile(text: str) -> Tuple[str, str]:
    """``NETWORK/PROFILE`` -> (network, profile); ``PROFILE`` -> ("", profile)."""
    network, sep, profile = text.partition("/")
    return (network, profile) if sep else ("", network)


@dataclass(frozen=True)
class TargetMapping:
    networks: Dict[str, str] = field(default_factory=dict)
    profiles: Dict[Tuple[str, str], Tuple[str, str]] = field(default_factory=dict)
    clusters: Dict[str, str] = field(default_factory=dict)

    def cluster(self, name: str) -> str:
        return self.clusters.get(name, name)

    def cluster_mappings(self) -> Tuple[ClusterMapping, ...]:
        return tuple(ClusterMapping(a, b) for a, b in self.clusters.items())

    def merged(self, other: "TargetMapping") -> "TargetMapping":
        """This mapping with ``other``'s entries added over it (``other`` wins)."""
        return TargetMapping({**self.networks, **other.networks},
                             {**self.profiles, **other.profiles},
                             {**self.clusters, **other.clusters})


def _pairs(values: Sequence[str], flag: str) -> List[Tuple[str, str]]:
    out = []
    for text in values:
        source, sep, target = text.partition("=")
        if not sep or not source.strip() or not target.strip():
            raise BackupError(f"{flag} {text!r}: use SOURCE=TARGET")
        out.append((source.strip(), target.strip()))
    return out


def _build(networks: Sequence[Tuple[str, str]], profiles: Sequence[Tuple[str, str]],
           clusters: Sequence[Tuple[str, str]], where: str) -> TargetMapping:
    mapped_profiles: Dict[Tuple[str, str], Tuple[str, str]] = {}
    for source, target in profiles:
        src, dst = split_profile(source), split_profile(target)
        if not src[1] or not dst[1]:
            raise BackupError(f"{where}: vNIC profile mapping {source}={target}: name the "
                              "profile (NETWORK/PROFILE or PROFILE)")
        mapped_profiles[src] = dst
    return TargetMapping(dict(networks), mapped_profiles, dict(clusters))


def load_map_file(path: str) -> TargetMapping:
    """Read a mapping file (YAML or JSON): keys ``networks``, ``vnic_profiles``,
    ``clusters``, each a mapping of source to target names."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise BackupError(f"--map-file {path}: cannot read it: {e.strerror or e}") from None
    import yaml  # here: of every restore, only one given a --map-file reads YAML (9 ms)

    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise BackupError(f"--map-file {path}: not YAML or JSON: {e}") from None
    if data is None:
        return TargetMapping()
    if not isinstance(data, dict):
        raise BackupError(f"--map-file {path}: expected a mapping with networks, "
                          "vnic_profiles and clusters")
    unknown = sorted(set(data) - {"networks", "vnic_profiles", "clusters"})
    if unknown:
        raise BackupError(f"--map-file {path}: unknown key(s) {', '.join(map(str, unknown))} "
                          "(known: networks, vnic_profiles, clusters)")

    def section(key: str) -> List[Tuple[str, str]]:
        value = data.get(key) or {}
        if not isinstance(value, dict) or not all(
                isinstance(k, str) and isinstance(v, str) and k and v for k, v in value.items()):
            raise BackupError(f"--map-file {path}: {key} must map names to names "
                              "(SOURCE: TARGET)")
        return list(value.items())

    return _build(section("networks"), section("vnic_profiles"), section("clusters"),
                  f"--map-file {path}")


def mapping_from_args(*, networks: Sequence[str] = (), profiles: Sequence[str] = (),
                      clusters: Sequence[str] = (), map_file: Optional[str] = None) -> TargetMapping:
    """The mapping of the command line, over the file's (``--map-file``)."""
    base = load_map_file(map_file) if map_file else TargetMapping()
    given = _build(_pairs(networks, "--map-network"), _pairs(profiles, "--map-vnic-profile"),
                   _pairs(clusters, "--map-cluster"), "--map-vnic-profile")
    return base.merged(given)

