"""Configuration of the demo FastAPI app, read from the file fabstack's fastapi_app role writes."""

from __future__ import annotations

import datetime
import os
from pathlib import Path

_HERE = Path(__file__).resolve().parent
# The commit this release was built from (fabstack writes REVISION into every artifact), and when it was unpacked.
REVISION = (_HERE / "REVISION").read_text().strip() if (_HERE / "REVISION").is_file() else "development"
RELEASED_AT = datetime.datetime.fromtimestamp(_HERE.stat().st_mtime)


def load_settings(path: str | None = None) -> dict[str, str]:
    """KEY=VALUE lines of the env file (the process environment wins)."""
    settings: dict[str, str] = {}
    env_file = Path(path or os.environ.get("FABSTACK_APP_ENV", "/etc/fabstack/fastapi-app.env"))
    for line in env_file.read_text().splitlines():
        if line.strip() and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            settings[key.strip()] = value.strip()
    settings.update({k: v for k, v in os.environ.items() if k in settings})
    return settings
