"""The hook specs: documented (docs/hooks.md), their docstrings true, all called by the host.

These tests check what their names claim against the code itself: the signature in the
docs against the spec's, the functions a docstring says call a hook against those
functions' code, the return a docstring describes against the spec's annotation, and the
hooks the host calls against a provider that records every call.
"""
import ast
import datetime as dt
import functools
import importlib
import inspect
import re
import textwrap
from pathlib import Path

import pytest

from ovirt_backup_plugin import hookimpl, hookspecs
from ovirt_backup_plugin.backup.incremental import CaptureSettings, plan_capture
from ovirt_backup_plugin.backup.run import run_backup
from ovirt_backup_plugin.engine import EngineSettings
from ovirt_backup_plugin.host import ProviderHandle, Session
from ovirt_backup_plugin.host.plugins import FORBIDDEN, REQUIRED
from ovirt_backup_plugin.model import (
    KEEPS_ENGINE,
    KEEPS_OVF,
    BlobUse,
    GenerationInfo,
    ProviderDeclaration,
    PruneResult,
    Query,
    Restorable,
    RestoreResult,
    StoreInfo,
    StoreInventory,
)
from ovirt_backup_plugin.restore.listing import gather
from ovirt_backup_plugin.restore.restore import restore
from ovirt_backup_plugin.stores.check import check
from ovirt_backup_plugin.stores.ownership import attach
from ovirt_backup_plugin.stores.retention import prune
from ovirt_backup_plugin.testing import synth
from ovirt_backup_plugin.testing.replay import ReplayEngine

DOCS = Path(__file__).resolve().parent.parent / "docs" / "hooks.md"
SPECS = {name: fn for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
         if hasattr(fn, "ovirt_backup_plugin_spec")}


def test_the_four_design_hooks_are_specified():
    assert {"before_backup", "write_ovf", "list_restorable", "restore_vm"} <= set(SPECS)
    assert set(hookspecs.__all__) == set(SPECS)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_hook_is_documented_with_its_exact_signature(name):
    args = ", ".join(inspect.signature(SPECS[name]).parameters)
    headings = re.findall(r"^## (.+)$", DOCS.read_text(), re.M)
    assert f"{name}({args})" in headings


def test_no_spec_is_firstresult_because_the_host_calls_one_provider_at_a_time():
    assert {n: f.ovirt_backup_plugin_spec.get("firstresult", False)
            for n, f in SPECS.items()} == {n: False for n in SPECS}
    for name, fn in SPECS.items():
        assert "Not ``firstresult``" in fn.__doc__, name


def _section(doc: str, label: str) -> str:
    """The text after ``label`` up to the next blank line."""
    match = re.search(rf"{label}(.*?)(\n\s*\n|\Z)", doc, re.S)
    assert match, f"no {label!r} in the docstring"
    return " ".join(match.group(1).split())


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_spec_says_who_implements_it(name):
    implemented = _section(SPECS[name].__doc__, "Implemented by:")
    assert len(implemented) > 10


def _called_by(name):
    """The functions the spec's docstring names as its callers (outside parentheses and
    literals), resolved."""
    text = _section(SPECS[name].__doc__, "Called by:")
    text = re.sub(r"``.*?``", "", re.sub(r"\([^()]*\)", "", text))
    dotted = re.findall(r"\b([a-z_]+(?:\.[A-Za-z_]+)+)\b", text)
    assert dotted, f"{name}: 'Called by' names no function"
    found = []
    for path in dotted:
        parts = path.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            try:
                obj = importlib.import_module("ovirt_backup_plugin." + ".".join(parts[:cut]))
            except ImportError:
                continue
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
            found.append((path, obj))
            break
        else:
            pytest.fail(f"{name}: 'Called by' names {path}, which does not exist")
    return found


