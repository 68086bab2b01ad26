"""``ovirtsdk4`` and ``pycurl``, loaded when the engine is first asked something.

Loading the SDK costs about 0.1 s (its generated ``types``, ``readers``, ``writers`` and
``services`` modules, and libcurl), as much as the rest of the command line together. Most
commands never talk to the engine: ``list``, ``history``, ``prune``, ``check`` and shell
completion answer from the stores. So the engine adapter reaches the SDK through the
stand-ins below, which import the real module on the first attribute anybody reads
(``sdk.Connection``, ``types.Vm``, ``pycurl.Curl``) and from then on hand out what it holds.
This module is the only one in the product that names them; type checkers see the real
modules.
"""
from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any

__all__ = ["ovirtsdk4", "sdk_http", "types", "pycurl"]


class OnFirstUse:
    """Stands in for module ``name`` until an attribute of it is read, then imports it."""

    def __init__(self, name: str):
        self.__dict__["_name"] = name
        self.__dict__["_module"] = None

    def _load(self) -> ModuleType:
        module = self.__dict__["_module"]
        if module is None:
            module = self.__dict__["_module"] = importlib.import_module(self.__dict__["_name"])
        return module

    def __getattr__(self, attr: str) -> Any:
        value = getattr(self._load(), attr)
        self.__dict__[attr] = value          # read again without coming here (a module's
        return value                         # names are bound once)

    def __repr__(self) -> str:
        state = "loaded" if self.__dict__["_module"] is not None else "not loaded yet"
        return f"<module {self.__dict__['_name']} ({state})>"


if TYPE_CHECKING:
    import ovirtsdk4
    import pycurl
    from ovirtsdk4 import http as sdk_http
    from ovirtsdk4 import types
else:
    ovirtsdk4 = OnFirstUse("ovirtsdk4")
    sdk_http = OnFirstUse("ovirtsdk4.http")
    types = OnFirstUse("ovirtsdk4.types")
    pycurl = OnFirstUse("pycurl")
