"""Third-party providers arrive through the ``ovirt_backup_plugin`` entry-point group.

The example distribution ``examples/ovirt-backup-ovfdir`` is installed (editable) into the
venv by ``scripts/dev``; a broken distribution is built and installed with pip into a
temporary ``--target`` directory, which only a subprocess sees (through ``PYTHONPATH``).
"""
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ovirt_backup_plugin.errors import ConfigError
from ovirt_backup_plugin.host.plugins import get_plugin_manager, installed_providers
from ovirt_backup_plugin.testing.cassettes import demo_cassettes
from ovirt_backup_plugin.testing.replay import ReplayEngine

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "ovirt-backup-ovfdir"
CLI = [sys.executable, "-m", "ovirt_backup_plugin.cli"]


@pytest.fixture(scope="module")
def ovfdir_installed():
    if "ovfdir" not in installed_providers():
        message = (f"the example provider is not installed: pip install -e {EXAMPLE} "
                   "(scripts/dev does it)")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def ovirt_backup(*args, env=None, check=True):
    run = subprocess.run(CLI + list(args), capture_output=True, text=True, timeout=120,
                         env={**os.environ, **(env or {})})
    if check:
        assert run.returncode == 0, run.stdout + run.stderr
    return run


def write_config(path: Path, text: str) -> str:
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return str(path)


def test_installed_providers_name_the_distribution_and_version(ovfdir_installed):
    info = installed_providers()["ovfdir"]
    assert (info.distribution, info.version, info.module) == (
        "ovirt-backup-ovfdir", "0.2.0", "ovirt_backup_ovfdir")
    assert not info.builtin and not info.hidden


def test_the_entry_point_is_registered_under_its_name(ovfdir_installed):
    import ovirt_backup_ovfdir

    pm = get_plugin_manager(["ovfdir"])
    assert [(name, plugin) for name, plugin in pm.list_name_plugin()] == [
        ("ovfdir", ovirt_backup_ovfdir)]
    implemented = {caller.name for caller in pm.get_hookcallers(ovirt_backup_ovfdir)}
    assert implemented == {"declare_provider", "before_backup", "carry_over", "write_ovf",
                           "after_backup", "list_restorable", "read_ovf", "list_generations",
                           "forget_generations"}


def test_ovirt_backup_providers_lists_it(ovfdir_installed, tmp_path):
    plain = ovirt_backup("--config", write_config(tmp_path / "none.ini", "[backup]\n"),
                         "providers").stdout
    assert re.search(r"^ovfdir +ovirt-backup-ovfdir +0\.2\.0 +no +plugin +ovf-copies$", plain,
                     re.M), plain
    enabled = ovirt_backup("--config", write_config(tmp_path / "ovfdir.ini", """
        [backup]
        providers = ovfdir
    """), "providers").stdout
    assert re.search(r"^ovfdir +ovirt-backup-ovfdir +0\.2\.0 +yes +plugin +ovf-copies$",
                     enabled, re.M)


def test_backup_and_list_with_the_plugin_from_the_command_line(ovfdir_installed, tmp_path):
    with ReplayEngine(demo_cassettes()) as server:
        config = write_config(tmp_path / "backup.ini", f"""
            [engine]
            url = {server.url}
            password_env = REPLAY_PASSWORD

            [backup]
            system = demo
            providers = ovfdir
            state_dir = {tmp_path / "state"}

            [provider:ovfdir]
            path = {tmp_path / "ovf-copies"}
        """)
        env = {"REPLAY_PASSWORD": server.password}
        backup = ovirt_backup("--config", config, "backup", env=env)
        listing = ovirt_backup("--config", config, "list", env=env).stdout
    assert "ovfdir" in backup.stdout
    assert len(list((tmp_path / "ovf-copies" / "ovf").glob("*"))) == 6
    assert len(list((tmp_path / "ovf-copies" / "runs").glob("*.json"))) == 1
    for name in ("web01", "db01", "app01", "win-ad01", "lab-build01", "lab-db01"):
        assert re.search(rf"\b{name}\b", listing), listing


@pytest.fixture(scope="module")
def broken_distribution(tmp_path_factory):
    """``ovirt-backup-broken`` 0.0.1: its module imports a library that is not installed."""
    src = tmp_path_factory.mktemp("broken-src")
    (src / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=64", "wheel"]\n'
        'build-backend = "setuptools.build_meta"\n')
    (src / "setup.cfg").write_text(textwrap.dedent("""
        [metadata]
        name = ovirt-backup-broken
        version = 0.0.1

        [options]
        py_modules = ovirt_backup_broken

        [options.entry_points]
        ovirt_backup_plugin =
            broken = ovirt_backup_broken
    """))
    (src / "ovirt_backup_broken.py").write_text("import no_such_backend_library\n")
    target = tmp_path_factory.mktemp("broken-site")
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                          "--target", str(target), str(src)],
                         capture_output=True, text=True, timeout=300)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    return target


def test_a_provider_that_fails_to_import_is_named_with_its_distribution(broken_distribution,
                                                                         tmp_path):
    env = {"PYTHONPATH": str(broken_distribution)}
    config = write_config(tmp_path / "broken.ini", """
        [backup]
        providers = broken
    """)
    listed = ovirt_backup("--config", config, "providers", env=env).stdout
    assert re.search(r'^broken +ovirt-backup-broken +0\.0\.1 +yes +plugin +unusable: error '
                     r'importing provider "broken"', listed, re.M), listed

    failed = ovirt_backup("--config", config, "list", env=env, check=False)
    assert failed.returncode == 2
    assert failed.stderr.strip() == (
        'error: error importing provider "broken" (from ovirt-backup-broken): '
        "ModuleNotFoundError: No module named 'no_such_backend_library'")


def test_the_broken_provider_is_invisible_here(broken_distribution):
    # installed only into the --target directory: this process never sees it
    assert "broken" not in installed_providers()
    with pytest.raises(ConfigError, match="unknown provider"):
        get_plugin_manager(["broken"])
