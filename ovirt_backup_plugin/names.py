"""Names shared by the hook markers, the plugin manager and the entry-point group."""

#: The pluggy project name, the hook markers' name and the entry-point group of providers.
PROJECT = "ovirt_backup_plugin"
