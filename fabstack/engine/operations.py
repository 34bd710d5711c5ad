"""Declarative operations: each says what it wants, what to read from the host, and the steps to get there.

An operation never runs anything itself. The engine batches every operation's probe into one round trip,
asks each operation to ``plan`` against what the probe found, and sends the resulting steps in one more.
"""

from __future__ import annotations

import base64
import difflib
import hashlib
from dataclasses import dataclass, field
from typing import Any, ClassVar

from fabstack.engine import agent as host


@dataclass
class Plan:
    """What an operation needs done: nothing (ok), steps to apply (change) or nothing possible (skip)."""

    status: str  # "ok", "change" or "skip"
    steps: list[dict[str, Any]] = field(default_factory=list)
    diff: str = ""
    reason: str = ""


OK = Plan("ok")


@dataclass
class Operation:
    """Base of every operation; ``notify`` names handlers to run when it changes something."""

    notify: list[str] = field(default_factory=list, kw_only=True)
    # The kind's name in the agent's table (fabstack.engine.agent.KINDS), which holds its probe and step fields.
    KIND: ClassVar[str] = ""

    @property
    def id(self) -> str:
        """A stable identity such as ``file /etc/nginx/nginx.conf``."""
        raise NotImplementedError

    def probe(self) -> dict[str, Any] | None:
        """What the host must report about the current state, or None when nothing needs reading."""
        return None

    def plan(self, state: dict[str, Any], facts: dict[str, Any]) -> Plan:
        """Compare the wanted state with the probed one."""
        raise NotImplementedError

    def desired(self) -> dict[str, Any]:
        """The full step that brings the host to the wanted state; the agent re-checks before acting."""
        raise NotImplementedError

    def step(self, step_type: str, /, **data: Any) -> dict[str, Any]:
        """An apply step for the agent, tagged with this operation's id and handlers."""
        return {"type": step_type, "id": self.id, "notify": list(self.notify), **data}

    def probe_request(self, **data: Any) -> dict[str, Any]:
        """A probe item of this operation's kind."""
        return {"type": self.KIND, **data}


