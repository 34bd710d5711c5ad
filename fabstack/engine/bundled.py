"""Where fabstack's own roles and demo apps live: inside the installed package (``pip install``), or beside the
package in this repo's checkout."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent.parent
# An installed fabstack carries roles/ and apps/ inside its package; a checkout has them at the repo's top.
ENGINE_ROOT = _PACKAGE if (_PACKAGE / "roles").is_dir() else _PACKAGE.parent


def repo_or_bundled(root: Path, relative: str) -> Path:
    """``relative`` in the team's deployment repo, or fabstack's own copy when the repo has none (the demo apps a
    role releases by default)."""
    own = root / relative
    bundled = ENGINE_ROOT / relative
    return own if own.exists() or not bundled.exists() else bundled
