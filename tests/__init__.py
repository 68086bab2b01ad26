"""Tests of ovirt_backup_plugin (a package, so that tests.swift_service can be imported)."""
