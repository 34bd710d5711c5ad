"""The engine's layers: no module of fabstack/ imports, even lazily inside a function, one that imports it back."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

PACKAGE = REPO / "fabstack"


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The fabstack modules a file imports, wherever the import stands."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "fabstack":
            parts = node.module.split(".")
            found |= {parts[1]} if len(parts) > 1 else {alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("fabstack.")}
    return found & modules


def test_no_import_circle_in_the_engine() -> None:
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    graph = {name: imports_of(PACKAGE / f"{name}.py", modules) - {name} for name in modules}
    done: set[str] = set()

    def walk(name: str, path: list[str]) -> None:
        if name in path:
            raise AssertionError("import circle: " + " -> ".join([*path[path.index(name):], name]))
        if name in done:
            return
        for dep in sorted(graph[name]):
            walk(dep, [*path, name])
        done.add(name)

    for name in sorted(modules):
        walk(name, [])
    assert {"inventory", "topology", "project", "runner"} <= modules  # the graph was really read
