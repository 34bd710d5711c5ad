"""Where a value stands in a shell command: quoted (safe) or bare (it would be run).

A small reader of POSIX sh quoting, enough for the commands fabstack writes: it removes quotes while remembering
each character's context (bare, single-quoted, double-quoted, backslash-escaped), finds a value in the result, and
says whether every character of each occurrence is one the shell takes literally there. Words after ``-c`` are
shell text themselves and are read again, one level down.
"""

from __future__ import annotations

SAFE_BARE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=:,./-")
SPECIAL_IN_DOUBLE = frozenset('$`\\"')


def unquote(text: str) -> list[tuple[str, str]]:
    """Each character of ``text`` after quote removal, with its context: bare, single, double or escaped."""
    out: list[tuple[str, str]] = []
    context, i = "bare", 0
    while i < len(text):
        c = text[i]
        if context == "single":
            if c == "'":
                context = "bare"
            else:
                out.append((c, "single"))
        elif context == "double":
            if c == '"':
                context = "bare"
            elif c == "\\" and i + 1 < len(text) and text[i + 1] in '$`"\\\n':
                out.append((text[i + 1], "escaped"))
                i += 1
            else:
                out.append((c, "double"))
        elif c == "'":
            context = "single"
        elif c == '"':
            context = "double"
        elif c == "\\" and i + 1 < len(text):
            out.append((text[i + 1], "escaped"))
            i += 1
        else:
            out.append((c, "bare"))
        i += 1
    return out


def _literal(char: str, context: str) -> bool:
    if context in ("single", "escaped"):
        return True
    if context == "double":
        return char not in SPECIAL_IN_DOUBLE
    return char in SAFE_BARE


def words(chars: list[tuple[str, str]]) -> list[str]:
    """The words (split at bare white space) of unquoted text."""
    found, current = [], ""
    for char, context in chars:
        if context == "bare" and char in " \t\n;&|":
            if current:
                found.append(current)
            current = ""
        else:
            current += char
    if current:
        found.append(current)
    return found


def unsafe_use(text: str, value: str, depth: int = 0) -> str | None:
    """Where ``value`` stands in shell text ``text`` so that the shell would not take it literally, or None."""
    chars = unquote(text)
    plain = "".join(c for c, _ in chars)
    start = plain.find(value)
    while start != -1:
        bad = [c for c, ctx in chars[start:start + len(value)] if not _literal(c, ctx)]
        if bad:
            return f"{bad[0]!r} reaches the shell unquoted in: {text[:160]!r}"
        start = plain.find(value, start + 1)
    if depth < 3:
        found = words(chars)
        for index, word in enumerate(found[:-1]):
            shell = found[index - 1] in ("sh", "bash", "/bin/sh", "/bin/bash")
            if word == "-c" and shell and value in found[index + 1]:
                inner = unsafe_use(found[index + 1], value, depth + 1)
                if inner:
                    return inner
    return None
