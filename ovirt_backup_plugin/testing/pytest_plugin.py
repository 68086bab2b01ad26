"""pytest fixtures for provider authors and integrators.

Installing ``ovirt-backup-plugin`` registers this module with pytest (entry point
``pytest11``, plugin name ``ovirt_backup``; ``-p no:ovirt_backup`` turns it off). It gives:

``ovirt_replay``
    A replay engine on 127.0.0.1 (:class:`~ovirt_backup_plugin.replay.ReplayEngine`)
    and a session already logged in to it through the real ``ovirtsdk4``: an object with
    ``url``, ``username``, ``password``, ``connection`` (a connected
    ``ovirtsdk4.Connection``), ``engine`` (our :class:`~ovirt_backup_plugin.engine.Engine`
    adapter over that same connection) and ``server`` (the replay engine: ``received``,
    ``unmatched``, ``fallbacks``). At teardown the connection logs out and the server stops.

    Cassettes: the project's demo engine (``cassettes/demo-engine.yaml``), or those named
    by the marker ``@pytest.mark.ovirt_cassette(path_or_paths, fallback="none")``; relative
    paths are resolved against the directory of the test file. ``cassettes/sso.yaml`` is
    always added after them, so a real recording without an SSO exchange can be used as is.

``backup_plugin_manager``
    A factory ``make(providers=(), extra=())`` that returns a fresh ``pluggy.PluginManager``
    with the hook specs, the named installed providers (``None``: all of them) and the
    ``(name, plugin)`` pairs of ``extra``, registered exactly as ``ovirt-backup`` does.

The provider contract suite is re-exported here::

    from ovirt_backup_plugin.testing.pytest_plugin import ProviderContract, ProviderHarness
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, List, Optional, Tuple

import pluggy
import pytest

# The contract's asserts are the messages a provider author reads: let pytest explain them.
pytest.register_assert_rewrite("ovirt_backup_plugin.testing.contract")

from ..engine import Engine, EngineSettings  # noqa: E402
from ..host.plugins import get_plugin_manager  # noqa: E402
from .cassettes import cassette_dir, demo_cassettes  # noqa: E402
from .contract import ProviderContract, ProviderHarness  # noqa: E402
from .replay import ReplayEngine  # noqa: E402

__all__ = ["ProviderContract", "ProviderHarness", "ReplaySession"]

MARKER = "ovirt_cassette"


@dataclass(frozen=True)
class ReplaySession:
    """What ``ovirt_replay`` hands over: where the engine is, and a session logged in to it."""

    url: str
    username: str
    password: str
    connection: object              # ovirtsdk4.Connection, authenticated
    engine: Engine                  # the adapter, over the same connection
    server: ReplayEngine


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}(path_or_paths, fallback='none'): cassette(s) the ovirt_replay "
        "fixture serves (relative to the test file); cassettes/sso.yaml is always added")


def _cassettes(request: pytest.FixtureRequest) -> Tuple[List[Path], str]:
    marker = request.node.get_closest_marker(MARKER)
    if marker is None:
        paths, fallback = list(demo_cassettes()), "none"
    else:
        if len(marker.args) != 1 or set(marker.kwargs) - {"fallback"}:
            pytest.fail(f"@pytest.mark.{MARKER} takes one path or a list of paths and "
                        f"fallback=...; got args={marker.args!r} kwargs={marker.kwargs!r}",
                        pytrace=False)
        given = marker.args[0]
        if isinstance(given, (str, os.PathLike)):
            given = [given]
        base = Path(request.node.path).parent
        paths = [base / Path(p) for p in given]
        fallback = marker.kwargs.get("fallback", "none")
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        pytest.fail(f"{MARKER}: no such cassette: {', '.join(missing)}", pytrace=False)
    sso = cassette_dir() / "sso.yaml"
    if all(p.resolve() != sso.resolve() for p in paths):
        paths.append(sso)
    return paths, fallback


@pytest.fixture
def ovirt_replay(request: pytest.FixtureRequest) -> Iterator[ReplaySession]:
    """A replay engine and a connected ``ovirtsdk4`` session (see the module docstring)."""
    paths, fallback = _cassettes(request)
    with ReplayEngine(paths, fallback=fallback) as server:
        engine = Engine(EngineSettings(url=server.url, username=server.username,
                                       password=server.password, retries=0))
        try:
            connection = engine.connection
            connection.authenticate()           # POST /sso/oauth/token, now
            yield ReplaySession(url=server.url, username=server.username,
                                password=server.password, connection=connection,
                                engine=engine, server=server)
        finally:
            engine.close()                      # logs out (POST /services/sso-logout)


@pytest.fixture
def backup_plugin_manager() -> Callable[..., pluggy.PluginManager]:
    """``make(providers=(), extra=())``: a fresh plugin manager, as ``ovirt-backup`` builds it."""
    def make(providers: Optional[Iterable[str]] = (),
             extra: Iterable[Tuple[str, object]] = ()) -> pluggy.PluginManager:
        return get_plugin_manager(None if providers is None else list(providers),
                                  extra=list(extra))

    return make
