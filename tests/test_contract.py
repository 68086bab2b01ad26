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
    def __init__(self, service, netcut, container):
        super().__init__("swift", swift, service.options(container=container,
                                                         **service.via(netcut)),
                         state_dir=str(Path(tempfile.gettempdir())))
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


class TestSwift(ProviderContract):
    @pytest.fixture
    def harness(self, swift_service, swift_netcut, swift_container):
        return SwiftHarness(swift_service, swift_netcut, swift_container)


class S3Harness(ProviderHarness):
    def __init__(self, service, netcut, bucket):
        super().__init__("s3", s3, service.s3_options(bucket=bucket, **service.s3_via(netcut)),
                         state_dir=str(Path(tempfile.gettempdir())))
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


class TestS3(ProviderContract):
    @pytest.fixture
    def harness(self, swift_service, swift_netcut, s3_bucket):
        return S3Harness(swift_service, swift_netcut, s3_bucket)
