"""Roles: a folder with defaults, steps, handlers, templates and tests; and the context a role's steps use."""

from __future__ import annotations

import hashlib
import importlib.util
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import jinja2

from fabstack.engine import operations as ops
from fabstack.engine import settingspec, valuegrammar
from fabstack.engine.bundled import repo_or_bundled
from fabstack.engine.errors import FabstackError, shorten
from fabstack.engine.inventory import host_entry
from fabstack.engine.rolecontract import Commitment, Inbound, check_role_module, contract_value
from fabstack.engine.templating import render
from fabstack.engine.varstemplate import render_shell
from fabstack.engine.yamlfile import load_mapping

# Where fabstack puts its own scripts on a host (exporters, the alert receiver, their shared HTTP helper).
HOST_LIB = "/usr/local/lib/fabstack"
# The account fabstack's own exporters run as (each unit adds the one group it needs).
EXPORTER_USER = "fabstack-exporter"
_CRON_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass
class Role:
    """A role folder: ``defaults/main.yml``, ``role.py`` (``deploy`` and ``HANDLERS``), ``templates/``, ``tests/``."""

    name: str
    path: Path
    defaults: dict[str, Any]
    module: ModuleType

    @property
    def defaults_file(self) -> Path:
        """Where the role's defaults live."""
        return self.path / "defaults" / "main.yml"

    @property
    def templates_dir(self) -> Path:
        """The role's own templates."""
        return self.path / "templates"

    @property
    def generated_secrets(self) -> tuple[str, ...]:
        """Variables the role needs as secrets, generated per env when nobody sets them (``GENERATED_SECRETS``)."""
        return tuple(contract_value(self.module, "GENERATED_SECRETS"))

    @property
    def handlers(self) -> dict[str, str]:
        """Handler name -> shell command as written (``{{ var }}`` unrendered), in declaration order."""
        return dict(contract_value(self.module, "HANDLERS"))

    def handler_commands(self, values: dict[str, Any], host: str) -> dict[str, str]:
        """Handler name -> shell command with the host's values put in (each one shell-quoted)."""
        where = str(self.path / "role.py")
        return {name: render_shell(command, values, where=where, key=f"HANDLERS[{name!r}]", host=host)
                for name, command in self.handlers.items()}

    def inbound(self, values: dict[str, Any]) -> list[Inbound]:
        """The ports this role listens on for other hosts, and who may reach them (``inbound``)."""
        declare = getattr(self.module, "inbound", None)
        return list(declare(values)) if declare else []

    def commitment(self, values: dict[str, Any], facts: dict[str, Any] | None) -> Commitment | None:
        """What the role takes on a host, for the budget (``commitment``); None when it takes nothing."""
        declare = getattr(self.module, "commitment", None)
        return declare(values, facts) if declare else None

    @property
    def settings(self) -> dict[str, settingspec.Setting]:
        """What each of the role's settings may hold beyond its default's type (``SETTINGS``)."""
        return dict(contract_value(self.module, "SETTINGS"))

    @property
    def secret_settings(self) -> tuple[str, ...]:
        """Settings declared secret whose names do not already say so."""
        return tuple(key for key, spec in self.settings.items() if spec.secret)

    @property
    def descriptions(self) -> dict[str, str]:
        """Each default's description: the comment above it in ``defaults/main.yml``."""
        return settingspec.descriptions(self.defaults_file)

    @property
    def needs(self) -> tuple[str, ...]:
        """Roles that must run on the same host: this role reads their settings (``NEEDS``)."""
        return tuple(contract_value(self.module, "NEEDS"))

    @property
    def reads(self) -> tuple[str, ...]:
        """Roles whose settings this role reads when the host runs them too (``READS``)."""
        return tuple(contract_value(self.module, "READS"))

    @property
    def ports(self) -> tuple[str, ...]:
        """Settings holding TCP ports the role listens on (``PORTS``)."""
        return tuple(contract_value(self.module, "PORTS"))

    def check_types(self, host: str, values: dict[str, Any], origins: dict[str, str], secret: set[str]) -> None:
        """Every setting the role knows must have its default's type; the error names file, key and host."""
        for key, default in self.defaults.items():
            if default is None or key not in values or values[key] is default:
                continue
            value = values[key]
            shown = "(secret)" if str(value) in secret else shorten(repr(value))
            if not _same_type(default, value):
                raise FabstackError(
                    f"expected {_type_name(default)} (role {self.name}'s default is {default!r}), got "
                    f"{_type_name(value)} {shown}",
                    where=origins.get(key, ""), key=key, host=host,
                )
            if isinstance(value, str):
                wrong = valuegrammar.problem(key, value, default)
            elif isinstance(value, list):
                wrong = next((p for p in (valuegrammar.item_problem(key, item) for item in value) if p), None)
            else:
                wrong = None
            if wrong:
                raise FabstackError(f"{wrong}, got {shown}", where=origins.get(key, ""), key=key, host=host)
        for key, message in settingspec.problems(self.settings, values):
            if key in self.secret_settings or str(values[key]) in secret:
                message = message.split(", got ")[0] + ", got (secret)"
            raise FabstackError(message, where=origins.get(key, ""), key=key, host=host)
        check = contract_value(self.module, "check")
        if check is not None:
            for key, message in check(values):
                raise FabstackError(message, where=origins.get(key, ""), key=key, host=host)