def unified_diff(old: bytes | None, new: bytes, path: str) -> str:
    """A unified diff of a file's old and new content (text), or a one-line note for binary content."""
    try:
        old_text = (old or b"").decode()
        new_text = new.decode()
    except UnicodeDecodeError:
        return f"--- {path}\n+++ {path}\n(binary content differs)\n"
    lines = difflib.unified_diff(
        old_text.splitlines(keepends=True),
        new_text.splitlines(keepends=True),
        fromfile=path if old is not None else "/dev/null",
        tofile=path,
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def _attrs(op: File | Directory) -> dict[str, str | None]:
    return {"owner": op.owner, "group": op.group, "mode": op.mode}


@dataclass
class File(Operation):
    """A file with exact content, owner, group and mode; replaced atomically, validated before it counts."""

    path: str
    content: bytes
    owner: str | None = "root"
    group: str | None = "root"
    mode: str | None = "0644"
    validate: str | None = None
    secret: bool = False
    KIND: ClassVar[str] = "file"

    @property
    def id(self) -> str:  # noqa: D102
        return f"file {self.path}"

    @property
    def sha256(self) -> str:
        """The checksum of the wanted content."""
        return hashlib.sha256(self.content).hexdigest()

    def probe(self) -> dict[str, Any]:  # noqa: D102
        return self.probe_request(path=self.path, sha256=self.sha256)

    def plan(self, state: dict[str, Any], facts: dict[str, Any]) -> Plan:  # noqa: D102
        if not host.file_matches(state, self.sha256):
            old = base64.b64decode(state["content_b64"]) if "content_b64" in state else None
            if state.get("exists") and old is None and state.get("kind") == "file":
                diff = f"--- {self.path}\n+++ {self.path}\n(large file differs)\n"
            else:
                diff = unified_diff(old, self.content, self.path)
            if self.secret:
                diff = f"--- {self.path}\n+++ {self.path}\n(content of a secret file changed; not shown)\n"
            return Plan("change", [self.desired()], diff=diff)
        changes = host.changed_attrs(state, _attrs(self))
        if changes:
            shown = ", ".join(f"{attr} {state.get(attr)} -> {want}" for attr, want in changes.items())
            return Plan("change", [self.step("attrs", path=self.path, **_attrs(self))], diff=f"{self.path}: {shown}\n")
        return OK

    def desired(self) -> dict[str, Any]:  # noqa: D102
        return self.step("file", path=self.path, content_b64=base64.b64encode(self.content).decode(),
                         sha256=self.sha256, validate=self.validate, owner=self.owner, group=self.group,
                         mode=self.mode)


@dataclass
class Directory(Operation):
    """A directory with owner, group and mode."""

    path: str
    owner: str | None = "root"
    group: str | None = "root"
    mode: str | None = "0755"
    KIND: ClassVar[str] = "directory"

    @property
    def id(self) -> str:  # noqa: D102
        return f"directory {self.path}"

    def probe(self) -> dict[str, Any]:  # noqa: D102
        return self.probe_request(path=self.path)

    def plan(self, state: dict[str, Any], facts: dict[str, Any]) -> Plan:  # noqa: D102
        if state.get("kind") != "directory" or host.changed_attrs(state, _attrs(self)):
            return Plan("change", [self.desired()])
        return OK

    def desired(self) -> dict[str, Any]:  # noqa: D102
        return self.step("directory", path=self.path, owner=self.owner, group=self.group, mode=self.mode)


@dataclass
class Symlink(Operation):
    """A symbolic link at ``path`` pointing to ``target``."""

    path: str
    target: str
    KIND: ClassVar[str] = "symlink"

    @property
    def id(self) -> str:  # noqa: D102
        return f"symlink {self.path}"

    def probe(self) -> dict[str, Any]:  # noqa: D102
        return self.probe_request(path=self.path)

    def plan(self, state: dict[str, Any], facts: dict[str, Any]) -> Plan:  # noqa: D102
        if host.link_matches(state, self.target):
            return OK
        return Plan("change", [self.desired()], diff=f"-> {self.target}\n")

    def desired(self) -> dict[str, Any]:  # noqa: D102
        return self.step("symlink", path=self.path, target=self.target)


@dataclass
class Absent(Operation):
    """A file or link that must not exist (a directory is never removed)."""

    path: str
    KIND: ClassVar[str] = "absent"

    @property
    def id(self) -> str:  # noqa: D102
        return f"absent {self.path}"

    def probe(self) -> dict[str, Any]:  # noqa: D102
        return self.probe_request(path=self.path)

    def plan(self, state: dict[str, Any], facts: dict[str, Any]) -> Plan:  # noqa: D102
        if not state.get("exists"):
            return OK
        return Plan("change", [self.desired()], diff=f"remove {self.path}\n")

    def desired(self) -> dict[str, Any]:  # noqa: D102
        return self.step("absent", path=self.path)


@dataclass
class OldReleases(Operation):
    """Release folders under ``path`` past the newest ``keep``, removed. The release being deployed and the one
    ``link`` points at now are always kept, so a role rolled back to the old link still finds its target."""

    path: str
    link: str
    release: str
    keep: int
    KIND: ClassVar[str] = "releases"

    @property
    def id(self) -> str:  # noqa: D102
        return f"old releases {self.path}"

    def probe(self) -> dict[str, Any]:  # noqa: D102
        return self.probe_request(path=self.path, link=self.link)

    def stale(self, state: dict[str, Any]) -> list[str]:
        """Names of the release folders to remove, given the probed folders and link."""
        new = self.release.rstrip("/").rsplit("/", 1)[-1]
        current = str(state.get("current") or "").rstrip("/").rsplit("/", 1)[-1]
        newest_first = [e["name"] for e in sorted(state.get("entries", []), key=lambda e: (e["mtime"], e["name"]),
                                                   reverse=True)]
        order = list(dict.fromkeys([new, *([current] if current else []), *newest_first]))
        kept = set(order[:self.keep]) | {new, current}
        return sorted(name for name in newest_first if name not in kept)

    def plan(self, state: dict[str, Any], facts: dict[str, Any]) -> Plan:  # noqa: D102
        names = self.stale(state)
        if not names:
            return OK
        step = self.step("releases", path=self.path, link=self.link, remove=names)
        return Plan("change", [step], diff="".join(f"remove {self.path}/{name}/\n" for name in names))

    def desired(self) -> dict[str, Any]:  # noqa: D102
        return self.step("releases", path=self.path, link=self.link, remove=[])


@dataclass
class Packages(Operation):
    """Debian packages that must be installed (apt), installed in one apt-get call."""

    names: list[str]
    cache_valid_time: int = 86400
    KIND: ClassVar[str] = "packages"

    @property
    def id(self) -> str:  # noqa: D102
        return f"packages {' '.join(self.names)}"

    def probe(self) -> dict[str, Any]:  # noqa: D102
        return self.probe_request(names=self.names)

    def plan(self, state: dict[str, Any], facts: dict[str, Any]) -> Plan:  # noqa: D102
        missing = host.missing_packages(state, self.names)
        if not missing:
            return OK
        step = self.step("packages", names=missing, cache_valid_time=self.cache_valid_time)
        return Plan("change", [step], diff=f"install: {' '.join(missing)}\n")

    def desired(self) -> dict[str, Any]:  # noqa: D102
        return self.step("packages", names=self.names, cache_valid_time=self.cache_valid_time)


@dataclass
class Service(Operation):
    """A systemd service's state (``started`` or ``stopped``), whether it starts at boot, or ``masked``
    (stopped and impossible to start until unmasked: how a fenced database is kept down)."""

    name: str
    state: str = "started"
    enabled: bool | None = True
    masked: bool = False
    KIND: ClassVar[str] = "service"

    @property
    def id(self) -> str:  # noqa: D102
        return f"service {self.name}"

    def probe(self) -> dict[str, Any]:  # noqa: D102
        return self.probe_request(name=self.name)

    def plan(self, state: dict[str, Any], facts: dict[str, Any]) -> Plan:  # noqa: D102
        verbs = host.service_actions(state, self.desired())
        if not verbs:
            return OK
        now = f"{state.get('active')}, {state.get('enabled')}"
        return Plan("change", [self.desired()], diff=f"{now}: systemctl {', '.join(verbs)}\n")

    def desired(self) -> dict[str, Any]:  # noqa: D102
        return self.step("service", name=self.name, state=self.state, enabled=self.enabled, masked=self.masked)


@dataclass
class Sysctl(Operation):
    """A kernel setting's live value (a sysctl key, or a file under /sys given as ``path``).

    Skipped, with the reason, where the kernel refuses it (a container's read-only /proc/sys or /sys).
    """

    key: str
    value: str
    path: str = ""
    KIND: ClassVar[str] = "sysctl"

    def __post_init__(self) -> None:
        if not self.path:
            self.path = "/proc/sys/" + self.key.replace(".", "/")

    @property
    def id(self) -> str:  # noqa: D102
        return f"sysctl {self.key}"

    @property
    def wanted(self) -> str:
        """The value as the kernel prints it (whitespace folded)."""
        return " ".join(str(self.value).split())

    def probe(self) -> dict[str, Any]:  # noqa: D102
        return self.probe_request(path=self.path)

    def plan(self, state: dict[str, Any], facts: dict[str, Any]) -> Plan:  # noqa: D102
        current = state.get("value")
        if host.sysctl_matches(state, self.wanted):
            return OK
        if current is None:
            return Plan("skip", reason=f"{self.path} does not exist on this kernel")
        if not state.get("writable"):
            where = f"inside a container ({facts.get('container')})" if facts.get("container") else "here"
            return Plan("skip", reason=f"{self.path} is read-only {where}: {self.key} stays {current}, "
                                       f"wanted {self.wanted}")
        return Plan("change", [self.desired()], diff=f"{current} -> {self.wanted}\n")

    def desired(self) -> dict[str, Any]:  # noqa: D102
        return self.step("sysctl", path=self.path, value=self.wanted)


@dataclass
class Account(Operation):
    """A local user or group (``kind`` is ``user`` or ``group``), created if missing."""

    kind: str
    name: str
    system: bool = True
    shell: str | None = None
    home: str | None = None
    group: str | None = None
    KIND: ClassVar[str] = "account"

    @property
    def id(self) -> str:  # noqa: D102
        return f"{self.kind} {self.name}"

    def probe(self) -> dict[str, Any]:  # noqa: D102
        return self.probe_request(kind=self.kind, name=self.name)

    def plan(self, state: dict[str, Any], facts: dict[str, Any]) -> Plan:  # noqa: D102
        if state.get("exists"):
            return OK
        return Plan("change", [self.desired()], diff=f"create {self.kind} {self.name}\n")

    def desired(self) -> dict[str, Any]:  # noqa: D102
        return self.step("account", kind=self.kind, name=self.name, system=self.system, shell=self.shell,
                         home=self.home, group=self.group)


@dataclass
class Command(Operation):
    """A shell command run only while its guard is unmet: ``creates`` (a path) or ``unless`` (a command).

    The command is a role's own literal; variables in it must go through ``shlex.quote``. ``stdin`` (SQL, say)
    is fed to it on standard input, so a password in it never shows in a process list.
    """

    command: str
    creates: str | None = None
    unless: str | None = None
    name: str = ""
    stdin: str | None = None
    KIND: ClassVar[str] = "command"

    @property
    def id(self) -> str:  # noqa: D102
        return f"command {self.name or self.command[:60]}"

    def probe(self) -> dict[str, Any]:  # noqa: D102
        return self.probe_request(creates=self.creates, unless=self.unless)

    def plan(self, state: dict[str, Any], facts: dict[str, Any]) -> Plan:  # noqa: D102
        if state.get("satisfied"):
            return OK
        return Plan("change", [self.desired()], diff=f"run: {self.command}\n")

    def desired(self) -> dict[str, Any]:  # noqa: D102
        return self.step("command", command=self.command, creates=self.creates, unless=self.unless, stdin=self.stdin)


@dataclass
class Sql(Operation):
    """SQL statements run in a PostgreSQL database as its superuser, only while a guard query's single value is not
    ``expected``. A host's guards are all read in one psql session. The statements go on psql's
    standard input (a password in them never shows in a process list) and are never shown in a diff."""

    database: str
    sql: str
    query: str
    expected: str
    name: str
    KIND: ClassVar[str] = "pgsql"

    @property
    def id(self) -> str:  # noqa: D102
        return f"pgsql {self.name}"

    def probe(self) -> dict[str, Any]:  # noqa: D102
        return self.probe_request(database=self.database, query=self.query, expected=self.expected)

    def plan(self, state: dict[str, Any], facts: dict[str, Any]) -> Plan:  # noqa: D102
        if state.get("satisfied"):
            return OK
        return Plan("change", [self.desired()], diff=f"run SQL in database {self.database}: {self.name}\n")

    def desired(self) -> dict[str, Any]:  # noqa: D102
        return self.step("pgsql", database=self.database, query=self.query, expected=self.expected, sql=self.sql)
