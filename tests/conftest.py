"""Fixtures shared by all tests."""
import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CASSETTES = PROJECT_ROOT / "cassettes"


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