def _same_type(default: Any, value: Any) -> bool:
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(default, str):
        return isinstance(value, str)
    return isinstance(value, type(default))


def _type_name(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "a mapping"}.get(type(value), type(value).__name__)


def load_role(roles_dir: Path, name: str) -> Role:
    """Load ``roles_dir/NAME``: its defaults and its ``role.py``."""
    path = roles_dir / name
    module_file = path / "role.py"
    if not module_file.is_file():
        raise FabstackError(f"unknown role {name!r} (no {module_file})", key="roles")
    defaults_file = path / "defaults" / "main.yml"
    defaults = load_mapping(defaults_file) if defaults_file.is_file() else {}
    spec = importlib.util.spec_from_file_location(f"fabstack_role_{name}", module_file)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise FabstackError(f"cannot load the role: {exc.msg} (line {exc.lineno})", where=str(module_file)) from exc
    except Exception as exc:  # noqa: BLE001 - any error in a role's module is one line naming the file
        raise FabstackError(f"cannot load the role: {type(exc).__name__}: {exc}", where=str(module_file)) from exc
    check_role_module(module, module_file)
    unowned = sorted(set(contract_value(module, "SETTINGS")) - set(defaults))
    if unowned:
        raise FabstackError(f"SETTINGS names {unowned[0]}, which is not a setting of this role (its defaults)",
                            where=str(module_file), key="SETTINGS")
    return Role(name=name, path=path, defaults=defaults, module=module)


