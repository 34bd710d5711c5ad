"""The role contract: the names a role's ``role.py`` may define for the engine, what each must be, and the check
``load_role`` runs on every role module (docs/roles.md explains it with a skeleton role)."""

from __future__ import annotations

import difflib
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from fabstack.engine import settingspec
from fabstack.engine.errors import FabstackError
from fabstack.engine.settingspec import Setting


def _strings(value: Any) -> bool:
    return isinstance(value, tuple | list) and all(isinstance(item, str) for item in value)


def _specs(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, Setting) for k, v in value.items())


def _handlers(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())


def _function_of(count: int) -> Callable[[Any], bool]:
    def valid(value: Any) -> bool:
        if not callable(value):
            return False
        try:
            return len(inspect.signature(value).parameters) == count
        except (TypeError, ValueError):
            return False
    return valid


@dataclass(frozen=True)
class Inbound:
    """A TCP port a role listens on for other hosts, and who may reach it: the firewall opens exactly these.

    ``groups`` names inventory groups whose hosts may connect; the env's admin sources always may. ``anywhere``
    opens the port to the world (a load balancer's)."""

    ports: tuple[int, ...]
    why: str
    groups: tuple[str, ...] = ()
    anywhere: bool = False


def for_monitoring(values: dict[str, Any], *port_keys: str, what: str) -> list[Inbound]:
    """An exporter's ports (the settings ``port_keys``), open to the env's monitoring hosts alone."""
    return [Inbound(tuple(values[key] for key in port_keys), f"{what}: monitoring",
                    (values["firewall_monitoring_group"],))]


@dataclass
class Commitment:
    """What a role takes on one host, for the env's budget (``inv capacity``, and refusing a plan that cannot fit).

    ``computed`` holds values the role's ``deploy`` then reads as ``ctx.computed`` (so the config and the budget
    agree); ``memory`` the (what, MB) it commits; ``db_clients`` the database connections it opens through the
    pooler; ``summary`` one line for ``inv capacity``; ``memory_key`` the setting to change when the host's
    memory is overcommitted."""

    computed: dict[str, Any] = field(default_factory=dict)
    memory: list[tuple[str, int]] = field(default_factory=list)
    db_clients: int = 0
    summary: str = ""
    memory_key: str = ""


def pooled_processes(label: str, key: str, count: int, pool: int, process_mb: int) -> Commitment:
    """The commitment of ``count`` app server processes (``key``: the setting that sizes them, e.g.
    ``uvicorn_workers``), each with a pool of ``pool`` connections on both PgBouncer entries (rw and ro)."""
    return Commitment(
        computed={key: count}, memory=[(f"{label} {key.split('_', 1)[1]}", count * process_mb)],
        db_clients=count * pool * 2, memory_key=key,
        summary=f"{label:<9} {count} {key.split('_', 1)[1]} x {pool} pool x 2 entries (rw, ro) = {count * pool * 2}")


@dataclass(frozen=True)
class Name:
    """One name of the contract: whether a role must define it, what it must be, and its value when absent
    (docs/roles.md says what each is for)."""

    required: bool
    valid: Callable[[Any], bool]
    shape: str
    empty: Any = None


CONTRACT: dict[str, Name] = {
    "deploy": Name(True, _function_of(1), "a function of one argument, the role context"),
    "check": Name(False, _function_of(1), "a function of one argument, the host's variables"),
    "inbound": Name(False, _function_of(1), "a function of the host's variables returning Inbound entries"),
    "commitment": Name(False, _function_of(2),
                       "a function of the host's variables and facts (None when unknown) returning a Commitment"),
    "HANDLERS": Name(False, _handlers, "a mapping of handler name to shell command", {}),
    "GENERATED_SECRETS": Name(False, _strings, "a tuple of variable names", ()),
    "PORTS": Name(False, _strings, "a tuple of variable names", ()),
    "SETTINGS": Name(False, _specs, "a mapping of the role's setting names to Setting specs", {}),
    "NEEDS": Name(False, _strings, "a tuple of role names", ()),
    "READS": Name(False, _strings, "a tuple of role names", ()),
}


def out_of_bounds(values: dict[str, Any], bounds: dict[str, tuple[int, int]]) -> list[tuple[str, str]]:
    """``check`` problems for numbers outside their sane range (``key: (lowest, highest)``): a size far past
    what any host can carry is a typo, refused before it reaches a config."""
    return [(key, f"must be from {low} to at most {high}, got {values[key]}")
            for key, (low, high) in bounds.items() if not low <= values[key] <= high]


SQL_IDENTIFIER = re.compile(f"^{settingspec.SQL_IDENTIFIER}$")


def not_identifiers(values: dict[str, Any], *keys: str) -> list[tuple[str, str]]:
    """``check`` problems for settings that must name a plain lowercase SQL identifier (a role, a database)."""
    return [(key, f"must be a lowercase SQL identifier, got {values[key]!r}")
            for key in keys if not SQL_IDENTIFIER.match(str(values[key]))]


def _near_miss(defined: str) -> str | None:
    """The contract name that ``defined`` looks like a misspelling of: a constant close to a contract constant,
    or any name equal to a contract name but for case (helpers with other names are the role's own business)."""
    for name in CONTRACT:
        if defined != name and defined.lower() == name.lower():
            return name
    if defined.isupper():
        near = difflib.get_close_matches(defined, [n for n in CONTRACT if n.isupper()], n=1, cutoff=0.8)
        return near[0] if near and near[0] != defined else None
    return None


def check_role_module(module: ModuleType, source: Path) -> None:
    """Refuse a role module that breaks the contract: one line naming the file and the name."""
    defined = [name for name in vars(module) if not name.startswith("_")]
    for name in defined:
        value = getattr(module, name)
        # an imported class or module (``Inbound``) is the role's tool, not a misspelt contract name
        meant = None if inspect.isclass(value) or inspect.ismodule(value) else _near_miss(name)
        if meant:
            raise FabstackError(f"{name} is not a name of the role contract: did you mean {meant}?",
                                where=str(source), key=name)
    for name, rule in CONTRACT.items():
        if not hasattr(module, name):
            if rule.required:
                near = difflib.get_close_matches(name, defined, n=1, cutoff=0.7)
                hint = f" ({near[0]} is defined: a misspelling?)" if near else ""
                raise FabstackError(f"a role must define {name}: {rule.shape}{hint}", where=str(source), key=name)
        elif not rule.valid(getattr(module, name)):
            raise FabstackError(f"{name} must be {rule.shape}", where=str(source), key=name)


def contract_value(module: ModuleType, name: str) -> Any:
    """The value a role module gives a contract name, or the contract's empty value when it gives none."""
    return getattr(module, name, CONTRACT[name].empty)
