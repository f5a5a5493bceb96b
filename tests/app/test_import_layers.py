"""The layers hold in the source itself: every import statement, read with `ast` (TYPE_CHECKING blocks and
imports inside functions included), makes a graph in which app modules form no cycle, `reviewers/` never
imports `app`, and the offline `training/` and `eval/` never import `app`.

And each app module imports alone: in one fresh interpreter, every `app` module is imported after
dropping all `app` modules loaded before it (so no import order hides a cycle at import time).
"""

from __future__ import annotations

import ast
import functools
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

PACKAGES = ("app", "reviewers", "training", "eval", "loop")
# Other projects' code: the repository snapshots of eval scenarios, where ruff's extend-exclude says they are.
SNAPSHOTS = [f"{folder}/**/*.py" for folder in
             tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["ruff"]["extend-exclude"]]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def snapshot_files() -> set[Path]:
    return {path for pattern in SNAPSHOTS for path in REPO_ROOT.glob(pattern)}


def source_modules() -> dict[str, Path]:
    snapshots = snapshot_files()
    return {
        module_name(path): path
        for package in PACKAGES
        for path in sorted((REPO_ROOT / package).rglob("*.py"))
        if "__pycache__" not in path.parts and path not in snapshots
    }


def imported_modules(name: str, path: Path, known: set[str]) -> set[str]:
    """Every calora module `name` names in an import statement, wherever the statement stands."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from app.console import records` imports the module app.console.records
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t.split(".")[0] in PACKAGES)
    return found


@functools.cache
def import_graph() -> dict[str, set[str]]:
    modules = source_modules()
    return {name: imported_modules(name, path, set(modules)) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a path that ends where it starts, or None."""
    state: dict[str, str] = {}  # "open" while on the current path, "done" after
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return [*path[path.index(target):], target]
            if target not in state and (cycle := visit(target)) is not None:
                return cycle
        path.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle_and_none_where_there_is_none() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_type_checking_imports_count(tmp_path: Path) -> None:
    source = tmp_path / "x.py"
    source.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from app.store import Store\n")
    assert imported_modules("app.x", source, {"app.store"}) == {"app.store"}


def test_app_modules_import_each_other_without_a_cycle() -> None:
    graph = import_graph()
    app_only = {name: {t for t in targets if t.split(".")[0] == "app"} for name, targets in graph.items()
                if name.split(".")[0] == "app"}
    assert find_cycle(app_only) is None, " → ".join(find_cycle(app_only) or [])


@pytest.mark.parametrize("package", ["reviewers", "training", "eval"])
def test_the_core_and_the_offline_tools_never_import_the_app(package: str) -> None:
    offending = {
        name: sorted(t for t in targets if t.split(".")[0] == "app")
        for name, targets in import_graph().items()
        if name.split(".")[0] == package
    }
    assert {name: targets for name, targets in offending.items() if targets} == {}


def test_each_app_module_imports_alone() -> None:
    app_modules = sorted(name for name in source_modules() if name.split(".")[0] == "app")
    script = (
        "import importlib, json, sys\n"
        "failed = {}\n"
        f"for name in {app_modules!r}:\n"
        "    for loaded in [m for m in sys.modules if m == 'app' or m.startswith('app.')]:\n"
        "        del sys.modules[loaded]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception as exc:\n"
        "        failed[name] = f'{type(exc).__name__}: {exc}'\n"
        "print(json.dumps(failed))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.splitlines()[-1]) == {}


def test_the_snapshot_exclusion_names_real_snapshots_of_every_scenario_set_that_has_them() -> None:
    excluded = snapshot_files()
    for folder in ("scenarios", "scenarios-blind4", "scenarios-blind5"):
        assert any(REPO_ROOT / "eval" / folder in p.parents for p in excluded), folder
