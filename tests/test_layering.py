"""fabstack's packages by layer (docs/architecture.md): each imports only itself and the layers below it, roles use
the engine and the stack only, and no module imports, even lazily inside a function, one that imports it back."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGE = REPO / "fabstack"

# Each package and what it may import besides itself, lowest layer first (docs/architecture.md draws the same map).
MAY_IMPORT: dict[str, set[str]] = {
    "engine": set(),
    "stack": {"engine"},
    "tiers": {"engine", "stack"},
    "day2": {"engine", "stack", "tiers"},
    "sandbox": {"engine", "stack", "tiers"},
    "cli": {"engine", "stack", "tiers", "day2", "sandbox"},
}
# A role's role.py is loaded by the engine and may use what the engine and the stack know, never a tier's or a day-2
# operation's code (those act on the roles' results).
ROLES_MAY_IMPORT = {"engine", "stack"}


def imported(path: Path) -> set[str]:
    """The dotted fabstack modules a file imports, wherever the import stands (``from fabstack.x import y`` counts
    ``fabstack.x.y`` when that is a module of its own, else ``fabstack.x``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "fabstack":
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if module_file(sub) else node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "fabstack"}
    return found


def module_file(dotted: str) -> Path | None:
    """The file of a fabstack module (a package's ``__init__.py``), or None."""
    base = REPO.joinpath(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def module_name(path: Path) -> str:
    """``fabstack.engine.runner`` for fabstack/engine/runner.py."""
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(dotted: str) -> str:
    """The package a dotted fabstack module belongs to (``fabstack`` itself for the top)."""
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 else "fabstack"


def wrong_way(importer: str, allowed: set[str], imports: set[str]) -> list[str]:
    """The imports of a module that run against the layers."""
    return sorted(m for m in imports if layer_of(m) not in allowed | {importer, "fabstack"})


def direction_problems(package: Path = PACKAGE, roles: Path = REPO / "roles") -> list[str]:
    """Every import that runs against the allowed direction, one line each."""
    problems = []
    for path in sorted(package.rglob("*.py")):
        name = module_name(path)
        layer = layer_of(name)
        if layer == "fabstack":
            continue
        assert layer in MAY_IMPORT, f"{path}: package {layer!r} is not in the layer map"
        problems += [f"{name} imports {m}" for m in wrong_way(layer, MAY_IMPORT[layer], imported(path))]
    for path in sorted(roles.glob("*/role.py")):
        problems += [f"roles/{path.parent.name} imports {m}" for m in wrong_way("", ROLES_MAY_IMPORT, imported(path))]
    return problems


def test_every_import_follows_the_layers() -> None:
    assert direction_problems() == []


def test_the_direction_test_sees_a_wrong_way_import(tmp_path: Path) -> None:
    engine = PACKAGE / "engine" / "inventory.py"
    assert wrong_way("engine", MAY_IMPORT["engine"], imported(engine)) == []
    planted = tmp_path / "inventory.py"
    planted.write_text(engine.read_text() + "\nfrom fabstack.day2 import release  # noqa\n")
    assert wrong_way("engine", MAY_IMPORT["engine"], imported(planted)) == ["fabstack.day2.release"]
    role = tmp_path / "role.py"
    role.write_text("from fabstack.tiers import mariadb\n")
    assert wrong_way("", ROLES_MAY_IMPORT, imported(role)) == ["fabstack.tiers.mariadb"]


def test_no_import_circle() -> None:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {name: {m for m in imported(path) if m in modules} - {name} for name, path in modules.items()}
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
    assert {"fabstack.engine.inventory", "fabstack.engine.runner", "fabstack.tiers.topology"} <= set(modules)


@pytest.mark.parametrize("layer", sorted(MAY_IMPORT))
def test_each_layer_is_a_package_with_its_paragraph(layer: str) -> None:
    assert (PACKAGE / layer / "__init__.py").is_file()
    assert f"`fabstack/{layer}/`" in (REPO / "docs" / "architecture.md").read_text()


def test_every_task_goes_through_the_one_facade() -> None:
    # the tasks parse options and print; what they do is a function of cli/commands.py (docs/architecture.md)
    assert imported(PACKAGE / "cli" / "tasks.py") <= {"fabstack.cli.commands", "fabstack.engine.errors"}
