"""The layout shows the architecture, and the import graph keeps it: no cycles, no imports
hidden in functions (but for optional dependencies), the test kit apart from the product,
and ruff and mypy clean.
"""
import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "ovirt_backup_plugin"
#: Imported where they are used: optional dependencies (a system without them works), and
#: yaml, which only a restore's --map-file reads (the SDK: engine/sdk.py, on first use).
OPTIONAL = {"swiftclient", "requests", "keystoneclient", "boto3", "botocore", "cryptography",
            "argcomplete", "rich", "tqdm", "prometheus_client", "yaml"}
#: Folders a newcomer finds the architecture by.
PARTS = {"engine": "the engine adapter", "host": "plugin manager, handles, settings, session",
         "backup": "capture, runs, lock, runner", "restore": "listing, restore, plan, history",
         "stores": "ownership and retention", "ovf": "parsing, hashing, sealing",
         "testing": "the test kit"}


def modules():
    """module name -> file, for the package and the built-in providers (hooks/)."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    for path in (ROOT / "hooks").glob("*.py"):
        stem = path.stem
        found["ovirt_backup_plugin.hooks" + ("" if stem == "__init__" else "." + stem)] = path
    return found


def _resolve(module, node, is_package):
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    base = module.split(".")
    if node.level:
        base = base[:len(base) - node.level + (1 if is_package else 0)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    return [target] + [f"{target}.{a.name}" for a in node.names]


def module_imports(name, path):
    """Imports at module level (not under ``if TYPE_CHECKING:``), resolved to names."""
    tree = ast.parse(path.read_text())
    out = []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            out += _resolve(name, node, path.name == "__init__.py")
    return out


def graph():
    mods = modules()
    edges = {}
    for name, path in mods.items():
        targets = set()
        for target in module_imports(name, path):
            while target and target not in mods:
                target = target.rpartition(".")[0]
            if target and target != name:
                targets.add(target)
        edges[name] = targets
    # the command line imports each command's module by name when it runs (cli.COMMANDS;
    # the test kit's own commands, demo and record, apart: only they load the kit)
    edges["ovirt_backup_plugin.cli"] |= {t.partition(":")[0]
                                         for t in _command_targets(kit=False)}
    return edges


def _command_targets(kit=True):
    from ovirt_backup_plugin import cli
    return [*cli.COMMANDS.values(), *cli.CONFIG_COMMANDS.values(),
            *(cli.KIT_COMMANDS.values() if kit else ())]


def test_the_folders_are_the_parts_of_the_architecture():
    for part in PARTS:
        assert (PACKAGE / part / "__init__.py").is_file(), part
        assert (PACKAGE / part / "__init__.py").read_text().startswith('"""'), part
    assert (ROOT / "hooks" / "localdb.py").is_file() and (PACKAGE / "hookspecs.py").is_file()


def test_there_is_no_import_cycle():
    edges = graph()
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    sys.setrecursionlimit(10000)
    for v in edges:
        if v not in index:
            visit(v)
    assert cycles == []
    assert sum(len(t) for t in edges.values()) > 100       # the graph was really read


def test_no_import_is_hidden_in_a_function_but_optional_dependencies():
    hidden = []
    for name, path in modules().items():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for sub in ast.walk(node):
                    if isinstance(sub, (ast.Import, ast.ImportFrom)):
                        targets = _resolve(name, sub, path.name == "__init__.py")
                        if targets[0].split(".")[0] not in OPTIONAL:
                            hidden.append(f"{path.relative_to(ROOT)}:{sub.lineno} {targets[0]}")
    assert hidden == []


def test_the_product_does_not_import_the_test_kit():
    allowed = {"ovirt_backup_plugin.demo"}            # the demo runs a replay engine
    offenders = []
    for name, targets in graph().items():
        if name.startswith("ovirt_backup_plugin.testing") or name in allowed:
            continue
        offenders += [f"{name} -> {t}" for t in targets
                      if t.startswith("ovirt_backup_plugin.testing")]
    assert offenders == []


def test_the_built_in_providers_import_only_the_public_surface():
    public = {"ovirt_backup_plugin", "ovirt_backup_plugin.errors", "ovirt_backup_plugin.model",
              "ovirt_backup_plugin.objectstore"}   # objectstore: the index for object stores
    for name, targets in graph().items():
        if name.startswith("ovirt_backup_plugin.hooks."):
            assert {t for t in targets if t.startswith("ovirt_backup_plugin")} <= public, name


def test_every_command_of_the_parser_runs_a_function_that_exists():
    """The command line finds what a command runs by name (so that a command loads only its
    own part): every subcommand has exactly one entry, and each entry names a function."""
    import argparse
    import importlib

    from ovirt_backup_plugin import cli
    sub = next(a for a in cli.build_parser()._actions
               if isinstance(a, argparse._SubParsersAction))
    own = {"keygen", "providers"}                        # cli.py's own, run with the settings
    tables = [cli.COMMANDS, cli.CONFIG_COMMANDS, cli.KIT_COMMANDS]
    assert sorted(sub.choices) == sorted([*own, *(n for t in tables for n in t)])
    for target in _command_targets():
        module, _, function = target.partition(":")
        assert callable(getattr(importlib.import_module(module), function)), target


def test_no_module_of_the_product_imports_the_sdk_when_it_is_imported():
    """``engine/sdk.py`` loads ovirtsdk4 and pycurl on first use (0.1 s that a command
    never talking to the engine does not pay; tests/test_operating.py runs such commands);
    an import of them at module level anywhere in the product would load them for every
    command again."""
    heavy = {"ovirtsdk4", "pycurl"}
    found = []
    for name, path in modules().items():
        if name.startswith("ovirt_backup_plugin.testing"):
            continue                               # the test kit talks to the SDK itself
        found += [f"{name} -> {t}" for t in module_imports(name, path)
                  if t.split(".")[0] in heavy]
    assert found == []
    stand_ins = (PACKAGE / "engine" / "sdk.py").read_text()
    assert 'OnFirstUse("ovirtsdk4")' in stand_ins and 'OnFirstUse("pycurl")' in stand_ins


def _tool(name):
    path = Path(sys.executable).parent / name
    return str(path) if path.exists() else shutil.which(name)


@pytest.mark.parametrize("command", [
    ["ruff", "check", "ovirt_backup_plugin", "hooks", "tests", "examples", "benchmarks", "scripts"],
    ["mypy"],
])
def test_lint_is_clean(command):
    tool = _tool(command[0])
    if tool is None:
        pytest.fail(f"{command[0]} is not installed (pip install -e '.[test]')")
    proc = subprocess.run([tool, *command[1:]], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
