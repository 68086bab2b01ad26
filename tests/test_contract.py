"""Every built-in provider that stores OVF copies passes the provider contract.

``localdb`` keeps its catalog on a small tmpfs so that an outage is a real full disk;
``swift`` talks to the real loopback Swift through a TCP forwarder that can be cut, and
``s3`` to the same Swift's S3 API (s3api) through such a forwarder.
"""
import contextlib
import os
import subprocess
import tempfile
import zlib
from pathlib import Path

import pytest

from ovirt_backup_plugin.hooks import localdb, s3, swift
from ovirt_backup_plugin.host.sealing import write_new_key
from ovirt_backup_plugin.testing.contract import ProviderContract, ProviderHarness

pytest_plugins = ["tests.swift_service"]


class LocalDbHarness(ProviderHarness):
    def __init__(self, directory, mounted):
        super().__init__("localdb", localdb, {"path": str(directory / "catalog.sqlite")},
                         state_dir=str(directory))
        self.directory, self.mounted = directory, mounted

    @contextlib.contextmanager
    def outage(self):
        if not self.mounted:
            pytest.skip("a full disk needs a tmpfs mount (root); not in CI")
        filler = self.directory / "filler"
        with open(filler, "wb") as f:          # fill the file system to the last byte
            chunk = b"\0" * 65536
            try:
                while True:
                    f.write(chunk)
                    f.flush()
            except OSError:
                pass
        try:
            yield
        finally:
            filler.unlink()

    def corrupt(self, item):
        import sqlite3

        db = sqlite3.connect(self.options["path"])
        with db:
            db.execute("UPDATE blobs SET ovf = ? WHERE hash = ?",
                       (zlib.compress(b"<ovf>bit rot</ovf>"), item.ovf_hash))
        db.close()

    def remove(self, item):
        import sqlite3

        db = sqlite3.connect(self.options["path"])
        with db:
            db.execute("DELETE FROM blobs WHERE hash = ?", (item.ovf_hash,))
        db.close()


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs when we may mount one (root), else a plain directory."""
    directory = tmp_path / "disk"
    directory.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(directory)],
                             capture_output=True).returncode == 0
    if not mounted and os.environ.get("CI"):
        pytest.fail("CI runs as root and must be able to mount a tmpfs for the disk-full test")
    yield directory, mounted
    if mounted:
        subprocess.run(["umount", str(directory)], check=False)


class TestLocalDb(ProviderContract):
    @pytest.fixture
    def harness(self, small_disk):
        return LocalDbHarness(*small_disk)


class SwiftHarness(ProviderHarness):
    """The swift provider as it runs by default: encrypted (a store off the host), with a
    key ring of one key."""

    def __init__(self, service, netcut, container, key_file):
        super().__init__("swift", swift, service.options(container=container, encrypt=None,
                                                         **service.via(netcut)),
                         state_dir=str(Path(tempfile.gettempdir())),
                         backup_options={"encryption_key_file": str(key_file)})
        self.service, self.netcut, self.container = service, netcut, container

    @contextlib.contextmanager
    def outage(self):
        self.netcut.cut()
        try:
            yield
        finally:
            self.netcut.restore()

    def corrupt(self, item):
        conn = self.service.connection()
        conn.put_object(self.container, item.location, b"<ovf>bit rot</ovf>")
        conn.close()

    def remove(self, item):
        conn = self.service.connection()
        conn.delete_object(self.container, item.location)
        conn.close()


class TestSwift(ProviderContract):
    @pytest.fixture
    def harness(self, swift_service, swift_netcut, swift_container, tmp_path):
        key_file = tmp_path / "backup.key"
        write_new_key(str(key_file))
        return SwiftHarness(swift_service, swift_netcut, swift_container, key_file)


class S3Harness(ProviderHarness):
    """The s3 provider as it runs by default: encrypted (a store off the host)."""

    def __init__(self, service, netcut, bucket, key_file):
        super().__init__("s3", s3, service.s3_options(bucket=bucket, encrypt=None,
                                                      **service.s3_via(netcut)),
                         state_dir=str(Path(tempfile.gettempdir())),
                         backup_options={"encryption_key_file": str(key_file)})
        self.service, self.netcut, self.bucket = service, netcut, bucket

    @contextlib.contextmanager
    def outage(self):
        self.netcut.cut()
        try:
            yield
        finally:
            self.netcut.restore()

    def corrupt(self, item):
        client = self.service.s3_client()
        client.put_object(Bucket=self.bucket, Key=item.location, Body=b"<ovf>bit rot</ovf>")
        client.close()

    def remove(self, item):
        client = self.service.s3_client()
        client.delete_object(Bucket=self.bucket, Key=item.location)
        client.close()


class TestS3(ProviderContract):
    @pytest.fixture
    def harness(self, swift_service, swift_netcut, s3_bucket, tmp_path):
        key_file = tmp_path / "backup.key"
        write_new_key(str(key_file))
        return S3Harness(swift_service, swift_netcut, s3_bucket, key_file)
