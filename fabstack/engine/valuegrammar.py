"""What a string setting may hold, by what its name says it is: a group name, a path, a user, a unit, a duration.

A value reaches configs, scripts and commands that run as root, so a string setting is checked against the
grammar of what it names before any host is touched (docs/security.md, "values"): one line naming the key when it
does not fit. Every string setting, whatever its name, holds one line of at most MAX_LENGTH characters and no
control character; only PEM material (certificates and keys, given inline) may span lines.
"""

from __future__ import annotations

import ipaddress
import re

MAX_LENGTH = 4096
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# PEM text given inline, or the path of a PEM file: the only settings that may span lines.
MULTILINE = re.compile(r"(_certificate|_private_key|_tls_ca)$")

_PATH = r"/(?:[A-Za-z0-9._+@-]+/?)*"
_DURATION = r"[0-9]+(?:ms|s|m|h|d|w|y)"

# (setting names, the values they take, what that is in words): the first rule whose name pattern matches applies.
RULES: tuple[tuple[re.Pattern[str], re.Pattern[str], str], ...] = tuple(
    (re.compile(names), re.compile(rf"^(?:{values})$"), words) for names, values, words in (
        (r"_group$", r"[A-Za-z_][A-Za-z0-9_-]{0,63}", "a group name (letters, digits, - and _)"),
        (r"(_dir|_dest|_root|_etc|_data|_bin|_pgpass|_socket)$", _PATH, "an absolute path (letters, digits, ._+@-)"),
        (r"_schema_file$", r"(?!.*\.\.)[A-Za-z0-9._/-]{1,200}", "a path inside the repo"),
        (r"_user$", r"[a-z_][a-z0-9_-]{0,31}", "a user name (lower-case letters, digits, - and _)"),
        (r"(_service|_binary)$", r"[A-Za-z0-9@._:-]{1,128}", "a unit or program name"),
        (r"(_for|_window|_interval|_wait|_retention)$", _DURATION, "a duration such as 30s, 5m or 15d"),
        (r"^(postgresql_cluster|postgresql_slot|pgbouncer_database|pgbouncer_rw_name|pgbouncer_ro_name|"
         r"php_app_database)$", r"[a-z_][a-z0-9_]{0,62}", "a plain name (lower-case letters, digits and _)"),
        (r"_path$", r"/[A-Za-z0-9._~/-]*", "a URL path"),
        (r"_url$", r"https?://[A-Za-z0-9._~:/?#\[\]@!$&()*+,;=%-]+", "an http(s) URL"),
        (r"^php_version$", r"[0-9]+\.[0-9]+", "a version such as 8.2"),
        (r"(_size|_keep_size)$", r"-?[0-9]+[A-Za-z]{0,2}", "a size such as 16m or 2GB"),
        (r"_time$", r"[0-2][0-9]:[0-5][0-9]", "a time of day as HH:MM"),
        (r"_timezone$", r"[A-Za-z0-9_+/-]{1,64}", "a time zone name such as Europe/Paris"),
        (r"_schedule$", r"[0-9*/,-]+(?: [0-9*/,-]+){4}", "a cron schedule of five fields"),
        (r"^(redis_use|nginx_site|php_fpm_pm|sshd_permit_root_login)$", r"[a-z-]{1,32}", "one of the words the "
         "role lists"),
        (r"_max_startups$", r"[0-9]+(?::[0-9]+:[0-9]+)?", "start:rate:full, such as 10:30:60"),
        (r"_resolver$", r"[A-Za-z0-9.:\[\] ]{0,256}", "addresses separated by spaces"),
        (r"_umask$", r"[0-7]{3,4}", "an octal umask"),
    ))


def problem(key: str, value: str, default: str) -> str | None:
    """Why ``value`` cannot be the string setting ``key`` (whose role default is ``default``), or None."""
    if MULTILINE.search(key):
        return "must not hold a NUL character" if "\x00" in value else None
    if len(value) > MAX_LENGTH:
        return f"must be at most {MAX_LENGTH} characters, got {len(value)}"
    control = _CONTROL.search(value)
    if control:
        return f"must be one line without control characters (found {control.group()!r})"
    if value == "" and default == "":
        return None
    for names, values, words in RULES:
        if names.search(key):
            return None if values.match(value) else f"must be {words}"
    return None


def _network(item: str) -> bool:
    try:
        ipaddress.ip_network(item, strict=False)
    except ValueError:
        return False
    return True


# List settings whose items become nginx ``allow`` lines or nftables set elements: addresses or networks only.
ADDRESS_LISTS = re.compile(r"(_sources|_allow)$")


def item_problem(key: str, item: object) -> str | None:
    """Why ``item`` cannot be an item of the list setting ``key``, or None (items that are not strings are the
    role's own ``check``'s business)."""
    if not isinstance(item, str):
        return None
    if len(item) > MAX_LENGTH or _CONTROL.search(item):
        return f"each item must be one line of at most {MAX_LENGTH} characters"
    if ADDRESS_LISTS.search(key) and not _network(item):
        return f"each item must be an IP address or network such as 10.0.0.0/8, got {item[:80]!r}"
    return None
