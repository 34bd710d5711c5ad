"""Reading YAML files with errors that name the file and line."""

from __future__ import annotations

import copy
import hashlib
import os
import stat
from pathlib import Path
from typing import Any

import yaml

from fabstack.engine import vault
from fabstack.engine.errors import FabstackError, shorten
from fabstack.engine.varstemplate import Unsafe


class VaultLoader(yaml.SafeLoader):
    """PyYAML's safe loader plus Ansible's ``!vault`` tag for inline encrypted values and ``!unsafe`` for strings
    that are never templated."""


VaultLoader.add_constructor("!unsafe", lambda loader, node: Unsafe(loader.construct_scalar(node)))


def _vault_constructor(path: Path) -> Any:
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> str:
        where = f"{path}:{node.start_mark.line + 1}"
        vaulted = loader.construct_scalar(node)
        value = vault.decrypt(vaulted, vault.password(where), where)
        vault.reveal(value)
        vault.remember_inline(value, vaulted)
        return value

    return construct


# Bounds on what one YAML file may hold: real settings are far below them, a hostile file is refused before it
# costs time or memory (aliases that expand without bound, nesting that would crash the parser).
MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 64
MAX_VALUES = 200_000


def _check_nodes(root: yaml.Node, where: str) -> None:
    """Refuse duplicate keys, nesting deeper than MAX_DEPTH and documents whose aliases expand past MAX_VALUES."""
    sizes: dict[int, int] = {}

    def size(node: yaml.Node, depth: int) -> int:
        if depth > MAX_DEPTH:
            raise FabstackError(f"nested more than {MAX_DEPTH} levels deep",
                                where=f"{where}:{node.start_mark.line + 1}")
        if id(node) in sizes:  # an alias: its values count again wherever it is used
            return sizes[id(node)]
        total = 1
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value != "<<":
                    if key.value in seen:
                        raise FabstackError(f"duplicate key (first on line {seen[key.value]})",
                                            where=f"{where}:{key.start_mark.line + 1}", key=shorten(key.value))
                    seen[key.value] = key.start_mark.line + 1
                total += size(key, depth + 1) + size(value, depth + 1)
        elif isinstance(node, yaml.SequenceNode):
            total += sum(size(item, depth + 1) for item in node.value)
        sizes[id(node)] = total
        if total > MAX_VALUES:
            raise FabstackError(f"expands to more than {MAX_VALUES} values (aliases that multiply?)", where=where)
        return total

    size(root, 0)


# Parsed files by (path, content): an env's group_vars are read once per host, and parsing is most of a command's
# start-up time; callers get their own copy, so changing what they got never changes what the next one gets.
_PARSED: dict[tuple[str, bytes], Any] = {}


def load_yaml(path: Path) -> Any:
    """Parse one YAML file (decrypting ansible-vault files and ``!vault`` values); a syntax error, text that is
    not UTF-8, a duplicate key or a document past the bounds above becomes a one-line FabstackError naming file
    and line."""
    where = str(path)
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):  # a FIFO or a device would block the read or never end
            raise FabstackError("not a regular file", where=where)
        if info.st_size > MAX_FILE_BYTES:
            raise FabstackError(f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MB: not a settings file", where=where)
        raw = path.read_bytes()
    except OSError as exc:
        raise FabstackError(f"cannot read: {exc.strerror}", where=where) from exc
    key = (where, hashlib.sha256(raw).digest())
    if key not in _PARSED:
        _PARSED[key] = _parse(path, raw)
    return copy.deepcopy(_PARSED[key])


def _parse(path: Path, raw: bytes) -> Any:
    """The document of one file's bytes (see ``load_yaml``)."""
    where = str(path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FabstackError(f"not UTF-8 text (byte {raw[exc.start]:#04x} at offset {exc.start})", where=where) from exc
    encrypted = vault.is_vaulted(text)
    if encrypted:
        text = vault.decrypt(text, vault.password(where), where)
    loader_class = type("FileLoader", (VaultLoader,), {})
    loader_class.add_constructor("!vault", _vault_constructor(path))
    loader = None
    try:
        loader = loader_class(text)
        node = loader.get_single_node()
        if node is None:
            return None
        _check_nodes(node, where)
        data = loader.construct_document(node)
        if encrypted:
            vault.reveal(data)
        return data
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark else ""
        problem = exc.problem or exc.context or "malformed YAML"
        raise FabstackError(f"malformed YAML: {problem}", where=f"{path}{line}") from exc
    except yaml.YAMLError as exc:
        raise FabstackError(f"malformed YAML: {shorten(str(exc))}", where=where) from exc
    except RecursionError as exc:
        raise FabstackError(f"nested too deep to read (more than {MAX_DEPTH} levels)", where=where) from exc
    finally:
        if loader is not None:
            loader.dispose()


def load_mapping(path: Path) -> dict[str, Any]:
    """Parse a YAML file that must hold a mapping (an empty file is an empty mapping)."""
    data = load_yaml(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise FabstackError(f"expected a mapping of variables, found {type(data).__name__}", where=str(path))
    return data


def check_variable_names(variables: dict[Any, Any], where: str, key: str) -> None:
    """Variable names are strings (YAML reads ``null:`` or ``1:`` as other types, which no role can name)."""
    odd = next((k for k in variables if not isinstance(k, str)), "")
    if odd != "":
        raise FabstackError(f"variable name {odd!r} is not a string", where=where, key=key or str(odd))


def load_vars_location(base: Path, name: str) -> tuple[dict[str, Any], list[str]]:
    """Variables of ``base/NAME.yml`` (or .yaml, or bare NAME) or every YAML file in folder ``base/NAME/``.

    Returns the merged variables and the files they came from, as Ansible's host_group_vars plugin reads them
    (files of a folder in sorted order, top-level keys replaced).
    """
    merged: dict[str, Any] = {}
    sources: list[str] = []
    candidates = [base / f"{name}.yml", base / f"{name}.yaml", base / name]
    for candidate in candidates:
        if candidate.is_dir():
            files = _folder_files(candidate)
        elif os.path.lexists(candidate):  # a file, or something that is not one (refused when read)
            files = [candidate]
        else:
            continue
        for file in files:
            data = load_mapping(file)
            check_variable_names(data, str(file), "")
            merged.update(data)
            sources.append(str(file))
    return merged, sources


def _folder_files(folder: Path) -> list[Path]:
    """The vars files of a folder and its subfolders, sorted; links to folders are not followed (no loops), and
    anything that is not a plain file (a dangling link, a FIFO) is returned so that reading it is refused."""
    found = []
    for parent, dirs, names in os.walk(folder, followlinks=False):
        dirs.sort()
        for name in names + [d for d in dirs if os.path.islink(os.path.join(parent, d))]:
            path = Path(parent) / name
            if path.suffix in (".yml", ".yaml", ".json", "") and not name.startswith("."):
                found.append(path)
    return sorted(found)