def _uses(function, depth=1):
    """Attribute names the function uses, and those of its module's functions it calls
    (``depth`` levels down: a caller may hand the call to a helper of its own module)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    uses = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    if depth:
        module = inspect.getmodule(function)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                helper = getattr(module, node.func.id, None)
                if inspect.isfunction(helper) and inspect.getmodule(helper) is module:
                    uses |= _uses(helper, depth - 1)
    return uses


@pytest.mark.parametrize("name", sorted(SPECS))
def test_the_functions_a_spec_names_as_callers_do_call_it(name):
    for path, function in _called_by(name):
        assert name in _uses(function), f"{path} does not call {name}"


@pytest.mark.parametrize("name", sorted(set(SPECS) - {"declare_provider"}))
def test_the_typed_facade_has_one_method_per_hook_calling_that_hook(name):
    method = getattr(ProviderHandle, name)
    assert f'self._call("{name}"' in inspect.getsource(method)
    spec_args = set(inspect.signature(SPECS[name]).parameters) - {"settings", "note"}
    facade_args = set(inspect.signature(method).parameters) - {"self", "note"}
    assert facade_args == spec_args


RETURN_WORDS = {"None": "Nothing", "object": "state", "bool": "True"}


@pytest.mark.parametrize("name", sorted(SPECS))
def test_what_a_spec_says_it_returns_is_its_annotation(name):
    annotation = str(inspect.signature(SPECS[name]).return_annotation)
    returns = _section(SPECS[name].__doc__, ":returns:")
    types = [t for t in re.findall(r"[A-Za-z]+", annotation) if t not in (
        "Optional", "List", "Union")]
    for t in types:
        assert RETURN_WORDS.get(t, t) in returns, (name, annotation, returns)


def test_the_registration_table_in_the_docs_is_the_code():
    docs = DOCS.read_text()
    for keeps in REQUIRED:
        row = next(line for line in docs.splitlines() if line.startswith(f"| `{keeps}`"))
        cells = row.split("|")
        for hook in REQUIRED[keeps]:
            assert f"`{hook}`" in cells[2], (keeps, hook)
        for hook in FORBIDDEN[keeps]:
            assert f"`{hook}`" in cells[3], (keeps, hook)


def test_every_hook_is_exercised_by_the_host(tmp_path):
    """A provider implementing every spec sees each one called by backup (a sweep, then an
    incremental run), list, restore, attach and prune, with the state its before_backup
    returned handed back."""
    called = []
    old = GenerationInfo("19990101T000000Z-old", dt.datetime(1999, 1, 1, tzinfo=dt.timezone.utc),
                         1)

    class Recorder:
        owner = None
        state = object()
        runs = []

        @hookimpl
        def declare_provider(self):
            called.append("declare_provider")
            return ProviderDeclaration(keeps=KEEPS_OVF)

        @hookimpl
        def describe_store(self, settings):
            called.append("describe_store")
            return StoreInfo(location="memory of the test", owner=self.owner)

        @hookimpl
        def claim_store(self, settings, owner, fresh, note):
            called.append("claim_store")
            self.owner = owner

        @hookimpl
        def list_generations(self, settings):
            called.append("list_generations")
            return [GenerationInfo(r.id, r.started_at, 1, mode=r.mode, reason=r.reason,
                                   cursor=r.cursor, datacenter=r.datacenter)
                    for r in reversed(self.runs)] + [old]

        @hookimpl
        def forget_generations(self, settings, generations):
            called.append("forget_generations")
            self.forgotten = generations
            return PruneResult(generations=len(generations))

        @hookimpl
        def before_backup(self, run, engine, settings, note):
            called.append("before_backup")
            return self.state

        @hookimpl
        def carry_over(self, run, state, items, settings):
            assert state is self.state
            called.append("carry_over")
            self.carried = items
            return []

        @hookimpl
        def write_ovf(self, run, state, vm, settings):
            assert state is self.state
            called.append("write_ovf")
            self.vm = vm
            return True

        @hookimpl
        def after_backup(self, run, state, engine, settings, outcome, note):
            assert state is self.state
            called.append("after_backup")
            if outcome.ok:
                self.runs.append(run)

        @hookimpl
        def list_restorable(self, query, engine, settings):
            called.append("list_restorable")
            vm = self.vm
            return query.answer([Restorable(
                provider=settings.name, vm_id=vm.vm_id, name=vm.name, generation=g, taken_at=t,
                ovf_hash=vm.ovf_hash, cluster=vm.cluster) for g, t in (
                    [(r.id, r.started_at) for r in self.runs] + [(old.id, old.taken_at)])])

        @hookimpl
        def read_ovf(self, item, settings):
            called.append("read_ovf")
            return self.vm.blob

        @hookimpl
        def inventory_store(self, settings):
            called.append("inventory_store")
            vm = self.vm
            return StoreInventory(generations=1, stored=(vm.ovf_hash,), uses=(BlobUse(
                ovf_hash=vm.ovf_hash, vm_id=vm.vm_id, name=vm.name, first=self.runs[-1].id,
                last=self.runs[-1].id),))


    class Registrar:
        """What an engine-side provider implements (it restores its own way)."""

        @hookimpl
        def declare_provider(self):
            return ProviderDeclaration(keeps=KEEPS_ENGINE)

        @hookimpl
        def list_restorable(self, query, settings):
            vm = recorder.vm
            return query.answer([Restorable(provider=settings.name, vm_id="engine-side-1",
                                            name="kept-by-the-engine", generation="sd:x",
                                            cluster=vm.cluster)])

        @hookimpl
        def restore_vm(self, request, engine, settings):
            called.append("restore_vm")
            return RestoreResult(provider=settings.name, vm_id=request.item.vm_id,
                                 name=request.name)

    eng = synth.SyntheticEngine(seed=3)
    dc = eng.add_datacenter("DC")
    eng.add_cluster("c1", dc)
    eng.add_storage_domain("sd", dc, master=True)
    eng.add_vm("only", "c1")
    eng.add_vm("unchanged", "c1")
    eng.add_restore("only", cluster="c1")
    recorder = Recorder()
    with ReplayEngine([eng.write_cassette(tmp_path / "e.yaml")]) as server:
        session = Session.for_engine(EngineSettings(url=server.url, password="replay-secret"),
                                     system="t", providers=[], state_dir=str(tmp_path),
                                     extra=[("recorder", recorder), ("registrar", Registrar())])
        with session:
            engine, (handle, registrar) = session.engine, session.handles
            planner = functools.partial(plan_capture, settings=CaptureSettings(sample=0))
            first = run_backup(engine, [handle], system="t", planner=planner)
            eng.change_vm("only")
            eng.tick(600)
            server.reload(eng.write_cassette(tmp_path / "e2.yaml"))
            second = run_backup(engine, [handle], system="t", planner=planner)
            assert (first.exit_code, first.run.mode) == (0, "full")
            assert (second.exit_code, second.run.mode) == (0, "incremental"), second.summary()
            assert [i.name for i in recorder.carried] == ["unchanged"]
            assert recorder.vm.name == "only"             # the changed VM was written
            listing = gather([handle, registrar], engine, Query(vms=("only", "kept-*")))
            outcome = restore(listing.newest(), {h.name: h for h in session.handles}, engine,
                              echo=lambda s: None)
            assert attach(handle, engine.identity("t"), mode=None, echo=lambda s: None) == 0
            assert prune([handle], engine, keep_last=1, echo=lambda s: None) == 0
            handle.read_checked(listing.items[0])
            assert check([handle], read_data=True, echo=lambda s: None) == 0
    assert outcome.restored == ["kept-by-the-engine", "only"]
    assert recorder.owner.datacenter_ids == (eng.datacenters[0].id,)
    assert recorder.forgotten == [first.run.id, "19990101T000000Z-old"]
    assert set(called) == set(SPECS)
    assert called.index("before_backup") < called.index("write_ovf") < called.index(
        "after_backup")
