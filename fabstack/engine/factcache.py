"""Facts remembered from the last run of an env, so a steady-state deploy plans before it asks and needs one round
trip per host. The cache is a guess, never trusted: every run gets the real facts in the same round trip and plans
again when any differ.

Kept in ``.fabstack/cache/ENV.facts.json`` (ignored by git): facts are no secret, but they are this machine's view.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

_PLAIN_ENV = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


def facts_cache_path(root: Path, env: str) -> Path | None:
    """Where an env's remembered facts are kept; None for an env whose name is not a plain name."""
    return root / ".fabstack" / "cache" / f"{env}.facts.json" if _PLAIN_ENV.match(env) else None


def load_facts(root: Path, env: str) -> dict[str, dict[str, Any]]:
    """The facts remembered per host (empty when there are none or the file is unreadable)."""
    path = facts_cache_path(root, env)
    try:
        data = json.loads(path.read_text()) if path else {}
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, dict)} if isinstance(data, dict) else {}


def save_facts(root: Path, env: str, facts: dict[str, dict[str, Any]]) -> None:
    """Remember these hosts' facts (others already remembered are kept), written atomically."""
    path = facts_cache_path(root, env)
    known = load_facts(root, env)
    merged = known | facts
    if path is None or merged == known:
        return
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(merged, sort_keys=True))
    os.replace(tmp, path)
