"""Reading YAML files with errors that name the file and line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from fabstack import vault
from fabstack.errors import FabstackError
from fabstack.varstemplate import Unsafe


class VaultLoader(yaml.SafeLoader):
    """PyYAML's safe loader plus Ansible's ``!vault`` tag for inline encrypted values and ``!unsafe`` for strings
    that are never templated."""


VaultLoader.add_constructor("!unsafe", lambda loader, node: Unsafe(loader.construct_scalar(node)))


def _vault_constructor(path: Path) -> Any:
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> str:
        where = f"{path}:{node.start_mark.line + 1}"
        value = vault.decrypt(loader.construct_scalar(node), vault.password(where), where)
        vault.reveal(value)
        return value

    return construct


def load_yaml(path: Path) -> Any:
    """Parse one YAML file (decrypting ansible-vault files and ``!vault`` values); a syntax error becomes a
    one-line FabstackError naming file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FabstackError(f"cannot read: {exc.strerror}", where=str(path)) from exc
    encrypted = vault.is_vaulted(text)
    if encrypted:
        text = vault.decrypt(text, vault.password(str(path)), str(path))
    loader = type("FileLoader", (VaultLoader,), {})
    loader.add_constructor("!vault", _vault_constructor(path))
    try:
        data = yaml.load(text, Loader=loader)  # noqa: S506 - a SafeLoader subclass
        if encrypted:
            vault.reveal(data)
        return data
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark else ""
        problem = exc.problem or exc.context or "malformed YAML"
        raise FabstackError(f"malformed YAML: {problem}", where=f"{path}{line}") from exc
    except yaml.YAMLError as exc:
        raise FabstackError(f"malformed YAML: {exc}", where=str(path)) from exc


def load_mapping(path: Path) -> dict[str, Any]:
    """Parse a YAML file that must hold a mapping (an empty file is an empty mapping)."""
    data = load_yaml(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise FabstackError(f"expected a mapping of variables, found {type(data).__name__}", where=str(path))
    return data


def load_vars_location(base: Path, name: str) -> tuple[dict[str, Any], list[str]]:
    """Variables of ``base/NAME.yml`` (or .yaml, or bare NAME) or every YAML file in folder ``base/NAME/``.

    Returns the merged variables and the files they came from, as Ansible's host_group_vars plugin reads them
    (files of a folder in sorted order, top-level keys replaced).
    """
    merged: dict[str, Any] = {}
    sources: list[str] = []
    candidates = [base / f"{name}.yml", base / f"{name}.yaml", base / name]
    for candidate in candidates:
        if candidate.is_file():
            merged.update(load_mapping(candidate))
            sources.append(str(candidate))
        elif candidate.is_dir():
            for file in sorted(candidate.rglob("*")):
                if file.is_file() and file.suffix in (".yml", ".yaml", ".json", ""):
                    merged.update(load_mapping(file))
                    sources.append(str(file))
    return merged, sources
