"""The one exception type a user sees: a single line naming the file, key and host."""

from __future__ import annotations


class FabstackError(Exception):
    """A problem with the user's input or a host, told in one line.

    ``where`` names the file (with a line where known), ``key`` the setting and ``host`` the host the problem
    belongs to; each is optional and shown only when given.
    """

    def __init__(self, message: str, *, where: str = "", key: str = "", host: str = "") -> None:
        self.message = message
        self.where = where
        self.key = key
        self.host = host
        super().__init__(self.line())

    def line(self) -> str:
        """The error as the one line printed to the user."""
        key = f"key {self.key}" if self.key else ""
        host = f"host {self.host}" if self.host else ""
        parts = [p for p in (self.where, key, host) if p]
        prefix = ": ".join(parts)
        return f"{prefix}: {self.message}" if prefix else self.message
