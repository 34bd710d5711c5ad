"""Ansible-style templated variables: ``"{{ expr }}"`` in inventory, group_vars, host_vars or ``--set`` values.

Values are rendered in a sandboxed Jinja2 environment on this machine, never on a host, against the host's own
variables plus ``hostvars`` and ``groups``. A value that is one whole expression keeps the expression's type
(``"{{ 2 * cores }}"`` is a number), as Ansible does. Values tagged ``!unsafe`` in YAML, and secrets, are never
rendered.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from fabstack.errors import FabstackError

# Enough for chains of variables referring to variables; a longer chain is treated as a loop.
MAX_PASSES = 10

_ENV = ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
# Shell commands templated with a host's values: every {{ }} comes out shell-quoted, so a value is one word.
_SHELL_ENV = ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined, finalize=lambda v: shlex.quote(str(v)))
_WHOLE_EXPRESSION = re.compile(r"^\{\{(?P<expr>(?:(?!\{\{|\}\}).)*)\}\}$", re.S)


class Unsafe(str):
    """A string that is never templated (Ansible's ``!unsafe`` YAML tag)."""

    __slots__ = ()


def is_templated(value: Any) -> bool:
    """Whether a value (or anything inside a list or mapping) holds Jinja2 syntax to render."""
    if isinstance(value, dict):
        return any(is_templated(v) for v in value.values())
    if isinstance(value, list):
        return any(is_templated(v) for v in value)
    return isinstance(value, str) and not isinstance(value, Unsafe) and ("{{" in value or "{%" in value)


def render_value(value: Any, context: Mapping[str, Any]) -> Any:
    """Render every templated string inside ``value``; a string that is one ``{{ expr }}`` keeps its type."""
    if isinstance(value, dict):
        return {key: render_value(item, context) for key, item in value.items()}
    if isinstance(value, list):
        return [render_value(item, context) for item in value]
    if not is_templated(value):
        return value
    whole = _WHOLE_EXPRESSION.match(value.strip())
    if whole:
        return _defined(_ENV.compile_expression(whole.group("expr"), undefined_to_none=False)(**context))
    return _ENV.from_string(value).render(**context)


def render_shell(command: str, context: Mapping[str, Any], *, where: str, key: str, host: str) -> str:
    """A shell command with the host's values put in, each quoted as one word; an error names file, key, host."""
    try:
        return _SHELL_ENV.from_string(command).render(**context)
    except jinja2.TemplateError as exc:
        raise FabstackError(f"cannot template the command: {_describe(exc)}", where=where, key=key,
                            host=host) from exc


def _defined(value: Any) -> Any:
    """``value``, after making sure no undefined name hides in it (StrictUndefined raises when printed)."""
    if isinstance(value, jinja2.Undefined):
        str(value)
    elif isinstance(value, dict):
        for item in value.values():
            _defined(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _defined(item)
    return value


class HostvarsView(Mapping[str, Any]):
    """Other hosts' templated variables, resolved only when a template reads them."""

    def __init__(self, hosts: list[str], resolve: Callable[[str], dict[str, Any]]) -> None:
        self._hosts = hosts
        self._resolve = resolve

    def __getitem__(self, host: str) -> dict[str, Any]:
        if host not in self._hosts:
            raise KeyError(host)
        return self._resolve(host)

    def __iter__(self) -> Iterator[str]:
        return iter(self._hosts)

    def __len__(self) -> int:
        return len(self._hosts)


def template_vars(values: dict[str, Any], origins: dict[str, str], host: str, *, hosts: list[str],
                  hostvars_of: Callable[[str], dict[str, Any]], groups: Callable[[], dict[str, list[str]]],
                  never: set[str]) -> dict[str, Any]:
    """The host's variables with every templated value rendered (``never``: keys left as they are).

    Templates see the host's variables, ``groups`` (read only when something is templated) and ``hostvars``
    (other hosts through ``hostvars_of``; the host itself as rendered so far). Each pass renders the original
    templates against the previous pass's values, so a variable may refer to another templated one; values that
    still change after ``MAX_PASSES`` refer to each other in a loop.
    """
    keys = [key for key, value in values.items() if key not in never and is_templated(value)]
    if not keys:
        return values
    current = dict(values)
    members = groups()
    view = HostvarsView(hosts, lambda name: current if name == host else hostvars_of(name))
    for _ in range(MAX_PASSES):
        rendered = {}
        for key in keys:
            try:
                rendered[key] = render_value(values[key], {"groups": members, "hostvars": view, **current})
            except jinja2.TemplateError as exc:
                raise FabstackError(f"cannot template the value: {_describe(exc)}", where=origins.get(key, ""),
                                    key=key, host=host) from exc
            except (ArithmeticError, TypeError, ValueError, LookupError, AttributeError) as exc:
                raise FabstackError(f"cannot template the value: {type(exc).__name__}: {exc}",
                                    where=origins.get(key, ""), key=key, host=host) from exc
        if all(_same(rendered[key], current[key]) for key in keys):
            return current
        current.update(rendered)
    looping = sorted(key for key in keys if is_templated(current[key]))
    raise FabstackError("templated values refer to each other in a loop", where=origins.get(looping[0], "")
                        if looping else "", key=", ".join(looping) or keys[0], host=host)


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _describe(exc: jinja2.TemplateError) -> str:
    message = getattr(exc, "message", None) or str(exc)
    return message.splitlines()[0] if message else type(exc).__name__
