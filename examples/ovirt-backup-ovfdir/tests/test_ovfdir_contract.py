"""ovfdir passes the provider contract that every ovirt-backup provider passes.

The outage is real, and works for root too (``chmod`` does not stop root): for its
duration the directory is moved aside and a plain file takes its place, so every open
under ``path`` fails in the kernel with ENOTDIR, as it would for a store path that no
longer leads to a directory. Corruption rewrites a stored OVF file in place.
"""
import contextlib

import pytest

import ovirt_backup_ovfdir
from ovirt_backup_plugin.testing.pytest_plugin import ProviderContract, ProviderHarness


class OvfDirHarness(ProviderHarness):
    def __init__(self, directory):
        super().__init__("ovfdir", ovirt_backup_ovfdir, {"path": str(directory)},
                         state_dir=str(directory.parent))
        self.directory = directory

    @contextlib.contextmanager
    def outage(self):
        aside = self.directory.with_name(self.directory.name + ".away")
        self.directory.rename(aside)
        self.directory.write_text("not a directory: the OVF store is unreachable\n")
        try:
            yield
        finally:
            self.directory.unlink()
            aside.rename(self.directory)

    def corrupt(self, item):
        (self.directory / item.location).write_bytes(b"<ovf>bit rot</ovf>")


class TestOvfDir(ProviderContract):
    @pytest.fixture
    def harness(self, tmp_path):
        return OvfDirHarness(tmp_path / "ovfdir")
