"""The provider contract: one test suite every backup provider must pass.

Built-in and third-party providers run the same tests. A provider's test module subclasses
:class:`ProviderContract` and supplies a ``harness`` fixture::

    import pytest
    from ovirt_backup_plugin.contract import ProviderContract, ProviderHarness

    class TestMyProvider(ProviderContract):
        @pytest.fixture
        def harness(self, tmp_path):
            return MyHarness(tmp_path)          # a ProviderHarness

The tests drive the provider through the real host (plugin manager, provider handles,
backup run, listing, restore) against a replay engine that the real SDK talks to over
HTTP, so they exercise exactly what ``ovirt-backup`` does.
"""
from __future__ import annotations

import contextlib
import dataclasses
from typing import ContextManager, Iterator, List, Optional

import pytest
from lxml import etree

from .backup import run_backup
from .engine import Engine, EngineSettings
from .errors import ProviderError
from .host import ProviderHandle
from .model import ProviderSettings, Restorable, RestoreRequest
from .plugins import get_plugin_manager
from .replay import ReplayEngine
from .restore import gather, restore, select
from .synth import SyntheticEngine


class ProviderHarness:
    """What the contract needs to drive one provider against a real backend.

    :param name: the provider name (what ``Restorable.provider`` carries).
    :param plugin: the plugin object (a module or an instance with ``@hookimpl`` functions).
    :param settings: settings that point at a fresh, empty backend for this test.
    """

    def __init__(self, name: str, plugin: object, settings: ProviderSettings):
        self.name, self.plugin, self.settings = name, plugin, settings

    def outage(self) -> ContextManager[None]:
        """Take the backend away for real (network cut, disk full) while the block runs."""
        raise NotImplementedError

    def corrupt(self, item: Restorable) -> None:
        """Damage the stored OVF of ``item`` in the backend (as bit rot would)."""
        raise NotImplementedError


def contract_engine(seed: int = 7, *, changed: bool = False) -> SyntheticEngine:
    """Two data centers, four VMs, and two answers to ``POST /vms``.

    ``changed=True`` gives the same VMs with more memory (new OVF content).
    """
    eng = SyntheticEngine(seed=seed)
    east, west = eng.add_datacenter("East"), eng.add_datacenter("West")
    eng.add_cluster("east-1", east)
    eng.add_cluster("west-1", west)
    eng.add_storage_domain("east-data", east, master=True)
    eng.add_storage_domain("west-data", west, master=True)
    memory = 8192 if changed else 4096
    for name, cluster in (("alpha", "east-1"), ("beta", "east-1"), ("gamma", "west-1"),
                          ("delta", "west-1")):
        eng.add_vm(name, cluster, memory_mb=memory)
    eng.add_restore("alpha-1", cluster="east-1")
    eng.add_restore("alpha-2", cluster="east-1")
    return eng


