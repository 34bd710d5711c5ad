"""Rendering role templates: Jinja2 with StrictUndefined, errors naming template, line, variable and host."""

from __future__ import annotations

import traceback
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from fabstack.engine.errors import FabstackError

MANAGED_MARK = "managed by fabstack"


def environment(search_paths: list[Path]) -> jinja2.Environment:
    """A Jinja2 environment over the given folders that refuses undefined variables.

    One environment per set of folders for the whole process, so each template is compiled once per run, not once
    per host and role (Jinja2 checks the file's mtime before reusing a compiled template).
    """
    return _environment(tuple(str(p) for p in search_paths))


@lru_cache(maxsize=256)
def _environment(search_paths: tuple[str, ...]) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(list(search_paths)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


def render(env: jinja2.Environment, name: str, context: dict[str, Any], host: str) -> str:
    """Render template ``name`` with ``context``; an undefined variable or syntax error is one line."""
    context = dict(context, fabstack_managed=f"{MANAGED_MARK} (template {name}); local edits are overwritten")
    try:
        template = env.get_template(name)
        return template.render(context)
    except jinja2.TemplateNotFound as exc:
        raise FabstackError(f"template not found: {exc.name}", host=host) from exc
    except jinja2.TemplateSyntaxError as exc:
        raise FabstackError(f"template syntax: {exc.message}", where=f"{exc.filename}:{exc.lineno}", host=host) from exc
    except jinja2.UndefinedError as exc:
        where = _template_location(exc, name)
        variable = exc.message.split("'")[1] if exc.message and exc.message.count("'") >= 2 else ""
        raise FabstackError(f"undefined variable: {exc.message}", where=where, key=variable, host=host) from exc


def _template_location(exc: BaseException, name: str) -> str:
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename.endswith((".j2", ".jinja", ".tmpl")) or frame.filename.endswith(name):
            return f"{frame.filename}:{frame.lineno}"
    return name
