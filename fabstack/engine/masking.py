"""Keeping secret values out of every line fabstack prints or writes."""

from __future__ import annotations

import re
from typing import Any

SECRET_KEY = re.compile(r"(password|passwd|secret|token|private_key|api_key)", re.IGNORECASE)
MASK = "********"
# Credentials inside a URL (user:password@, or a token in its path or query, as a chat webhook carries): any URL
# value is secret in part, whatever its setting is called.
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)
_URL_USERINFO = re.compile(r"://([^/@\s]+)@")
_URL_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,}")
_PEM_KEY = re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----(.+?)-----END", re.S)


def pem_key_parts(text: str) -> set[str]:
    """A PEM private key anywhere in ``text``: the whole text and each line of the key's body, so that a key is
    masked even when only some of its lines are printed."""
    bodies = _PEM_KEY.findall(text)
    if not bodies:
        return set()
    return {text} | {line.strip() for body in bodies for line in body.splitlines() if len(line.strip()) >= 16}


def url_secrets(url: str) -> set[str]:
    """The parts of a URL that are credentials: ``user:password`` before ``@``, and every long token-like run in
    its path or query (Slack's, Matrix's and most webhooks' secret is a path segment)."""
    found = {match.group(1) for match in _URL_USERINFO.finditer(url)}
    after_host = url.split("://", 1)[1].split("/", 1)[1] if "/" in url.split("://", 1)[1] else ""
    found |= set(_URL_TOKEN.findall(after_host))
    return {part for part in found if len(part) >= 3}


def secret_values(variables: dict[str, Any], declared: set[str] | frozenset[str] = frozenset()) -> set[str]:
    """String values of variables whose name marks them secret (``*password*``, ``*secret*``, ``*token*``...) or
    that a role declares secret (``declared``)."""
    found: set[str] = set()

    def walk(key: str, value: Any) -> None:
        if isinstance(value, dict):
            for sub_key, sub_value in value.items():
                walk(f"{key}.{sub_key}", sub_value)
        elif isinstance(value, list):
            for item in value:
                walk(key, item)
        elif isinstance(value, str | int) and not isinstance(value, bool) and key.split(".")[0] in declared:
            if len(str(value)) >= 3:
                found.add(str(value))
        elif isinstance(value, str) and "PRIVATE KEY-----" in value:
            found.update(pem_key_parts(value))  # a private key is secret whatever its setting is called
        elif isinstance(value, str) and _URL.match(value):
            found.update(url_secrets(value))
        elif isinstance(value, str | int) and not isinstance(value, bool) and SECRET_KEY.search(key):
            text = str(value)
            if len(text) >= 3:
                found.add(text)

    for key, value in variables.items():
        if key.startswith("ansible_") and key != "ansible_become_password":
            continue
        walk(key, value)
    return found


class Masker:
    """Replaces known secret values in text with a fixed mask."""

    def __init__(self, secrets: set[str] | None = None) -> None:
        self.secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self.add(secrets or set())

    def add(self, secrets: set[str]) -> None:
        """Learn more secret values."""
        self.secrets |= {s for s in secrets if s}
        ordered = sorted(self.secrets, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(s) for s in ordered)) if ordered else None

    def __call__(self, text: str) -> str:
        """The text with every secret value masked."""
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(MASK, text)
