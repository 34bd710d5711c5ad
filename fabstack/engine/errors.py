"""The one exception type a user sees: a single line naming the file, key and host."""

from __future__ import annotations

# The longest error line shown, and the longest value quoted in one: hostile input must not flood a terminal.
MAX_LINE = 400
MAX_VALUE = 60


def shorten(text: str, limit: int = MAX_VALUE) -> str:
    """``text`` on one line, cut to ``limit`` characters (with an ellipsis and the full length when cut)."""
    flat = text.replace("\r", "\\r").replace("\n", "\\n")
    return flat if len(flat) <= limit else f"{flat[:limit]}... ({len(text)} characters)"


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
        prefix = ": ".join(shorten(p, MAX_LINE // 3) for p in parts)
        text = f"{prefix}: {self.message}" if prefix else self.message
        return shorten(text, MAX_LINE)
