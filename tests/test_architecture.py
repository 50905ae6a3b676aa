"""The package's layers (docs/architecture.md): imports go one way, there is no cycle, and only the torch side
and the tools import torch when a module loads. Every import counts, those inside functions too."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

PACKAGE = ROOT / "archspec"
# Lowest first; a module may import its own layer and the layers below it.
LAYERS = [
    ("archspec.errors", "archspec.files"),
    ("archspec.lang",),
    ("archspec.plan",),
    ("archspec.report",),
    ("archspec.counting",),
    ("archspec.nn",),
    ("archspec.api",),
    ("archspec.tools", "archspec.space"),
    ("archspec.cli", "archspec.__main__"),
]
TORCH_AT_LOAD = ("archspec.nn", "archspec.tools")
MODULES: dict[str, Path] = {}


def _module_name(path: Path) -> str:
    """archspec/plan/ops.py -> archspec.plan.ops."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(imported module, at module level) for every import in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue  # imports for the type checker only never run
            nested = top and not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend((alias.name, top) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                submodules = [
                    f"{child.module}.{alias.name}" for alias in child.names if f"{child.module}.{alias.name}" in MODULES
                ]
                # `from package import submodule` needs the submodule (the package's __init__ loads first, but
                # that is the package, not an import the module makes of it).
                if len(submodules) < len(child.names):
                    found.append((child.module, top))
                found.extend((name, top) for name in submodules)
            visit(child, nested)

    visit(tree, True)
    return found


MODULES.update({_module_name(path): path for path in PACKAGE.rglob("*.py")})


def _layer(module: str) -> int:
    for index, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return index
    if module == "archspec":
        return len(LAYERS)
    raise AssertionError(f"{module} is in no layer of docs/architecture.md")


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        edges = set()
        for name, _ in _imports(path):
            if name in MODULES and name != module:
                edges.add(name)
        graph[module] = edges
    return graph


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_go_down_the_layers(module):
    if module == "archspec":
        return  # the package's lazy re-exports sit above everything
    for name, _ in _imports(MODULES[module]):
        if name in MODULES and name != "archspec":
            assert _layer(name) <= _layer(module), (
                f"{module} (layer {_layer(module)}) imports {name} (layer {_layer(name)})"
            )


def test_the_import_graph_has_no_cycle():
    graph = _graph()
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                raise AssertionError(
                    " -> ".join([*trail[trail.index(target) :], target]) if target in trail else f"{node} -> {target}"
                )
            if target not in state:
                visit(target, [*trail, target])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def test_only_the_torch_side_and_the_tools_import_torch_when_they_load():
    for module, path in MODULES.items():
        if module.startswith(TORCH_AT_LOAD):
            continue
        loaded = [name for name, top in _imports(path) if top and (name == "torch" or name.startswith("torch."))]
        assert not loaded, f"{module} imports {loaded[0]} when it loads"


def test_every_module_imports():
    """A run-time check beside the static one: every module loads (20 to an interpreter)."""
    probe = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    names = sorted(name for name in MODULES if name != "archspec.__main__")
    for start in range(0, len(names), 20):
        result = subprocess.run(
            [sys.executable, "-c", probe, *names[start : start + 20]], capture_output=True, text=True, cwd=ROOT
        )
        assert result.returncode == 0, result.stderr[-2000:]