@dataclass
class RoleContext:
    """What a role's ``deploy`` receives: the host's variables and facts, and methods that declare operations."""

    role: Role
    host: str
    vars: dict[str, Any]
    facts: dict[str, Any]
    jinja: jinja2.Environment
    groups: dict[str, list[str]] = field(default_factory=dict)
    hostvars: dict[str, dict[str, Any]] = field(default_factory=dict)
    hostfacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    computed: dict[str, Any] = field(default_factory=dict)
    root: Path = Path(".")
    # every role site.yml gives the host, for a role that reads the others' declarations (the firewall)
    host_roles: list[Role] = field(default_factory=list)
    operations: list[ops.Operation] = field(default_factory=list)
    # things the user should know that stop nothing (a certificate close to expiry), shown in the recap
    warnings: list[str] = field(default_factory=list)
    # the env's recorded SSH host keys (inventory/ENV.known_hosts)
    known_hosts: Path | None = None

    def warn(self, text: str) -> None:
        """Say something in the run's recap that does not stop the run."""
        if text not in self.warnings:
            self.warnings.append(text)

    def _notify(self, notify: str | list[str] | None) -> list[str]:
        names = [notify] if isinstance(notify, str) else list(notify or [])
        for name in names:
            if name not in self.role.handlers:
                raise FabstackError(f"notifies unknown handler {name!r}", where=str(self.role.path / "role.py"))
        return names

    def _add(self, op: ops.Operation) -> ops.Operation:
        self.operations.append(op)
        return op

    def repo_path(self, relative: str) -> Path:
        """A file or folder of the deployment repo (an app's source, a schema), or fabstack's bundled one."""
        return repo_or_bundled(self.root, relative)

    def address_of(self, name: str) -> str:
        """Another host's address (its ``ansible_host``)."""
        return str(self.hostvars[name].get("ansible_host", name))

    def host_key_lines(self, name: str) -> list[str]:
        """Another host's recorded SSH host keys as known_hosts lines (for a host that must reach it over SSH);
        refused when none is recorded, since a key learnt on first contact could be anybody's."""
        values = self.hostvars[name]
        entry = host_entry(self.address_of(name), int(values.get("ansible_port", 22)))
        text = self.known_hosts.read_text() if self.known_hosts and self.known_hosts.is_file() else ""
        lines = [line for line in text.splitlines() if line.split(" ", 1)[0] == entry]
        if not lines:
            raise FabstackError(f"no recorded SSH host key for {name}: run inv hosts.trust first", host=name)
        return lines

    def peer(self, group: str) -> dict[str, Any]:
        """The first host of ``group``: its resolved variables plus ``address`` (empty if the group is empty)."""
        names = self.groups.get(group, [])
        if not names:
            return {}
        return dict(self.hostvars[names[0]], address=self.address_of(names[0]), name=names[0])

    def render(self, template: str, **extra: Any) -> str:
        """Render one of the role's templates with the host's variables, facts and ``extra``."""
        context = dict(self.vars, facts=self.facts, inventory_hostname=self.host, groups=self.groups,
                       hostvars=self.hostvars, computed=self.computed, **extra)
        return render(self.jinja, template, context, self.host)

    def packages(self, *names: str) -> ops.Operation:
        """Debian packages that must be installed."""
        return self._add(ops.Packages(list(names), cache_valid_time=int(self.vars.get("apt_cache_valid_time", 86400))))

    def template(
        self, template: str, dest: str, *, owner: str = "root", group: str = "root", mode: str = "0644",
        validate: str | None = None, notify: str | list[str] | None = None, secret: bool = False, **extra: Any,
    ) -> ops.Operation:
        """A file rendered from one of the role's templates."""
        content = self.render(template, **extra).encode()
        return self.file(dest, content, owner=owner, group=group, mode=mode, validate=validate, notify=notify,
                         secret=secret)

    def file(
        self, dest: str, content: str | bytes, *, owner: str = "root", group: str = "root", mode: str = "0644",
        validate: str | None = None, notify: str | list[str] | None = None, secret: bool = False,
    ) -> ops.Operation:
        """A file with the given content."""
        data = content.encode() if isinstance(content, str) else content
        return self._add(ops.File(dest, data, owner=owner, group=group, mode=mode, validate=validate,
                                  secret=secret, notify=self._notify(notify)))

    def directory(self, path: str, *, owner: str = "root", group: str = "root", mode: str = "0755") -> ops.Operation:
        """A directory."""
        return self._add(ops.Directory(path, owner=owner, group=group, mode=mode))

    def permissions(self, path: str, mode: str, *, owner: str = "root", group: str = "root") -> ops.Operation:
        """Owner, group and mode of a file or folder another package installed (its content is left alone); a
        path that does not exist is left alone too."""
        quoted = shlex.quote(path)
        want = f"{owner}:{group}:{int(mode, 8):o}"
        return self.command(f"chown {owner}:{group} {quoted} && chmod {mode} {quoted}",
                            unless=f'test ! -e {quoted} || test "$(stat -L -c %U:%G:%a {quoted})" = {want}',
                            name=f"permissions {path}")

    def symlink(self, path: str, target: str, *, notify: str | list[str] | None = None) -> ops.Operation:
        """A symbolic link."""
        return self._add(ops.Symlink(path, target, notify=self._notify(notify)))

    def absent(self, path: str, *, notify: str | list[str] | None = None) -> ops.Operation:
        """A file or link that must not exist."""
        return self._add(ops.Absent(path, notify=self._notify(notify)))

    def service(self, name: str, *, state: str = "started", enabled: bool | None = True,
                masked: bool = False) -> ops.Operation:
        """A systemd service's state and boot setting, or masked (stopped and unable to start)."""
        if state not in ("started", "stopped"):
            raise FabstackError(f"service state must be started or stopped, not {state!r}", key=name)
        return self._add(ops.Service(name, state=state, enabled=enabled, masked=masked))

    def sysctl(self, key: str, value: str | int) -> None:
        """A kernel setting, persisted in /etc/sysctl.d and applied live where the kernel allows it."""
        self.file(f"/etc/sysctl.d/60-fabstack-{key}.conf", f"# {self.vars_managed()}\n{key} = {value}\n")
        self._add(ops.Sysctl(key, str(value)))

    def kernel_file(self, path: str, value: str) -> ops.Operation:
        """A kernel setting under /sys (persist it separately, e.g. with a tmpfiles.d entry)."""
        return self._add(ops.Sysctl(path.removeprefix("/sys/"), value, path=path))

    def user(self, name: str, *, system: bool = True, shell: str | None = None, home: str | None = None,
             group: str | None = None) -> ops.Operation:
        """A local user account."""
        return self._add(ops.Account("user", name, system=system, shell=shell, home=home, group=group))

    def group(self, name: str, *, system: bool = True) -> ops.Operation:
        """A local group."""
        return self._add(ops.Account("group", name, system=system))

    def cron(self, name: str, schedule: str, command: str, *, user: str = "root") -> ops.Operation:
        """A cron job, kept as its own file in /etc/cron.d."""
        if not _CRON_NAME.match(name):
            raise FabstackError("a cron job name may hold only letters, digits, - and _", key=name, host=self.host)
        if "\n" in schedule + command:
            raise FabstackError("a cron schedule or command cannot span lines", key=name, host=self.host)
        path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        body = f"# {self.vars_managed()}\nSHELL=/bin/sh\nPATH={path}\n"
        return self.file(f"/etc/cron.d/fabstack-{name}", f"{body}{schedule} {user} {command}\n")

    def command(self, command: str, *, creates: str | None = None, unless: str | None = None, name: str = "",
                notify: str | list[str] | None = None, stdin: str | None = None) -> ops.Operation:
        """A command run only while its guard is unmet (``creates`` a path, or ``unless`` a command succeeds)."""
        if creates is None and unless is None:
            raise FabstackError("a command needs a guard (creates= or unless=) to stay idempotent", key=name or command)
        return self._add(ops.Command(command, creates=creates, unless=unless, name=name, stdin=stdin,
                                     notify=self._notify(notify)))

    def sql(self, database: str, statements: str, *, unless_query: str, equals: str, name: str,
            notify: str | list[str] | None = None) -> ops.Operation:
        """PostgreSQL statements run as the superuser while ``unless_query``'s single value is not ``equals``."""
        return self._add(ops.Sql(database, statements, unless_query, equals, name, notify=self._notify(notify)))

    def release(self, source: str, dest: str, *, keep: int = 5, group: str = "root",
                notify: str | list[str] | None = None) -> str:
        """Ship a folder of the repo as an immutable release: ``DEST/releases/DIGEST`` and a ``DEST/current`` link.

        The digest covers every file's path and content, so an unchanged app is no change at all, and a new one
        is switched to in a single atomic rename of the link. The newest ``keep`` releases stay on the host (for
        a quick switch back); older ones are removed. Returns the release's path.
        """
        folder = self.repo_path(source)
        if not folder.is_dir():
            raise FabstackError(f"app source folder {folder} does not exist", key=source, host=self.host)
        files = sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
        digest = hashlib.sha256()
        for path in files:
            digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes() + b"\0")
        release = f"{dest}/releases/{digest.hexdigest()[:12]}"
        for directory in (dest, f"{dest}/releases", release):
            self.directory(directory)
        for sub in sorted({p.parent for p in files if p.parent != folder}):
            self.directory(f"{release}/{sub.relative_to(folder)}")
        for path in files:
            self.file(f"{release}/{path.relative_to(folder)}", path.read_bytes(), group=group, mode="0644")
        self.symlink(f"{dest}/current", release, notify=notify)
        self._add(ops.OldReleases(f"{dest}/releases", f"{dest}/current", release, keep))
        return release

    def vars_managed(self) -> str:
        """The header line for files written without a template."""
        return f"managed by fabstack (role {self.role.name}); local edits are overwritten"
