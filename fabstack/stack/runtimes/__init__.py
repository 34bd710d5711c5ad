"""App runtimes: how an app of each kind is built on the controller, made ready on a host, reloaded after the switch
of ``current``, and how its workers move to the new code. One small module per runtime, registered in RUNTIMES.
"""

from __future__ import annotations

from fabstack.stack.runtimes import asgi, laravel, node
from fabstack.stack.runtimes.base import AppLike, Runtime, supervisor_restart, unit_shell_command

# Every runtime an app may name, by name.
RUNTIMES: dict[str, Runtime] = {runtime.name: runtime for runtime in (laravel.RUNTIME, asgi.RUNTIME, node.RUNTIME)}

__all__ = ["RUNTIMES", "AppLike", "Runtime", "supervisor_restart", "unit_shell_command"]
