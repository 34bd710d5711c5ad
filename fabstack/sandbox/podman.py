"""Thin wrapper over the podman command line, with failures turned into one-line errors."""

from __future__ import annotations

import shutil
import subprocess

from fabstack.engine.errors import FabstackError


def podman(*args: str, check: bool = True, input_bytes: bytes | None = None, timeout: float = 900) -> str:
    """Run ``podman ARGS`` and return its standard output; a failure raises FabstackError with podman's words."""
    if shutil.which("podman") is None:
        raise FabstackError("podman is not installed (run scripts/setup.sh)", key="sandbox")
    proc = subprocess.run(
        ["podman", *args], input=input_bytes, capture_output=True, timeout=timeout, check=False
    )
    if check and proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        last = err[-1] if err else f"exit status {proc.returncode}"
        raise FabstackError(f"podman {args[0]} failed: {last}", key="sandbox")
    return proc.stdout.decode(errors="replace")


def exists(kind: str, name: str) -> bool:
    """Whether a podman object (``image``, ``network`` or ``container``) of that name exists."""
    proc = subprocess.run(["podman", kind, "exists", name], capture_output=True, check=False)
    return proc.returncode == 0
