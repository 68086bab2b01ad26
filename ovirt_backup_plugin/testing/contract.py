"""The provider contract: one test suite every backup provider must pass.

Built-in and third-party providers run the same tests. A provider's test module subclasses
:class:`ProviderContract` and supplies a ``harness`` fixture::

    import pytest
    from ovirt_backup_plugin.testing.contract import ProviderContract, ProviderHarness

    class TestMyProvider(ProviderContract):
        @pytest.fixture
        def harness(self, tmp_path):
            return MyHarness(tmp_path)          # a ProviderHarness

The tests drive the provider through the real host (composition root, plugin manager,
provider handles, backup run, listing, restore) against a replay engine that the real SDK
talks to over HTTP, so they exercise exactly what ``ovirt-backup`` does. What a provider
must do is what the hook specs say (:mod:`ovirt_backup_plugin.hookspecs`); nothing else is
asked of it: the host calls each provider separately, checks and unseals what it hands back,
and owns scope, retries and the default restore.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
from typing import ContextManager, Dict, Iterator, List, Mapping, Optional

import pytest
from lxml import etree

from ..backup.capture import capture_one
from ..backup.incremental import CaptureSettings, plan_capture
from ..backup.run import BackupReport, backup_of, new_run, run_backup
from ..engine import Engine, EngineSettings
from ..errors import ProviderError
from ..host import ProviderHandle, Session
from ..model import MODE_FULL, MODE_INCREMENTAL, BackupOutcome, Query, Restorable
from ..restore.listing import gather, select
from ..restore.restore import restore
from ..stores.check import check
from .replay import ReplayEngine
from .synth import SyntheticEngine, make_ovf

__all__ = ["ProviderHarness", "ProviderContract", "contract_engine"]


class ProviderHarness:
    """What the contract needs to drive one provider against a real backend.

    :param name: the provider name.
    :param plugin: the plugin object (a module or an instance with ``@hookimpl`` functions).
    :param options: the ``[provider:NAME]`` section, as strings, pointing at a fresh, empty
        backend for this test (parsed against what the provider declares, like a file's).
    :param state_dir: the system's state directory.
    :param system: the system name.
    :param backup_options: the ``[backup]`` section's keys, as strings (for example the
        encryption key ring: ``encryption_key_file``).
    """

    def __init__(self, name: str, plugin: object, options: Mapping[str, str], *,
                 state_dir: str, system: str = "contract",
                 backup_options: Optional[Mapping[str, str]] = None):
        self.name, self.plugin, self.options = name, plugin, dict(options)
        self.state_dir, self.system = state_dir, system
        self.backup_options = dict(backup_options or {})

    def outage(self) -> ContextManager[None]:
        """Take the backend away for real (network cut, disk full) while the block runs."""
        raise NotImplementedError

    def corrupt(self, item: Restorable) -> None:
        """Damage the stored OVF of ``item`` in the backend (as bit rot would)."""
        raise NotImplementedError

    def remove(self, item: Restorable) -> None:
        """Delete the stored OVF of ``item`` from the backend behind the provider's back
        (optional: the check tests that need it are skipped without it)."""
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
    eng.add_restore("alpha-1", cluster="east-1", of="alpha")
    eng.add_restore("alpha-2", cluster="east-1", of="alpha")
    return eng


NAMES = ["alpha", "beta", "delta", "gamma"]


class ProviderContract:
    """The tests. Subclass as ``Test<Provider>`` and provide a ``harness`` fixture."""

    password = "replay-secret"

    # -- fixtures and helpers ------------------------------------------------------------
    @pytest.fixture
    def engines(self, tmp_path) -> Iterator[Dict[str, ReplayEngine]]:
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

    def session(self, harness: ProviderHarness, server: Optional[ReplayEngine] = None,
                **options: str) -> Session:
        """A session with only this provider enabled (``options`` added to its section)."""
        section = {"retries": "0", **harness.options, **options}
        settings = None if server is None else EngineSettings(
            url=server.url, username=server.username, password=self.password, retries=0)
        return Session.for_engine(settings, system=harness.system, providers=[],
                                  state_dir=harness.state_dir,
                                  provider_options={harness.name: section},
                                  extra=[(harness.name, harness.plugin)],
                                  **harness.backup_options)

    def handle(self, harness: ProviderHarness, **options: str) -> ProviderHandle:
        return self.session(harness, None, **options).handles[0]

    def backup(self, harness: ProviderHarness, server: ReplayEngine, **options: str) -> BackupReport:
        with self.session(harness, server, **options) as s:
            return run_backup(s.engine, s.handles, system=harness.system)

    def listing(self, harness: ProviderHarness, query: Optional[Query] = None,
                **options: str) -> List[Restorable]:
        listing = gather([self.handle(harness, **options)], Engine(None), query or Query())
        assert not listing.errors, listing.errors
        return listing.items

    @staticmethod
    def engine_ovfs(server: ReplayEngine) -> Dict[str, str]:
        return {vm.id: vm.ovf for vm in server.synthetic.vms}   # type: ignore[attr-defined]

    @staticmethod
    def posted(server: ReplayEngine) -> List[etree._Element]:
        return [etree.fromstring(r.body.encode()) for r in server.received
                if r.method == "POST" and r.path.endswith("/api/vms")]

    # -- the contract --------------------------------------------------------------------
    def test_write_list_restore_round_trip(self, harness, engines):
        server = engines["first"]
        report = self.backup(harness, server)
        assert report.exit_code == 0, report.summary()
        items = self.listing(harness)
        assert sorted(i.name for i in items) == NAMES
        assert {i.generation for i in items} == {report.run.id}
        ids = {vm.name: vm.id for vm in server.synthetic.vms}
        assert {i.name: i.vm_id for i in items} == ids

        with self.session(harness, server) as s:
            chosen = select(gather(s.handles, s.engine, Query(vms=("alpha",))), ["alpha"])
            # NICs kept as stored (copies into their own engine would get them unplugged):
            # what is posted is exactly what the provider handed back
            outcome = restore(chosen, {harness.name: s.handles[0]}, s.engine, copies=2,
                              echo=lambda s: None, nics_unplugged=False)
        assert outcome.restored == ["alpha-1", "alpha-2"] and not outcome.failed
        posted = self.posted(server)
        assert sorted(p.findtext("name") for p in posted) == ["alpha-1", "alpha-2"]
        alpha_ovf = self.engine_ovfs(server)[ids["alpha"]]
        assert all(p.findtext("initialization/configuration/data") == alpha_ovf for p in posted)
        assert all(p.findtext("initialization/regenerate_ids") == "true" for p in posted)
        assert all(p.findtext("cluster/name") == "east-1" for p in posted)

    def test_rewriting_the_same_ovf_is_idempotent(self, harness, engines):
        first = self.backup(harness, engines["first"])
        second = self.backup(harness, engines["first"])
        assert first.providers[harness.name].new_blobs == 4
        assert second.providers[harness.name].new_blobs == 0
        assert second.providers[harness.name].written == 4
        items = self.listing(harness, Query(every=True))
        assert len(items) == 8
        by_vm: Dict[str, set] = {}
        for item in items:
            by_vm.setdefault(item.name, set()).add(item.ovf_hash)
        assert all(len(hashes) == 1 for hashes in by_vm.values()), by_vm
        handle = self.handle(harness)
        ovfs = self.engine_ovfs(engines["first"])
        assert all(handle.read_checked(i).text == ovfs[i.vm_id] for i in items)

    def test_queries_are_answered_from_the_index(self, harness, engines):
        first = self.backup(harness, engines["first"])
        second = self.backup(harness, engines["changed"])
        every = self.listing(harness, Query(every=True))
        assert {(i.name, i.generation) for i in every} == {
            (n, g) for n in NAMES for g in (first.run.id, second.run.id)}
        assert all(i.taken_at is not None for i in every)
        gamma = [i for i in every if i.name == "gamma"]
        assert {i.datacenter for i in gamma} == {"West"} and {i.cluster for i in gamma} == {
            "west-1"}

        newest = self.listing(harness)
        assert sorted(i.name for i in newest) == NAMES
        assert {i.generation for i in newest} == {second.run.id}
        assert all(i.generations in (None, 2) for i in newest)
        west = self.listing(harness, Query(datacenter="West"))
        assert sorted(i.name for i in west) == ["delta", "gamma"]
        assert [i.name for i in self.listing(harness, Query(cluster="east-1", vms=("b*",)))] \
            == ["beta"]
        by_id = {i.name: i.vm_id for i in newest}
        picked = self.listing(harness, Query(vms=(by_id["delta"], "alpha")))
        assert sorted(i.name for i in picked) == ["alpha", "delta"]
        history = self.listing(harness, Query(vms=("beta",), every=True))
        assert sorted(i.generation for i in history) == sorted([first.run.id, second.run.id])
        between = first.run.started_at + (second.run.started_at - first.run.started_at) / 2
        old = self.listing(harness, Query(at=between))
        assert {i.generation for i in old} == {first.run.id} and len(old) == 4
        assert self.listing(harness, Query(at=first.run.started_at - dt.timedelta(days=1))) == []
        only = self.listing(harness, Query(generation=first.run.id, vms=("g*",)))
        assert [(i.name, i.generation) for i in only] == [("gamma", first.run.id)]
        assert len(self.listing(harness, Query(every=True, limit=3))) == 3
        assert self.listing(harness, Query(vms=("no-such-vm",))) == []

    def test_a_provider_scoped_to_one_datacenter_stores_only_it(self, harness, engines):
        report = self.backup(harness, engines["first"], datacenter="East")
        assert report.providers[harness.name].written == 2
        assert sorted(i.name for i in self.listing(harness)) == ["alpha", "beta"]

    def test_nothing_is_listed_before_commit_and_abandon_keeps_the_previous(self, harness,
                                                                          engines):
        first = self.backup(harness, engines["first"])
        with self.session(harness, engines["changed"]) as s:
            handle, engine = s.handles[0], s.engine
            run = new_run(harness.system, engine.url, None)
            state = handle.before_backup(run, engine)
            for vm in engine.iter_vms():
                handle.write_ovf(run, state, backup_of(vm, capture_one(vm.ovf)))
            assert {i.generation for i in self.listing(harness)} == {first.run.id}
            handle.after_backup(run, state, engine,
                                BackupOutcome(ok=False, reason="test abandons the run"))
        assert {i.generation for i in self.listing(harness, Query(every=True))} == {first.run.id}

    def test_a_corrupted_object_is_refused_and_nothing_is_sent(self, harness, engines):
        self.backup(harness, engines["first"])
        item = next(i for i in self.listing(harness) if i.name == "beta")
        harness.corrupt(item)
        with pytest.raises(ProviderError, match="corrupt|unusable"):
            self.handle(harness).read_checked(item)
        with self.session(harness, engines["first"]) as s:
            outcome = restore([item], {harness.name: s.handles[0]}, s.engine,
                              echo=lambda s: None)
        assert outcome.failed and not outcome.restored
        assert "beta" in outcome.failed[0]
        assert self.posted(engines["first"]) == []

    def test_an_ovf_carrying_another_vms_id_never_replaces_that_vms_entry(self, harness,
                                                                          tmp_path):
        eng = contract_engine()
        alpha = next(vm for vm in eng.vms if vm.name == "alpha")
        n = next(n for n, vm in enumerate(eng.vms) if vm.name == "beta")
        eng.vms[n] = dataclasses.replace(eng.vms[n], ovf=make_ovf(
            alpha.id, "beta", cluster="east-1", memory_mb=2048, seed=99))
        with ReplayEngine([eng.write_cassette(tmp_path / "clash.yaml")],
                          password=self.password) as server:
            report = self.backup(harness, server)
        assert report.exit_code == 1 and any("beta" in w for w in report.warnings)
        items = {i.vm_id: i for i in self.listing(harness)}
        assert len(items) == 4
        assert items[alpha.id].name == "alpha"
        assert items[eng.vms[n].id].name == "beta"
        handle = self.handle(harness)
        assert handle.read_checked(items[alpha.id]).text == alpha.ovf
        assert handle.read_checked(items[eng.vms[n].id]).identity.memory_mb == 2048

    def test_backend_down_mid_run_is_reported_and_caught_up(self, harness, engines):
        first = self.backup(harness, engines["first"])
        writes: List[str] = []
        with contextlib.ExitStack() as stack:
            def after(outcome, hook_name, impls, kwargs):
                if hook_name == "write_ovf":
                    writes.append(kwargs["vm"].name)
                    if len(writes) == 1:
                        stack.enter_context(harness.outage())
            with self.session(harness, engines["changed"]) as s:
                undo = s.pm.add_hookcall_monitoring(lambda *a: None, after)
                down = run_backup(s.engine, s.handles, system=harness.system)
                undo()
        rep = down.providers[harness.name]
        assert not rep.ok and rep.reason, down.summary()
        assert harness.name in rep.reason
        assert down.exit_code != 0
        assert {i.generation for i in self.listing(harness, Query(every=True))} == {first.run.id}

        caught_up = self.backup(harness, engines["changed"])
        assert caught_up.exit_code == 0, caught_up.summary()
        newest = self.listing(harness)
        assert sorted(i.name for i in newest) == NAMES
        assert {i.generation for i in newest} == {caught_up.run.id}
        handle = self.handle(harness)
        ovfs = self.engine_ovfs(engines["changed"])
        assert all(handle.read_checked(i).text == ovfs[i.vm_id] for i in newest)
        assert {handle.read_checked(i).identity.memory_mb for i in newest} == {8192}

    # -- incremental runs: carry_over --------------------------------------------------------
    def incremental_backup(self, harness: ProviderHarness, server: ReplayEngine) -> BackupReport:
        """A run as ``ovirt-backup backup`` makes it ([backup] mode = auto), without the
        sample of the cross-check, so that every unchanged VM is carried over."""
        with self.session(harness, server) as s:
            return run_backup(s.engine, s.handles, system=harness.system,
                              planner=lambda e, h, scope: plan_capture(
                                  e, h, scope, CaptureSettings(sample=0)))

    @pytest.fixture
    def live(self, tmp_path) -> Iterator[ReplayEngine]:
        """The contract's engine behind a replay engine that follows its mutations
        (``server.publish()`` after changing ``server.synthetic``)."""
        eng = contract_engine()
        eng.tick(3600)
        rounds = [0]

        def cassette():
            rounds[0] += 1
            return eng.write_cassette(tmp_path / f"contract-live-{rounds[0]}.yaml")
        with ReplayEngine([cassette()], password=self.password) as server:
            server.synthetic = eng

            def publish() -> None:
                eng.tick(600)
                server.reload(cassette())
            server.publish = publish
            yield server

    def test_an_incremental_run_records_the_unchanged_vms_by_reference(self, harness, live):
        eng = live.synthetic
        first = self.incremental_backup(harness, live)
        assert (first.exit_code, first.run.mode) == (0, MODE_FULL), first.summary()
        beta = next(vm for vm in eng.vms if vm.name == "beta")
        eng.change_vm(beta)
        live.publish()
        second = self.incremental_backup(harness, live)
        handle = self.handle(harness)
        if not handle.implements("list_generations"):       # nothing to build on: a sweep
            assert second.run.mode == MODE_FULL and "cannot list" in second.run.reason
            return
        assert (second.exit_code, second.run.mode) == (0, MODE_INCREMENTAL), second.summary()
        rep = second.providers[harness.name]
        assert (rep.written, rep.new_blobs, rep.carried) == (4, 1, 3)
        items = self.listing(harness, Query(generation=second.run.id))
        assert sorted(i.name for i in items) == NAMES       # a complete generation
        before = {i.vm_id: i for i in self.listing(harness, Query(generation=first.run.id))}
        ovfs = self.engine_ovfs(live)
        for item in items:
            assert handle.read_checked(item).text == ovfs[item.vm_id]
            old = before[item.vm_id]
            assert (item.name, item.kind, item.datacenter, item.cluster) == (
                old.name, old.kind, old.datacenter, old.cluster)
            assert (item.ovf_hash == old.ovf_hash) == (item.vm_id != beta.id)
        newest, older = handle.list_generations()[:2]
        # the cursor and the mode are committed with the generation
        assert (newest.id, newest.mode, newest.cursor, newest.reason) == (
            second.run.id, MODE_INCREMENTAL, second.run.cursor, second.run.reason)
        assert newest.cursor is not None and newest.vms == 4 and newest.datacenter is None
        assert (older.id, older.mode, older.reason) == (first.run.id, MODE_FULL, first.run.reason)

    def test_carry_over_is_idempotent_and_an_abandoned_run_keeps_nothing(self, harness, live):
        first = self.incremental_backup(harness, live)
        handle = self.handle(harness)
        if not handle.implements("carry_over"):
            pytest.skip(f"{harness.name} does not implement carry_over (the host reads back)")
        items = self.listing(harness, Query(generation=first.run.id))
        with self.session(harness, live) as s:
            handle, engine = s.handles[0], s.engine
            for ok in (False, True):
                run = new_run(harness.system, engine.url, None)
                state = handle.before_backup(run, engine)
                assert handle.carry_over(run, state, items) == []
                assert handle.carry_over(run, state, items) == []       # a retry
                assert {i.generation for i in self.listing(harness, Query(every=True))} == {
                    first.run.id}                                        # not before commit
                handle.after_backup(run, state, engine, BackupOutcome(
                    ok=ok, carried=4, written=4, reason="" if ok else "test abandons it"))
                if not ok:
                    assert {i.generation for i in self.listing(harness, Query(every=True))} \
                        == {first.run.id}
        again = self.listing(harness, Query(generation=run.id))
        assert sorted((i.vm_id, i.ovf_hash) for i in again) == sorted(
            (i.vm_id, i.ovf_hash) for i in items)

    # -- retention: list_generations and forget_generations are optional ----------------
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
        generations = handle.list_generations()
        assert [g.id for g in generations] == [r.run.id for r in reversed(runs)]
        assert [g.vms for g in generations] == [4, 4, 4]
        before = self.listing(harness, Query(every=True))
        old, newest = {runs[0].run.id, runs[1].run.id}, runs[2].run.id
        kept = [i for i in before if i.generation == newest]
        forgotten = [i for i in before if i.generation in old]
        unreferenced = {i.ovf_hash for i in forgotten} - {i.ovf_hash for i in kept}
        assert len(unreferenced) == 1          # beta's changed OVF: only the middle run had it

        result = handle.forget_generations(sorted(old))
        assert (result.generations, result.blobs) == (2, 1)
        after = self.listing(harness, Query(every=True))
        assert {i.generation for i in after} == {newest}
        assert sorted((i.vm_id, i.ovf_hash) for i in after) == sorted(
            (i.vm_id, i.ovf_hash) for i in kept)
        assert [g.id for g in handle.list_generations()] == [newest]
        assert all(i.generations in (None, 1) for i in self.listing(harness))
        ovfs = self.engine_ovfs(engines["first"])
        assert all(handle.read_checked(i).text == ovfs[i.vm_id] for i in after)
        (gone,) = [i for i in forgotten if i.ovf_hash in unreferenced]
        with pytest.raises(ProviderError):
            handle.read_ovf(gone)

        again = handle.forget_generations(sorted(old) + ["19700101T000000Z-0"])
        assert (again.generations, again.blobs) == (0, 0)
        assert {i.generation for i in self.listing(harness, Query(every=True))} == {newest}

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
        empty = handle.describe_store()
        assert empty is not None and empty.owner is None and empty.generations == 0
        first = self.backup(harness, engines["first"])
        info = handle.describe_store()
        dc_ids = {dc.id for dc in engines["first"].synthetic.datacenters}
        assert info is not None and info.owner is not None
        assert set(info.owner.datacenter_ids) == dc_ids
        assert info.generations == 1 and info.last_run is not None and info.format >= 1

        refused = self.backup(harness, other_engine)
        rep = refused.providers[harness.name]
        assert not rep.ok and "serves another engine" in rep.reason
        assert {i.generation for i in self.listing(harness, Query(every=True))} == {first.run.id}

    def test_attach_continue_keeps_history_and_fresh_sets_it_aside(self, harness, engines,
                                                                 other_engine):
        handle = self.owning_handle(harness)
        first = self.backup(harness, engines["first"])
        with Engine(EngineSettings(url=other_engine.url, username=other_engine.username,
                                   password=self.password)) as engine:
            other = engine.identity(harness.system)
        handle.claim_store(other, False)
        second = self.backup(harness, other_engine)
        assert second.exit_code == 0, second.summary()
        assert {i.generation for i in self.listing(harness, Query(every=True))} == {
            first.run.id, second.run.id}

        handle.claim_store(other, True)
        info = handle.describe_store()
        assert info is not None and info.generations == 0 and info.set_aside
        assert info.owner == other
        assert self.listing(harness) == []
        third = self.backup(harness, other_engine)
        assert {i.generation for i in self.listing(harness, Query(every=True))} == {third.run.id}

    # -- check: inventory_store is optional -----------------------------------------------
    def inventorying_handle(self, harness: ProviderHarness) -> ProviderHandle:
        handle = self.handle(harness)
        if not handle.implements("inventory_store"):
            pytest.skip(f"{harness.name} does not implement inventory_store (optional)")
        return handle

    def test_the_inventory_is_what_every_generation_references(self, harness, engines,
                                                              beta_changed):
        handle = self.inventorying_handle(harness)
        runs = [self.backup(harness, server) for server in (engines["first"], beta_changed)]
        assert [r.exit_code for r in runs] == [0, 0], [r.summary() for r in runs]
        inventory = handle.inventory_store()
        assert inventory.generations == 2 and inventory.problems == ()
        items = self.listing(harness, Query(every=True))
        assert {(u.ovf_hash, u.vm_id) for u in inventory.uses} == {
            (i.ovf_hash, i.vm_id) for i in items}
        assert sum(u.generations for u in inventory.uses) == len(items) == 8
        betas = {(u.first, u.last, u.generations) for u in inventory.uses if u.name == "beta"}
        assert betas == {(runs[0].run.id, runs[0].run.id, 1), (runs[1].run.id, runs[1].run.id, 1)}
        alpha = next(u for u in inventory.uses if u.name == "alpha")
        assert (alpha.first, alpha.last, alpha.generations) == (runs[0].run.id, runs[1].run.id, 2)
        assert set(inventory.stored) == {u.ovf_hash for u in inventory.uses}
        lines: List[str] = []
        assert check([handle], read_data=True, echo=lines.append) == 0, lines
        assert any("read 5 stored OVF(s) once each" in line for line in lines), lines

    def test_check_reports_a_damaged_and_a_missing_ovf_per_vm_and_generation(self, harness,
                                                                             engines):
        handle = self.inventorying_handle(harness)
        report = self.backup(harness, engines["first"])
        items = {i.name: i for i in self.listing(harness)}
        harness.corrupt(items["beta"])
        lines: List[str] = []
        assert check([handle], echo=lines.append) == 0, lines        # references resolve
        assert check([handle], read_data=True, echo=lines.append) == 1
        (problem,) = [line for line in lines if "PROBLEM" in line]
        assert "beta" in problem and report.run.id in problem and items["beta"].vm_id in problem
        try:
            harness.remove(items["gamma"])
        except NotImplementedError:
            pytest.skip(f"the {harness.name} harness cannot remove a stored OVF")
        lines.clear()
        assert check([handle], echo=lines.append) == 1
        (problem,) = [line for line in lines if "PROBLEM" in line]
        assert "gamma" in problem and "missing" in problem and report.run.id in problem
