"""The one exception type a user sees: a single line naming the file, key and host."""

from __future__ import annotations

import re

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


_TELLING = re.compile(r"error|exception|fatal|failed|denied|refused|not found|no such|sqlstate|timed? ?out|"
                      r"cannot|could not|unable", re.IGNORECASE)
_WORDS = re.compile(r"[A-Za-z]{3}")
# a source excerpt a framework prints under its error ("  822▕     }", "at vendor/x.php:822"): never the reason
_EXCERPT = re.compile(r"^(\d+\s*[|\u2595\u2502]|at \S+:\d+$)")


def telling_line(output: str) -> str:
    """The line of a failed command's output that says what went wrong: the last one naming an error, else the
    last one with words in it (a code excerpt's closing brace explains nothing), else the last one."""
    lines = [line.strip() for line in output.strip().splitlines() if line.strip()]
    lines = [line for line in lines if not _EXCERPT.match(line)] or lines
    return next((line for line in reversed(lines) if _TELLING.search(line)),
                next((line for line in reversed(lines) if _WORDS.search(line)), lines[-1] if lines else ""))
