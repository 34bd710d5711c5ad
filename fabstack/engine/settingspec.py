"""Role settings declared, not hand-checked: what a setting may hold beyond its default's type (choices, bounds,
a pattern, list items, secret or not), and its description, read from the comment above it in the role's
defaults (docs/roles.md). The engine holds every value to its role's ``SETTINGS`` before the role's own ``check``,
which is left with what spans settings."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_KEY_LINE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*):")


@dataclass(frozen=True)
class Setting:
    """What one setting may hold. Its type is its default's; this narrows the values of that type.

    ``choices``: the only values allowed. ``least``/``most``: inclusive bounds of a number; ``above``: an
    exclusive lower bound (a fraction that must be more than 0). ``pattern``: a regular expression a string must
    match whole, described to the user as ``shape``. ``item``: the spec each element of a list must meet;
    ``nonempty``: the list or string may not be empty. ``secret``: the value is never printed (beyond the names
    that already mark a secret: ``*password*``, ``*token*``...)."""

    choices: tuple[Any, ...] = ()
    least: float | None = None
    most: float | None = None
    above: float | None = None
    pattern: str = ""
    shape: str = ""
    item: Setting | None = None
    nonempty: bool = False
    secret: bool = False

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not allowed (one phrase to follow the key), or None."""
        if self.nonempty and not value:
            return "must not be empty"
        if self.choices and value not in self.choices:
            return f"must be one of {', '.join(str(c) for c in self.choices)}, got {value!r}"
        if isinstance(value, int | float) and not isinstance(value, bool):
            return self._bounds_problem(value)
        if self.pattern and not (isinstance(value, str) and re.fullmatch(self.pattern, value)):
            return f"must be {self.shape or 'of the form ' + self.pattern}, got {value!r}"
        if isinstance(value, list) and self.item is not None:
            for element in value:
                wrong = self.item.problem(element)
                if wrong:
                    return f"each item {wrong}"
        return None

    def _bounds_problem(self, value: float) -> str | None:
        low, high = self.least, self.most
        if self.above is not None and not value > self.above:
            upper = f" and at most {_number(high)}" if high is not None else ""
            return f"must be above {_number(self.above)}{upper}, got {value}"
        if low is not None and high is not None and not low <= value <= high:
            return f"must be from {_number(low)} to at most {_number(high)}, got {value}"
        if low is not None and value < low:
            return f"must be at least {_number(low)}, got {value}"
        if high is not None and value > high:
            return f"must be at most {_number(high)}, got {value}"
        return None


def _number(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else str(bound)


def positive(most: float = 1_000_000_000) -> Setting:
    """A whole count or size of at least 1 (and a sane ceiling: a value far past any host's is a typo)."""
    return Setting(least=1, most=most)


# A TCP port number.
TCP_PORT = Setting(least=1, most=65535)
# A plain lowercase SQL identifier (a role, a database, a slot): written into SQL unquoted.
SQL_IDENTIFIER = r"[a-z_][a-z0-9_]*"
IDENTIFIER = Setting(pattern=SQL_IDENTIFIER, shape="a lowercase SQL identifier")
# A Unix user name.
UNIX_USER = Setting(pattern=r"[a-z_][a-z0-9_-]{0,31}", shape="a Unix user name")
# A duration as Prometheus and systemd write it (30s, 5m, 4h, 15d).
DURATION = Setting(pattern=r"[0-9]+(ms|s|m|h|d|w|y)", shape="a duration such as 30s, 5m, 4h or 15d")


def problems(specs: dict[str, Setting], values: dict[str, Any]) -> list[tuple[str, str]]:
    """(key, why) for every value that its spec refuses, in the spec's order; keys absent from ``values`` and
    values of the wrong type (reported before this, by the type check) are passed over."""
    found = []
    for key, spec in specs.items():
        if key in values:
            try:
                wrong = spec.problem(values[key])
            except TypeError:  # a wrong type, refused by the type check that runs first
                wrong = None
            if wrong:
                found.append((key, wrong))
    return found


def descriptions(defaults_file: Path) -> dict[str, str]:
    """Each top-level setting of a defaults file and the comment lines right above it (its description); a
    setting with no comment of its own shares the comment of the group it is written in."""
    if not defaults_file.is_file():
        return {}
    found: dict[str, str] = {}
    comment: list[str] = []
    last = ""
    for line in defaults_file.read_text().splitlines():
        stripped = line.strip()
        if line.startswith("#"):
            comment.append(stripped.lstrip("#").strip())
            continue
        if stripped.startswith("#"):  # a comment inside a value describes that part of it
            continue
        match = _KEY_LINE.match(line)
        if match:
            text = " ".join(part for part in comment if part) or last
            found[match.group(1)] = text
            last, comment = text, []
        elif not stripped:
            comment, last = [], ""
    return found
