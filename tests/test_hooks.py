"""The hook specs: documented (docs/hooks.md), all called by the host, firstresult as stated."""
import inspect
import re
from pathlib import Path

import pytest

from ovirt_backup_plugin import hookimpl, hookspecs, synth
from ovirt_backup_plugin.backup import run_backup
from ovirt_backup_plugin.engine import Engine, EngineSettings
from ovirt_backup_plugin.host import ProviderHandle
from ovirt_backup_plugin.model import ProviderSettings, RestoreResult
from ovirt_backup_plugin.plugins import get_plugin_manager
from ovirt_backup_plugin.replay import ReplayEngine
from ovirt_backup_plugin.restore import gather, restore
from ovirt_backup_plugin.retention import prune

DOCS = Path(__file__).resolve().parent.parent / "docs" / "hooks.md"
SPECS = {name: fn for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
         if hasattr(fn, "ovirt_backup_plugin_spec")}


def test_the_four_design_hooks_are_specified():
    assert {"before_backup", "write_ovf", "list_restorable", "restore_vm"} <= set(SPECS)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_hook_is_documented_with_its_exact_signature(name):
    args = ", ".join(inspect.signature(SPECS[name]).parameters)
    headings = re.findall(r"^## (.+)$", DOCS.read_text(), re.M)
    assert f"{name}({args})" in headings


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_spec_docstring_states_when_who_returns_and_firstresult(name):
    doc = SPECS[name].__doc__
    firstresult = SPECS[name].ovirt_backup_plugin_spec.get("firstresult", False)
    assert ":returns:" in doc and "Called" in doc
    if firstresult:
        assert "Stops at first non-None result" in doc
    else:
        assert "Not ``firstresult``" in doc


def test_fan_out_hooks_are_not_firstresult():
    opts = {n: f.ovirt_backup_plugin_spec.get("firstresult", False) for n, f in SPECS.items()}
    assert opts == {"before_backup": False, "write_ovf": False, "after_backup": False,
                    "list_restorable": False, "read_ovf": True, "restore_vm": True,
                    "describe_store": False, "claim_store": False, "forget_generations": False}


def test_every_hook_is_exercised_by_the_host(tmp_path):
    """A provider implementing every spec sees each one called by backup, list, restore,
    and prune."""
    called = []

    class Recorder:
        owner = None

        @hookimpl
        def describe_store(self, settings):
            called.append("describe_store")
            from ovirt_backup_plugin.model import StoreInfo
            return StoreInfo(location="memory of the test", owner=self.owner)

        @hookimpl
        def claim_store(self, settings, owner, fresh):
            called.append("claim_store")
            self.owner = owner

        @hookimpl
        def forget_generations(self, settings, generations):
            called.append("forget_generations")
            self.forgotten = generations
            from ovirt_backup_plugin.model import PruneResult
            return PruneResult(generations=len(generations))

        @hookimpl
        def before_backup(self, run, engine, settings):
            called.append("before_backup")

        @hookimpl
        def write_ovf(self, run, vm, settings):
            called.append("write_ovf")
            self.ovf, self.vm = vm.ovf, vm
            return True

        @hookimpl
        def after_backup(self, run, engine, settings, outcome):
            called.append("after_backup")
            self.run = run

        @hookimpl
        def list_restorable(self, engine, settings, datacenter):
            called.append("list_restorable")
            from ovirt_backup_plugin.model import Restorable
            import datetime as dt
            old = Restorable(provider=settings.name, vm_id=self.vm.identity.id,
                             name=self.vm.identity.name, generation="19990101T000000Z-old",
                             taken_at=dt.datetime(1999, 1, 1, tzinfo=dt.timezone.utc),
                             ovf_hash=self.vm.ovf_hash, cluster=self.vm.identity.cluster)
            return [Restorable(provider=settings.name, vm_id=self.vm.identity.id,
                               name=self.vm.identity.name, generation=self.run.id,
                               taken_at=self.run.started_at,
                               ovf_hash=self.vm.ovf_hash, cluster=self.vm.identity.cluster), old]

        @hookimpl
        def read_ovf(self, item, settings):
            called.append("read_ovf")
            return self.ovf

        @hookimpl
        def restore_vm(self, request, engine, settings):
            called.append("restore_vm")
            ovf = ProviderHandle(pm, "recorder", settings).call("read_ovf", item=request.item)
            vm_id = engine.add_vm_from_ovf(ovf, name=request.name, cluster=request.cluster,
                                           regenerate_ids=request.regenerate_ids)
            return RestoreResult(provider=settings.name, vm_id=vm_id, name=request.name)

    eng = synth.SyntheticEngine(seed=3)
    dc = eng.add_datacenter("DC")
    eng.add_cluster("c1", dc)
    eng.add_storage_domain("sd", dc, master=True)
    eng.add_vm("only", "c1")
    eng.add_restore("only", cluster="c1")
    recorder = Recorder()
    pm = get_plugin_manager([], extra=[("recorder", recorder)])
    handle = ProviderHandle(pm, "recorder", ProviderSettings(name="recorder"))
    with ReplayEngine([eng.write_cassette(tmp_path / "e.yaml")]) as server:
        with Engine(EngineSettings(url=server.url, password="replay-secret")) as engine:
            assert run_backup(engine, [handle], system="t").exit_code == 0
            listing = gather([handle], engine)
            outcome = restore(listing.newest(), {"recorder": handle}, engine,
                              echo=lambda s: None)
            assert prune([handle], engine, keep_last=1, echo=lambda s: None) == 0
    assert outcome.restored == ["only"]
    assert recorder.owner.datacenter_ids == (eng.datacenters[0].id,)
    assert recorder.forgotten == ["19990101T000000Z-old"]
    assert set(called) == set(SPECS)
    assert called.index("before_backup") < called.index("write_ovf") < called.index(
        "after_backup")
