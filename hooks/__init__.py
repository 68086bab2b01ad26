"""Built-in backup providers, shipped as ovirt_backup_plugin.hooks (see setup.cfg package_dir)."""

