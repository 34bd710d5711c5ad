"""Ansible-style templated variables: ``"{{ expr }}"`` in inventory, group_vars, host_vars or ``--set`` values.

Values are rendered in a sandboxed Jinja2 environment on this machine, never on a host, against the host's own
variables plus ``hostvars`` and ``groups``. A value that is one whole expression keeps the expression's type
(``"{{ 2 * cores }}"`` is a number), as Ansible does. Values tagged ``!unsafe`` in YAML, and secrets, are never
rendered.
"""

from __future__ import annotations

import contextlib
import functools
import re
import shlex
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from fabstack.engine.errors import FabstackError, shorten

# Enough for chains of variables referring to variables; a longer chain is treated as a loop.
MAX_PASSES = 10

# Bounds on one rendering: a templated value is data from files or the command line, so it must not run for
# ever or eat the memory (characters of a string, items of a list, the size of an argument).
MAX_RENDER_SECONDS = 2.0
MAX_RENDER_SIZE = 1_000_000


class RenderLimit(SecurityError):
    """A rendering went past its time or size bound."""


def _too_big(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return abs(value) > MAX_RENDER_SIZE
    return isinstance(value, str | list | tuple | dict) and len(value) > MAX_RENDER_SIZE


def _checked_size(value: Any) -> Any:
    if isinstance(value, str | list | tuple | dict) and len(value) > MAX_RENDER_SIZE:
        raise RenderLimit(f"the result is larger than {MAX_RENDER_SIZE} characters or items")
    return value


def _bounded_filter(function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)  # keeps Jinja's pass_context/pass_environment marks
    def bounded(*args: Any, **kwargs: Any) -> Any:
        if any(_too_big(a) for a in (*args[1:], *kwargs.values()) if isinstance(a, int)):
            raise RenderLimit(f"an argument larger than {MAX_RENDER_SIZE}")
        return _checked_size(function(*args, **kwargs))
    return bounded


def _bounded_range(*args: int) -> range:
    span = range(*args)
    if len(span) > MAX_RENDER_SIZE:
        raise RenderLimit(f"a range of more than {MAX_RENDER_SIZE} items")
    return span


class _BoundedCodeGenerator(CodeGenerator):
    """Compiles ``a ~ b`` into a size-checked join (Jinja's own join is not one the sandbox can intercept)."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:  # noqa: D102, N802
        self.write("environment.bounded_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox with sizes bounded: ``*``, ``**`` and ``+`` cannot build huge values, calls and
    filters refuse huge arguments and results, and ``range`` is bounded."""

    intercepted_binops = frozenset(["*", "**", "+"])
    code_generator_class = _BoundedCodeGenerator

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.filters = {name: _bounded_filter(f) for name, f in self.filters.items()}
        self.globals["range"] = _bounded_range
        # a namespace is the one way to carry a growing value from one loop iteration to the next
        self.globals.pop("namespace", None)

    def bounded_concat(self, parts: tuple[Any, ...]) -> str:
        """``a ~ b ~ ...``, refused when the result would be too large."""
        texts = [str(p) for p in parts]
        if sum(len(t) for t in texts) > MAX_RENDER_SIZE:
            raise RenderLimit(f"a value of more than {MAX_RENDER_SIZE} characters")
        return "".join(texts)

    def render_bounded(self, source: str, context: Mapping[str, Any]) -> str:
        """Render a template, stopping as soon as its output passes the size bound."""
        chunks, size = [], 0
        for chunk in self.from_string(source).generate(**context):
            size += len(chunk)
            if size > MAX_RENDER_SIZE:
                raise RenderLimit(f"the result is larger than {MAX_RENDER_SIZE} characters")
            chunks.append(chunk)
        return "".join(chunks)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:  # noqa: D102
        if operator == "**" and isinstance(right, int | float) and (abs(right) > 64 or _too_big(left)):
            raise RenderLimit("a power too large to compute")
        if operator == "*":
            for seq, count in ((left, right), (right, left)):
                sized = isinstance(seq, str | list | tuple) and isinstance(count, int)
                if sized and len(seq) * count > MAX_RENDER_SIZE:
                    raise RenderLimit(f"a repetition of more than {MAX_RENDER_SIZE} characters or items")
        if operator == "+" and isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple) \
                and len(left) + len(right) > MAX_RENDER_SIZE:
            raise RenderLimit(f"a value of more than {MAX_RENDER_SIZE} characters or items")
        return _checked_size(super().call_binop(context, operator, left, right))

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: D102, N805
        if any(_too_big(a) for a in (*args, *kwargs.values()) if isinstance(a, int)):
            raise RenderLimit(f"an argument larger than {MAX_RENDER_SIZE}")
        return _checked_size(super().call(__context, __obj, *args, **kwargs))


