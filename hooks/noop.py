"""noop: what a system with no backup provider configured has.

It stores nothing and lists nothing; its only job is to say so, so that a scheduled run on
an unconfigured system is visibly a no-op instead of silently succeeding.
"""
from ovirt_backup_plugin import hookimpl


@hookimpl
def before_backup(run, settings):
    return ("no backup provider is configured, so nothing is stored "
            "(set [backup] providers, e.g. 'providers = localdb')")
