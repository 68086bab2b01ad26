"""noop: what a system with no backup provider configured has.

It stores nothing and lists nothing; its only job is to say so, so that a scheduled run on
an unconfigured system is visibly a no-op instead of silently succeeding.
"""
from ovirt_backup_plugin import hookimpl
from ovirt_backup_plugin.model import KEEPS_NOTHING, ProviderDeclaration


@hookimpl
def declare_provider():
    return ProviderDeclaration(keeps=KEEPS_NOTHING, description="stores nothing (the "
                               "provider of a system with none configured)")


@hookimpl
def before_backup(note):
    note("no backup provider is configured, so nothing is stored "
         "(set [backup] providers, e.g. 'providers = localdb')")