_deadline = threading.local()


@contextlib.contextmanager
def time_bound(seconds: float = MAX_RENDER_SECONDS) -> Iterator[None]:
    """Stop a rendering (this thread's; nested ones share the outer bound) that runs past ``seconds``."""
    if getattr(_deadline, "at", None) is not None:
        yield
        return
    _deadline.at = time.monotonic() + seconds
    previous = sys.gettrace()

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        at = getattr(_deadline, "at", None)
        if at is None:  # a frame (a generator) that outlived the rendering: stop tracing it
            return None
        if time.monotonic() > at:
            raise RenderLimit(f"rendering took longer than {seconds:g}s")
        return tracer

    sys.settrace(tracer)
    try:
        yield
    finally:
        sys.settrace(previous)
        _deadline.at = None


_ENV = BoundedSandbox(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
# Shell commands templated with a host's values: every {{ }} comes out shell-quoted, so a value is one word.
_SHELL_ENV = BoundedSandbox(undefined=jinja2.StrictUndefined, finalize=lambda v: shlex.quote(str(v)))
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
    with time_bound():
        if whole:
            expression = _ENV.compile_expression(whole.group("expr"), undefined_to_none=False)
            return _checked_size(_defined(expression(**context)))
        return _ENV.render_bounded(value, context)


def render_shell(command: str, context: Mapping[str, Any], *, where: str, key: str, host: str) -> str:
    """A shell command with the host's values put in, each quoted as one word; an error names file, key, host."""
    try:
        with time_bound():
            return _SHELL_ENV.render_bounded(command, context)
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
            except (ArithmeticError, TypeError, ValueError, LookupError, AttributeError, MemoryError,
                    RecursionError) as exc:
                raise FabstackError(f"cannot template the value: {type(exc).__name__}: {shorten(str(exc))}",
                                    where=origins.get(key, ""), key=key, host=host) from exc
            except FabstackError as exc:
                if exc.key:
                    raise
                raise _naming(exc, key, origins, host) from exc
        unchanged = True
        for key in keys:
            try:  # comparing may read other hosts' values (a value that is ``hostvars`` itself)
                unchanged = _same(rendered[key], current[key]) and unchanged
            except FabstackError as exc:
                if exc.key:
                    raise
                raise _naming(exc, key, origins, host) from exc
        if unchanged:
            return current
        current.update(rendered)
    looping = sorted(key for key in keys if is_templated(current[key]))
    raise FabstackError("templated values refer to each other in a loop", where=origins.get(looping[0], "")
                        if looping else "", key=", ".join(looping) or keys[0], host=host)


def _naming(exc: FabstackError, key: str, origins: dict[str, str], host: str) -> FabstackError:
    """Another host's values could not be resolved for this one (they refer back to it): the same error, naming
    the key that asked for them."""
    return FabstackError(exc.message, where=origins.get(key, ""), key=key, host=host)


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _describe(exc: jinja2.TemplateError) -> str:
    message = getattr(exc, "message", None) or str(exc)
    return message.splitlines()[0] if message else type(exc).__name__
