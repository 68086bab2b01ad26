"""Fixtures shared by all tests.

Helpers that several test modules use are fixtures here (never imported from another test
module): the CLI run in-process (``cli``), a settings file (``write_config``), a replay
engine serving a synthesized engine (``serve``), what the engine received (``posted_vms``)
and the JSON listing by name (``listed``).
"""
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable, List, Optional, Tuple

import pytest
from lxml import etree

from ovirt_backup_plugin.cli import main
from ovirt_backup_plugin.engine import EngineSettings
from ovirt_backup_plugin.host import Session
from ovirt_backup_plugin.testing import synth
from ovirt_backup_plugin.testing.replay import ReplayEngine

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CASSETTES = PROJECT_ROOT / "cassettes"
PASSWORD = "replay-secret"
PASSWORD_ENV = "TEST_ENGINE_PASSWORD"


def _shared_dir() -> Path:
    return Path(os.environ.get("OVIRT_BACKUP_SHARED", PROJECT_ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` beside the checkout: real-engine traffic and OVFs (read, never copied).

    Tests that need it skip only when it is absent and CI is unset; in CI its absence fails.
    """
    path = _shared_dir()
    if not (path / "real-engine").is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"{path}/real-engine is missing, and CI needs it")
        pytest.skip(f"{path}/real-engine is absent (not in CI)")
    return path


@pytest.fixture(scope="session")
def real_engine(shared_dir) -> Path:
    return shared_dir / "real-engine"


@pytest.fixture(scope="session")
def cassettes_dir() -> Path:
    """The project's own cassettes (cassettes/ of the checkout)."""
    return CASSETTES


@pytest.fixture(autouse=True)
def engine_password(monkeypatch):
    """Settings written by ``write_config`` read the engine password from this variable."""
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)


@pytest.fixture
def demo() -> synth.SyntheticEngine:
    return synth.demo_engine()


@pytest.fixture
def cli(capsys) -> Callable[..., Tuple[int, str, str]]:
    """``cli(*argv) -> (exit code, stdout, stderr)``: ``ovirt-backup`` run in this process."""
    def run(*argv: str) -> Tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err
    return run


@pytest.fixture
def cli_process() -> Callable[..., "subprocess.CompletedProcess[str]"]:
    """``cli_process(*argv, timeout=300)``: ``ovirt-backup`` run as its own process (its own
    logging set-up, as at ``-vv``), this environment, output captured as text."""
    def run(*argv: str, timeout: float = 300) -> "subprocess.CompletedProcess[str]":
        return subprocess.run([sys.executable, "-m", "ovirt_backup_plugin.cli", *argv],
                              capture_output=True, text=True, env=dict(os.environ),
                              timeout=timeout)
    return run


@pytest.fixture
def write_config() -> Callable[..., str]:
    """``write_config(directory, url, providers=, extra=, engine_extra=)``: a settings file
    for a replay engine at ``url``; the state lives in ``directory/state``."""
    def write(directory: Path, url: str, *, providers: str = "localdb", extra: str = "",
              engine_extra: str = "", backup_extra: str = "",
              system: str = "test-engine") -> str:
        cfg = Path(directory) / "ovirt-backup.conf"
        cfg.write_text("\n".join([
            "[engine]", f"url = {url}", "username = admin@internal",
            f"password_env = {PASSWORD_ENV}", "retry_delay = 0.01", engine_extra,
            "[backup]", f"system = {system}", f"providers = {providers}",
            f"state_dir = {Path(directory) / 'state'}", backup_extra, extra, ""]))
        return str(cfg)
    return write


@pytest.fixture
def serve() -> Callable[..., ReplayEngine]:
    """``serve(directory, engine, name="engine.yaml", **replay options)``: a replay engine
    (not started; use it as a context manager) answering from ``engine``'s cassette."""
    def make(directory: Path, eng: synth.SyntheticEngine, name: str = "engine.yaml",
             page_size: int = 100, **kw) -> ReplayEngine:
        path = eng.write_cassette(Path(directory) / name, page_size=page_size)
        return ReplayEngine([path], **kw)
    return make


@pytest.fixture
def posted_vms() -> Callable[[ReplayEngine], List[etree._Element]]:
    """The ``<vm>`` documents a replay engine received on ``POST /vms``."""
    def posted(server: ReplayEngine) -> List[etree._Element]:
        return [etree.fromstring(r.body.encode()) for r in server.received
                if r.method == "POST" and r.path == "/ovirt-engine/api/vms"]
    return posted


@pytest.fixture
def listed(cli) -> Callable[..., dict]:
    """``listed(cfg, *extra)``: ``list --json`` by VM name (it must exit 0)."""
    def run(cfg: str, *extra: str, code: Optional[int] = 0) -> dict:
        got, out, err = cli("--config", cfg, "list", "--json", *extra)
        assert code is None or got == code, (out, err)
        return {item["name"]: item for item in json.loads(out)}
    return run


@pytest.fixture
def session_of(tmp_path) -> Callable[..., Session]:
    """``session_of(providers, options={name: section}, engine=None, extra=(), **backup)``:
    a :class:`Session` built as the CLI builds one (state under ``tmp_path/state``)."""
    def make(providers=(), options=None, engine=None, extra=(), system="test-engine",
             **backup) -> Session:
        return Session.for_engine(engine, system=system, providers=list(providers),
                                  state_dir=str(tmp_path / "state"),
                                  provider_options=options or {}, extra=extra, **backup)
    return make


def engine_settings(server: ReplayEngine, **kw) -> EngineSettings:
    """Settings for the SDK to reach a replay engine."""
    return EngineSettings(url=server.url, username=server.username, password=PASSWORD, **kw)


@pytest.fixture
def settings_for() -> Callable[..., EngineSettings]:
    """``settings_for(server, **EngineSettings fields)``: how to reach a replay engine."""
    return engine_settings
