"""The engine adapter: the only place that talks to an oVirt engine (through ``ovirtsdk4``).

* :mod:`.adapter` -- :class:`Engine`, the lazy, retrying facade over one SDK connection;
* :mod:`.settings` -- :class:`EngineSettings` (the ``[engine]`` section);
* :mod:`.inventory` -- the records it hands out (data centers, clusters, VMs, ...);
* :mod:`.paging` -- the one pager of ``GET /vms?all_content=true``, and pages read again in
  smaller pages when they fail;
* :mod:`.reading` -- a complete read: the pages, then the VMs they missed, by id;
* :mod:`.sso` -- login and logout bounded by ``[engine] timeout`` (the SDK bounds neither);
* :mod:`.faults` -- SDK errors turned into messages an admin can act on;
* :mod:`.sdk` -- ``ovirtsdk4`` and ``pycurl``, loaded when the engine is first asked
  something (commands that answer from the stores never load them).
"""
from .adapter import EVENT_ORIGIN, OVF_STORE_UPDATED_EVENT, Engine, OvfStoreEvent
from .inventory import (
    Cluster,
    DataCenter,
    EngineEvent,
    EngineVm,
    MacPool,
    Network,
    StorageDomain,
    Template,
    VmNic,
    VmRef,
    VmState,
    VnicProfile,
)
from .paging import Failed, Pager, PageRead, page_search, search_value
from .reading import ReadStats, complete
from .settings import EngineSettings

__all__ = ["Engine", "EngineSettings", "OvfStoreEvent", "EVENT_ORIGIN",
           "OVF_STORE_UPDATED_EVENT", "Cluster", "DataCenter", "EngineVm", "Network",
           "StorageDomain", "Template", "VnicProfile", "Pager", "page_search", "search_value",
           "Failed", "PageRead", "ReadStats", "complete",
           "EngineEvent", "MacPool", "VmNic", "VmRef", "VmState"]