class ProviderContract:
    """The tests. Subclass as ``Test<Provider>`` and provide a ``harness`` fixture."""

    password = "replay-secret"

    # -- fixtures and helpers ------------------------------------------------------------
    @pytest.fixture
    def engines(self, tmp_path) -> Iterator[dict]:
        """Replay engines: ``first`` and ``changed`` (same VMs, new content)."""
        servers = {}
        with contextlib.ExitStack() as stack:
            for label, eng in (("first", contract_engine()),
                               ("changed", contract_engine(changed=True))):
                path = eng.write_cassette(tmp_path / f"contract-{label}.yaml")
                servers[label] = stack.enter_context(ReplayEngine([path],
                                                                  password=self.password))
                servers[label].synthetic = eng
            yield servers

    def settings(self, harness: ProviderHarness, **options) -> ProviderSettings:
        merged = dict(harness.settings.options)
        merged.setdefault("retries", "0")
        merged.update(options.pop("options", {}))
        return dataclasses.replace(harness.settings, options=merged, **options)

    def handle(self, harness: ProviderHarness, **settings) -> ProviderHandle:
        pm = get_plugin_manager([], extra=[(harness.name, harness.plugin)])
        return ProviderHandle(pm, harness.name, self.settings(harness, **settings))

    def engine(self, server: ReplayEngine) -> Engine:
        return Engine(EngineSettings(url=server.url, username=server.username,
                                     password=self.password, retries=0))

    def backup(self, harness, server, *, handle: Optional[ProviderHandle] = None, **settings):
        handle = handle or self.handle(harness, **settings)
        with self.engine(server) as engine:
            return run_backup(engine, [handle], system=harness.settings.system)

    def listing(self, harness, **settings) -> List[Restorable]:
        handle = self.handle(harness, **settings)
        return gather([handle], Engine(None)).items

    # -- the contract --------------------------------------------------------------------
    def test_write_list_restore_round_trip(self, harness, engines):
        server = engines["first"]
        report = self.backup(harness, server)
        assert report.exit_code == 0, report.summary()
        items = self.listing(harness)
        assert sorted(i.name for i in items) == ["alpha", "beta", "delta", "gamma"]
        assert {i.provider for i in items} == {harness.name}
        assert {i.generation for i in items} == {report.run.id}

        handle = self.handle(harness)
        chosen = select(gather([handle], Engine(None)), ["alpha"])
        with self.engine(server) as engine:
            outcome = restore(chosen, {harness.name: handle}, engine, copies=2,
                              echo=lambda s: None)
        assert outcome.restored == ["alpha-1", "alpha-2"] and not outcome.failed
        alpha = next(vm for vm in server.synthetic.vms if vm.name == "alpha")
        posted = [etree.fromstring(r.body.encode()) for r in server.received
                  if r.method == "POST" and r.path.endswith("/api/vms")]
        assert [p.findtext("name") for p in posted] == ["alpha-1", "alpha-2"]
        assert all(p.findtext("initialization/configuration/data") == alpha.ovf for p in posted)
        assert all(p.findtext("initialization/regenerate_ids") == "true" for p in posted)

    def test_rewriting_the_same_ovf_is_idempotent(self, harness, engines):
        first = self.backup(harness, engines["first"])
        second = self.backup(harness, engines["first"])
        assert first.providers[harness.name].new_blobs == 4
        assert second.providers[harness.name].new_blobs == 0
        assert second.providers[harness.name].written == 4
        items = self.listing(harness)
        by_vm = {}
        for item in items:
            by_vm.setdefault(item.name, set()).add(item.ovf_hash)
        assert all(len(hashes) == 1 for hashes in by_vm.values()), by_vm
        handle = self.handle(harness)
        texts = {handle.call("read_ovf", item=i) for i in items if i.name == "beta"}
        beta = next(vm for vm in engines["first"].synthetic.vms if vm.name == "beta")
        assert texts == {beta.ovf}

    def test_listing_carries_names_generations_and_scope(self, harness, engines):
        first = self.backup(harness, engines["first"])
        second = self.backup(harness, engines["changed"])
        items = self.listing(harness)
        assert len(items) == 8
        assert {(i.name, i.generation) for i in items} == {
            (n, g) for n in ("alpha", "beta", "gamma", "delta")
            for g in (first.run.id, second.run.id)}
        gamma = [i for i in items if i.name == "gamma"]
        assert {i.datacenter for i in gamma} == {"West"} and {i.cluster for i in gamma} == {
            "west-1"}
        assert all(i.taken_at is not None for i in items)
        west = gather([self.handle(harness)], Engine(None), "West").items
        assert sorted({i.name for i in west}) == ["delta", "gamma"]

    def test_a_provider_scoped_to_one_datacenter_stores_only_it(self, harness, engines):
        report = self.backup(harness, engines["first"], datacenter="East")
        assert report.providers[harness.name].written == 2
        assert sorted(i.name for i in self.listing(harness)) == ["alpha", "beta"]

    def test_nothing_is_listed_before_commit_and_abandon_keeps_the_previous(self, harness,
                                                                          engines):
        first = self.backup(harness, engines["first"])
        handle = self.handle(harness)
        with self.engine(engines["changed"]) as engine:
            from .backup import BackupReport, _backup_of, new_run
            from .capture import capture_one
            from .model import BackupOutcome

            run = new_run(harness.settings.system, engine.url, None)
            handle.call("before_backup", run=run, engine=engine)
            for vm in engine.iter_vms():
                backup = _backup_of(vm, capture_one(vm.ovf), BackupReport(run=run),
                                    lambda s: None)
                handle.call("write_ovf", run=run, vm=backup)
            assert {i.generation for i in self.listing(harness)} == {first.run.id}
            handle.call("after_backup", run=run, engine=engine,
                        outcome=BackupOutcome(ok=False, reason="test abandons the run"))
        assert {i.generation for i in self.listing(harness)} == {first.run.id}

    def test_a_corrupted_object_is_detected(self, harness, engines):
        self.backup(harness, engines["first"])
        handle = self.handle(harness)
        item = next(i for i in self.listing(harness) if i.name == "beta")
        harness.corrupt(item)
        with pytest.raises(ProviderError, match="corrupt"):
            handle.call("read_ovf", item=item)
        with self.engine(engines["first"]) as engine:
            outcome = restore([item], {harness.name: handle}, engine, echo=lambda s: None)
        assert outcome.failed and not outcome.restored
        assert not [r for r in engines["first"].received if r.method == "POST"
                    and r.path.endswith("/api/vms")]

    def test_items_of_other_providers_are_not_claimed(self, harness, engines):
        self.backup(harness, engines["first"])
        handle = self.handle(harness)
        item = dataclasses.replace(self.listing(harness)[0], provider="someone-else")
        assert handle.call("read_ovf", item=item) is None
        with self.engine(engines["first"]) as engine:
            assert handle.call("restore_vm", engine=engine, retry=False,
                               request=RestoreRequest(item=item, name="x")) is None

    def test_backend_down_mid_run_is_reported_and_caught_up(self, harness, engines):
        first = self.backup(harness, engines["first"])
        handle = self.handle(harness)
        writes = []
        with contextlib.ExitStack() as stack:
            def after(outcome, hook_name, impls, kwargs):
                if hook_name == "write_ovf":
                    writes.append(kwargs["vm"].identity.name)
                    if len(writes) == 1:
                        stack.enter_context(harness.outage())
            undo = handle.pm.add_hookcall_monitoring(lambda *a: None, after)
            down = self.backup(harness, engines["changed"], handle=handle)
            undo()
        rep = down.providers[harness.name]
        assert not rep.ok and rep.reason, down.summary()
        assert harness.name in rep.reason
        assert down.exit_code != 0
        assert {i.generation for i in self.listing(harness)} == {first.run.id}

        caught_up = self.backup(harness, engines["changed"])
        assert caught_up.exit_code == 0, caught_up.summary()
        newest = [i for i in self.listing(harness) if i.generation == caught_up.run.id]
        assert sorted(i.name for i in newest) == ["alpha", "beta", "delta", "gamma"]
        assert all(i.identity is None or i.identity.memory_mb == 8192 for i in newest)

    # -- retention: forget_generations is optional ---------------------------------------
    def forgetting_handle(self, harness: ProviderHarness) -> ProviderHandle:
        """A handle for ``harness``; skips the test when the provider cannot forget."""
        handle = self.handle(harness)
        if not handle.implements("forget_generations"):
            pytest.skip(f"{harness.name} does not implement forget_generations (optional)")
        return handle

    @pytest.fixture
    def beta_changed(self, tmp_path) -> Iterator[ReplayEngine]:
        """A replay engine with the contract's VMs where only ``beta`` changed (same ids)."""
        eng, changed = contract_engine(), contract_engine(changed=True)
        n = next(n for n, vm in enumerate(eng.vms) if vm.name == "beta")
        eng.vms[n] = dataclasses.replace(changed.vms[n], cluster=eng.vms[n].cluster)
        path = eng.write_cassette(tmp_path / "contract-beta-changed.yaml")
        with ReplayEngine([path], password=self.password) as server:
            server.synthetic = eng
            yield server

    def test_forgetting_generations_removes_exactly_the_unreferenced_ovfs(self, harness,
                                                                         engines, beta_changed):
        handle = self.forgetting_handle(harness)
        runs = [self.backup(harness, server)
                for server in (engines["first"], beta_changed, engines["first"])]
        assert [r.exit_code for r in runs] == [0, 0, 0], [r.summary() for r in runs]
        before = self.listing(harness)
        old, newest = {runs[0].run.id, runs[1].run.id}, runs[2].run.id
        kept = [i for i in before if i.generation == newest]
        forgotten = [i for i in before if i.generation in old]
        unreferenced = {i.ovf_hash for i in forgotten} - {i.ovf_hash for i in kept}
        assert len(unreferenced) == 1          # beta's changed OVF: only the middle run had it

        result = handle.call("forget_generations", generations=sorted(old))
        assert (result.generations, result.blobs) == (2, 1)
        after = self.listing(harness)
        assert {i.generation for i in after} == {newest}
        assert sorted((i.vm_id, i.ovf_hash) for i in after) == sorted(
            (i.vm_id, i.ovf_hash) for i in kept)
        ovfs = {vm.id: vm.ovf for vm in engines["first"].synthetic.vms}
        assert all(handle.call("read_ovf", item=i) == ovfs[i.vm_id] for i in after)
        (gone,) = [i for i in forgotten if i.ovf_hash in unreferenced]
        with pytest.raises(ProviderError):
            handle.call("read_ovf", item=gone)

        again = handle.call("forget_generations", generations=sorted(old) + ["19700101T000000Z-0"])
        assert (again.generations, again.blobs) == (0, 0)
        assert {i.generation for i in self.listing(harness)} == {newest}

    # -- store ownership: describe_store and claim_store are optional ----------------------
    def owning_handle(self, harness: ProviderHarness) -> ProviderHandle:
        handle = self.handle(harness)
        if not handle.implements("describe_store"):
            pytest.skip(f"{harness.name} keeps no store of its own (optional hooks)")
        return handle

    @pytest.fixture
    def other_engine(self, tmp_path) -> Iterator[ReplayEngine]:
        """Another engine: the same VM names, other data center ids."""
        path = contract_engine(seed=8).write_cassette(tmp_path / "contract-other.yaml")
        with ReplayEngine([path], password=self.password) as server:
            yield server

    def test_the_first_run_claims_the_store_and_another_engine_is_refused(
            self, harness, engines, other_engine):
        handle = self.owning_handle(harness)
        empty = handle.call("describe_store")
        assert empty.owner is None and empty.generations == 0
        first = self.backup(harness, engines["first"])
        info = handle.call("describe_store")
        dc_ids = {dc.id for dc in engines["first"].synthetic.datacenters}
        assert set(info.owner.datacenter_ids) == dc_ids
        assert info.generations == 1 and info.last_run is not None

        refused = self.backup(harness, other_engine)
        rep = refused.providers[harness.name]
        assert not rep.ok and "serves another engine" in rep.reason
        assert {i.generation for i in self.listing(harness)} == {first.run.id}

    def test_attach_continue_keeps_history_and_fresh_sets_it_aside(self, harness, engines,
                                                                 other_engine):
        handle = self.owning_handle(harness)
        first = self.backup(harness, engines["first"])
        with self.engine(other_engine) as engine:
            other = engine.identity(harness.settings.system)
        handle.call("claim_store", owner=other, fresh=False)
        second = self.backup(harness, other_engine)
        assert second.exit_code == 0, second.summary()
        assert {i.generation for i in self.listing(harness)} == {first.run.id, second.run.id}

        handle.call("claim_store", owner=other, fresh=True)
        info = handle.call("describe_store")
        assert info.generations == 0 and info.set_aside and info.owner == other
        assert self.listing(harness) == []
        third = self.backup(harness, other_engine)
        assert {i.generation for i in self.listing(harness)} == {third.run.id}
