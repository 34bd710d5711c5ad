"""The remote side of fabstack: one stdlib-only Python program run on a host per round trip.

It is sent compressed on the command line and reads one JSON request from standard input:
``{"action": "facts"}``, ``{"action": "probe", "items": [...]}``, ``{"action": "apply", "roles": [...]}``, or
``{"action": "lock" | "unlock", ...}`` for the host's lock.
It prints one JSON answer on standard output. It never runs a value through a shell except the commands a role
declared (validate commands, guarded commands, handlers), which the engine quotes before sending.
"""

import base64
import contextlib
import grp
import hashlib
import json
import os
import pwd
import stat
import subprocess
import sys
import threading
import time
from typing import Any

Request = dict[str, Any]
Answer = dict[str, Any]

MAX_DIFF_BYTES = 256 * 1024


def lazy_shutil() -> Any:
    """shutil, imported only by the steps that copy or remove trees: a probe does not pay for it."""
    import shutil

    return shutil


class Task:
    """One call running in its own thread; ``result()`` waits for it and returns its value or raises its error."""

    def __init__(self, call: Any, args: tuple, slots: threading.BoundedSemaphore) -> None:
        self.value: Any = None
        self.error: BaseException | None = None
        slots.acquire()
        self.thread = threading.Thread(target=self._run, args=(call, args, slots), daemon=True)
        self.thread.start()

    def _run(self, call: Any, args: tuple, slots: threading.BoundedSemaphore) -> None:
        try:
            self.value = call(*args)
        except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
            self.error = exc
        finally:
            slots.release()

    def result(self) -> Any:
        self.thread.join()
        if self.error is not None:
            raise self.error
        return self.value


class Pool:
    """At most ``threads`` calls at once (concurrent.futures costs more to import than a whole probe takes)."""

    def __init__(self, threads: int) -> None:
        self.slots = threading.BoundedSemaphore(threads)

    def submit(self, call: Any, *args: Any) -> Task:
        return Task(call, args, self.slots)

    def map(self, call: Any, items: list) -> list:
        return [task.result() for task in [self.submit(call, item) for item in items]]


def run(argv: list[str], **kwargs: Any) -> tuple[int, str]:
    """Run a command without a shell; return (exit code, stdout+stderr text)."""
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    except FileNotFoundError as exc:
        return 127, str(exc)
    return proc.returncode, (proc.stdout + proc.stderr).strip()


def shell(command: str, stdin: str | None = None) -> tuple[int, str]:
    """Run a role-declared shell command (optionally fed ``stdin``); return (exit code, output)."""
    return run(["/bin/sh", "-c", command], input=stdin)


# ---------------------------------------------------------------- facts


def read(path: str, default: str | None = "") -> str | None:
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return default


def memory_mb() -> int:
    total = 0
    for line in read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            total = int(line.split()[1]) // 1024
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        value = read(limit_file).strip()
        if value.isdigit() and int(value) // (1024 * 1024) < total:
            total = int(value) // (1024 * 1024)
    return total


def os_release() -> dict[str, str]:
    info = {}
    for line in read("/etc/os-release").splitlines():
        if "=" in line:
            key, value = line.split("=", 1)
            info[key.lower()] = value.strip('"')
    return {"id": info.get("id", ""), "version_id": info.get("version_id", ""),
            "codename": info.get("version_codename", ""), "pretty_name": info.get("pretty_name", "")}


def addresses() -> list[dict[str, Any]]:
    code, out = run(["ip", "-j", "addr", "show"])
    found = []
    if code == 0:
        for iface in json.loads(out or "[]"):
            for addr in iface.get("addr_info", []):
                if addr.get("family") in ("inet", "inet6") and iface.get("ifname") != "lo":
                    found.append({"interface": iface["ifname"], "address": addr["local"],
                                  "prefix": addr.get("prefixlen"), "family": addr["family"]})
    return found


def disks() -> list[dict[str, Any]]:
    found = []
    for name in sorted(os.listdir("/sys/block")) if os.path.isdir("/sys/block") else []:
        if name.startswith(("loop", "ram", "zram", "dm-")):
            continue
        rotational = read(f"/sys/block/{name}/queue/rotational").strip()
        size = read(f"/sys/block/{name}/size").strip()
        found.append({"name": name, "rotational": rotational == "1",
                      "size_gb": round(int(size or 0) * 512 / 1e9, 1)})
    return found


def nofile_hard() -> int:
    """The open-files hard limit of PID 1: what services can be given at most without CAP_SYS_RESOURCE."""
    for line in read("/proc/1/limits").splitlines():
        if line.startswith("Max open files"):
            value = line.split()[4]
            return int(value) if value.isdigit() else 1048576
    return 1048576


def facts(_request: Request) -> Answer:
    code, virt = run(["systemd-detect-virt"])
    container_code, container = run(["systemd-detect-virt", "--container"])
    ipv4 = [a for a in addresses() if a["family"] == "inet"]
    return {
        "hostname": os.uname().nodename,
        "cpus": len(os.sched_getaffinity(0)),
        "memory_mb": memory_mb(),
        "os": os_release(),
        "init": "systemd" if os.path.isdir("/run/systemd/system") else os.path.basename(os.readlink("/proc/1/exe")),
        "virtualization": virt if code == 0 else "none",
        "container": container if container_code == 0 else "",
        "disks": disks(),
        "addresses": addresses(),
        "primary_address": ipv4[0]["address"] if ipv4 else "",
        "proc_sys_writable": os.access("/proc/sys/net/core/somaxconn", os.W_OK),
        "nofile_hard": nofile_hard(),
        "python": sys.version.split()[0],
    }


# ---------------------------------------------------------------- probe


def file_state(path: str, want_sha: str | None = None) -> Answer:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return {"exists": False}
    state = {"exists": True, "owner": owner_name(st.st_uid), "group": group_name(st.st_gid),
             "mode": format(stat.S_IMODE(st.st_mode), "04o"), "kind": kind(st.st_mode)}
    if state["kind"] == "link":
        state["target"] = os.readlink(path)
    if state["kind"] == "file":
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC), "rb") as handle:
            data = handle.read()
        state["sha256"] = hashlib.sha256(data).hexdigest()
        if want_sha and want_sha != state["sha256"] and len(data) <= MAX_DIFF_BYTES:
            state["content_b64"] = base64.b64encode(data).decode()
    return state


def kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "link"
    if stat.S_ISDIR(mode):
        return "directory"
    return "file" if stat.S_ISREG(mode) else "other"


def owner_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def packages_state(names: list[str]) -> Answer:
    code, out = run(["dpkg-query", "-W", "-f", "${Package}\t${db:Status-Abbrev}\t${Version}\n", *names])
    installed = {}
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[1].startswith("ii"):
            installed[parts[0]] = parts[2]
    return {"installed": installed}


def services_state(names: list) -> list:
    """Each service's activity and boot setting, in one ``systemctl show`` for all of them."""
    code, out = run(["systemctl", "show", "--property=ActiveState,UnitFileState", "--", *names])
    blocks = out.split("\n\n") if code == 0 else []
    states = []
    for index in range(len(names)):
        props = dict(line.split("=", 1) for line in blocks[index].splitlines() if "=" in line) \
            if index < len(blocks) else {}
        states.append({"active": props.get("ActiveState") or "unknown",
                       "enabled": props.get("UnitFileState") or "not-found"})
    return states


def service_state(name: str) -> Answer:
    """One service's activity and boot setting."""
    return services_state([name])[0]


def sysctl_state(path: str) -> Answer:
    """A kernel setting's value; for a choice file such as ``always madvise [never]``, the chosen one."""
    value = read(path, None)
    if value is not None and "[" in value:
        value = value.split("[", 1)[1].split("]", 1)[0]
    return {"value": " ".join(value.split()) if value is not None else None,
            "writable": os.access(path, os.W_OK)}


def account_state(kind_: str, name: str) -> Answer:
    code, out = run(["getent", "passwd" if kind_ == "user" else "group", name])
    return {"exists": code == 0, "entry": out if code == 0 else ""}


def releases_state(path: str, link: str) -> Answer:
    entries = []
    if os.path.isdir(path):
        for name in os.listdir(path):
            full = os.path.join(path, name)
            if os.path.isdir(full) and not os.path.islink(full):
                entries.append({"name": name, "mtime": os.lstat(full).st_mtime})
    return {"entries": entries, "current": os.readlink(link) if os.path.islink(link) else ""}


def guard_state(item: Request) -> Answer:
    if item.get("creates"):
        return {"satisfied": os.path.exists(item["creates"])}
    if item.get("unless"):
        code, _ = shell(item["unless"])
        return {"satisfied": code == 0}
    return {"satisfied": False}


def psql(database: str, script: str, stop_on_error: bool = False) -> subprocess.CompletedProcess:
    """psql run as the postgres superuser over the local socket, the script on standard input. Run as that user
    directly (no runuser: its PAM session costs more than the query)."""
    account = pwd.getpwnam("postgres")
    argv = ["psql", "-X", "-q", "-At", "-d", database, *(["-v", "ON_ERROR_STOP=1"] if stop_on_error else [])]
    env = {"PATH": "/usr/bin:/bin", "HOME": account.pw_dir, "LANG": "C.UTF-8", "PGAPPNAME": "fabstack"}
    return subprocess.run(argv, input=script, capture_output=True, text=True, env=env, cwd=account.pw_dir,
                          user=account.pw_uid, group=account.pw_gid, extra_groups=[])


def psql_quoted(name: str) -> str:
    """A psql meta-command argument (``\\connect``'s database name), single-quoted."""
    return "'" + name.replace("'", "''") + "'"


def pgsql_values(queries: list) -> list:
    """Each (database, query)'s single value cast to text (a boolean is 'true'; NULL is ''; None when the query
    failed), all read in one psql session that connects to each database in turn. A failed query (a table not
    there yet) or an unreachable database fails alone."""
    order = sorted(range(len(queries)), key=lambda i: queries[i][0] != "postgres")  # postgres exists first
    lines, current = [], None
    for index in order:
        database, query = queries[index]
        if database != current:
            if current is not None:
                lines.append(f"\\connect {psql_quoted(database)}")
            current = database
        lines.append(f"select '{index}:' || encode(convert_to(coalesce(({query.strip().rstrip(';')})::text, ''), "
                     "'UTF8'), 'hex');")
    values: list = [None] * len(queries)
    if not queries:
        return values
    try:
        proc = psql(queries[order[0]][0], "\n".join(lines) + "\n")
    except (FileNotFoundError, KeyError, PermissionError):  # no psql or no postgres account: nothing is met
        return values
    for line in proc.stdout.splitlines():
        index, sep, encoded = line.partition(":")
        if sep and index.isdigit() and int(index) < len(queries):
            values[int(index)] = bytes.fromhex(encoded).decode()
    return values


def pgsql_met(value: Any, expected: str) -> bool:
    """A statement's guard is met when its query's value is the expected one."""
    return value == expected


def pgsql_states(items: list) -> list:
    """Every SQL guard's state, all read in one psql session."""
    values = pgsql_values([(item["database"], item["query"]) for item in items])
    return [{"satisfied": pgsql_met(value, item["expected"])} for value, item in zip(values, items, strict=True)]


def read_state(item: Request) -> Answer:
    """One item's current state, read as its kind says."""
    if item.get("type") not in KINDS:
        return {"error": f"unknown probe type {item.get('type')}"}
    return KINDS[item["type"]].read(item)


def read_states(items: list, pool: Pool) -> list:
    """Every item's state, in order: kinds that read many items at once do so in one go, the rest overlap."""
    states: list = [None] * len(items)
    batched: dict = {}
    for index, item in enumerate(items):
        kind = KINDS.get(item.get("type"))
        if kind is not None and kind.read_many is not None:
            batched.setdefault(item["type"], []).append(index)
    # the batched reads (one command each) overlap with each other and with the single reads
    running = [(indexes, pool.submit(KINDS[kind_name].read_many, [items[i] for i in indexes]))
               for kind_name, indexes in batched.items()]
    rest = [i for i in range(len(items)) if items[i].get("type") not in batched]
    for index, state in zip(rest, pool.map(read_state, [items[i] for i in rest]), strict=True):
        states[index] = state
    for indexes, future in running:
        for index, state in zip(indexes, future.result(), strict=True):
            states[index] = state
    return states


# Reads wait on subprocesses (systemctl, dpkg-query, a guard's psql), so they overlap; guards only read.
PROBE_THREADS = 8


def probe(request: Request) -> Answer:
    """The current state of every item; with ``"facts": true`` the host's facts too, in the same round trip."""
    pool = Pool(PROBE_THREADS)
    gathered = pool.submit(facts, request) if request.get("facts") else None
    answer: Answer = {"states": read_states(request["items"], pool), "pending": Pending.read(),
                      "lock": lock_state(request.get("lock_token", ""))}
    if gathered is not None:
        answer["facts"] = gathered.result()
    return answer


# ---------------------------------------------------------------- comparisons
# Each comparison is written here once: the controller plans with these same functions (fabstack.engine.operations
# imports this module), and every apply step re-checks with them before it acts.

ATTRS = ("owner", "group", "mode")


def changed_attrs(state: Answer, want: Request) -> Answer:
    """The owner, group and mode that differ from the wanted ones (a wanted None is left as it is)."""
    return {a: want[a] for a in ATTRS if want.get(a) is not None and state.get(a) != want[a]}


def file_matches(state: Answer, sha256: str) -> bool:
    """A regular file with exactly the wanted content."""
    return state.get("kind") == "file" and state.get("sha256") == sha256


def link_matches(state: Answer, target: str) -> bool:
    """A symbolic link to exactly the wanted target."""
    return state.get("kind") == "link" and state.get("target") == target


def missing_packages(state: Answer, names: list) -> list:
    """The wanted packages that are not installed, in the wanted order."""
    installed = state.get("installed", {})
    return [n for n in names if n not in installed]


def service_actions(state: Answer, want: Request) -> list:
    """The systemctl verbs, in order, that take a service from its state to the wanted one (none: it is right).

    A masked service that must run is unmasked first; its boot setting is read again after that.
    """
    is_masked = state.get("enabled") == "masked"
    active = state.get("active") == "active"
    # a unit still starting (or reloading, or stopping) has a process that must be stopped: only an inactive or
    # failed one is down
    down = state.get("active") in ("inactive", "failed")
    if want.get("masked"):
        return [] if is_masked and down else ["stop", "mask"]
    verbs = ["unmask"] if is_masked else []
    enabled = want.get("enabled")
    if enabled is not None and (is_masked or (state.get("enabled") == "enabled") != enabled):
        verbs.append("enable" if enabled else "disable")
    if want.get("state") == "started" and not active:
        verbs.append("start")
    elif want.get("state") != "started" and not down:
        verbs.append("stop")
    return verbs


def sysctl_matches(state: Answer, value: str) -> bool:
    """The kernel already holds the wanted value."""
    return state.get("value") == value


# ---------------------------------------------------------------- apply


class StepFailed(Exception):
    """A step that could not be applied; the message is shown to the user."""


# ---------------------------------------------------------------- no-follow file access
# Root writes into folders that service accounts own (postgres's home, a release's storage/). Every path is
# walked one component at a time from "/" with O_NOFOLLOW, and a link is followed only where nobody but root (or
# this program's own user) could have made it; files are created under a random name with O_EXCL, and owner and
# mode are set on the open descriptor, never by path.

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
MAX_LINK_HOPS = 40


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


UMASK = _read_umask()


def only_we_write(dir_fd: int) -> bool:
    """Whether only root (or this program's user) can change the entries of the folder open as ``dir_fd``."""
    st = os.fstat(dir_fd)
    return st.st_uid in (0, os.geteuid()) and not st.st_mode & 0o022


def open_dir(path: str, create: bool = False) -> int:
    """A descriptor of folder ``path``, reached without following a link that anyone but root could have made
    (``create``: missing folders made, mode 0755 less the umask). Raises StepFailed for a link it will not follow.
    """
    parts = path.split("/")
    stack = [os.open("/", DIR_FLAGS)]
    hops = 0
    try:
        while parts:
            name = parts.pop(0)
            if name in ("", "."):
                continue
            if name == "..":
                if len(stack) > 1:
                    os.close(stack.pop())
                continue
            try:
                stack.append(os.open(name, DIR_FLAGS, dir_fd=stack[-1]))
                continue
            except FileNotFoundError:
                if not create:
                    raise
                os.mkdir(name, 0o755, dir_fd=stack[-1])
                stack.append(os.open(name, DIR_FLAGS, dir_fd=stack[-1]))
                continue
            except OSError as exc:
                st = os.stat(name, dir_fd=stack[-1], follow_symlinks=False)
                if not stat.S_ISLNK(st.st_mode):
                    raise StepFailed(f"{path}: {name} is not a directory") from exc
            if not only_we_write(stack[-1]) or hops >= MAX_LINK_HOPS:
                raise StepFailed(f"{path}: refusing to follow the link {name} (someone other than root could "
                                 "have made it)")
            hops += 1
            target = os.readlink(name, dir_fd=stack[-1])
            if target.startswith("/"):
                while len(stack) > 1:
                    os.close(stack.pop())
            parts = target.split("/") + parts
        return stack.pop()
    finally:
        for fd in stack:
            os.close(fd)


class MissingFolder(StepFailed):
    """A path whose folder does not exist."""


class Place:
    """A path's folder, open without following links root did not make, and the name in it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.name = os.path.basename(path)
        if self.name in ("", ".", ".."):
            raise StepFailed(f"{path}: not a file name")
        try:
            self.dir_fd = open_dir(os.path.dirname(path) or "/")
        except FileNotFoundError as exc:
            raise MissingFolder(f"directory {os.path.dirname(path)} does not exist") from exc

    def __enter__(self) -> "Place":
        return self

    def __exit__(self, *_exc: object) -> None:
        os.close(self.dir_fd)

    def lstat(self) -> Any:
        try:
            return os.stat(self.name, dir_fd=self.dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    def temp_name(self) -> str:
        return f".{self.name}.{os.urandom(6).hex()}.fabstack-new"

    def create(self, data: bytes, ids: tuple[int, int], mode: int) -> str:
        """A new file beside the name holding ``data`` with its final owner (uid, gid; -1 keeps ours) and mode;
        returns its name."""
        tmp = self.temp_name()
        fd = os.open(tmp, NEW_FILE_FLAGS, 0o600, dir_fd=self.dir_fd)
        try:
            with os.fdopen(fd, "wb", closefd=False) as handle:
                handle.write(data)
                handle.flush()
                os.fsync(fd)
            if ids != (-1, -1):
                os.fchown(fd, *ids)
            os.fchmod(fd, mode)
        except BaseException:
            os.unlink(tmp, dir_fd=self.dir_fd)
            raise
        finally:
            os.close(fd)
        return tmp

    def link(self, target: str) -> str:
        """A new link beside the name pointing at ``target``; returns its name."""
        tmp = self.temp_name()
        os.symlink(target, tmp, dir_fd=self.dir_fd)
        return tmp

    def replace(self, tmp: str) -> None:
        os.replace(tmp, self.name, src_dir_fd=self.dir_fd, dst_dir_fd=self.dir_fd)

    def unlink(self, name: str | None = None) -> None:
        os.unlink(name or self.name, dir_fd=self.dir_fd)

    def open_existing(self) -> int:
        """The file or folder itself, refusing a link (O_NOFOLLOW), without blocking on a FIFO."""
        try:
            return os.open(self.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                           dir_fd=self.dir_fd)
        except OSError as exc:
            raise StepFailed(f"{self.path}: refusing to change a link or special file ({exc.strerror})") from exc


def ids_of(owner: str | None, group: str | None) -> tuple[int, int]:
    try:
        return (pwd.getpwnam(owner).pw_uid if owner else -1, grp.getgrnam(group).gr_gid if group else -1)
    except KeyError as exc:
        raise StepFailed(f"unknown owner or group: {exc}") from exc


def set_fd_attrs(fd: int, owner: str | None, group: str | None, mode: int | None) -> None:
    ids = ids_of(owner, group)
    if ids != (-1, -1):
        os.fchown(fd, *ids)
    if mode is not None:
        os.fchmod(fd, mode)


def set_attrs(path: str, owner: str | None, group: str | None, mode: str | None) -> None:
    """Owner and mode of an existing file or folder, set on the object itself (never through a link)."""
    with Place(path) as place:
        fd = place.open_existing()
        try:
            set_fd_attrs(fd, owner, group, int(mode, 8) if mode else None)
        finally:
            os.close(fd)


class Journal:
    """Old copies of the files a role replaces (content or link target, owner, mode), kept in memory, so a failed
    role can be put back as it was."""

    def __init__(self) -> None:
        self.saved = []

    def remember(self, path: str) -> None:
        with Place(path) as place:
            st = place.lstat()
            saved = None
            if st is not None and stat.S_ISLNK(st.st_mode):
                saved = ("link", os.readlink(place.name, dir_fd=place.dir_fd), st)
            elif st is not None and stat.S_ISREG(st.st_mode):
                fd = place.open_existing()
                with os.fdopen(fd, "rb") as handle:
                    saved = ("file", handle.read(), st)
        self.saved.append((path, saved))

    def rollback(self) -> None:
        for path, saved in reversed(self.saved):
            with Place(path) as place:
                if saved is None:
                    if place.lstat() is not None:
                        place.unlink()
                    continue
                what, content, st = saved
                if what == "link":
                    tmp = place.link(content)
                else:
                    tmp = place.create(content, (st.st_uid, st.st_gid), stat.S_IMODE(st.st_mode))
                place.replace(tmp)
        self.saved = []

    def commit(self) -> None:
        self.saved = []


def last_lines(text: str, count: int = 3) -> str:
    return " | ".join(text.strip().splitlines()[-count:])


# Each apply_* function re-checks the state first and returns False when there was nothing to do: steps may be
# sent on the strength of a probe made before packages were installed in the same run.


def apply_file(step: Request, journal: Journal) -> bool:
    path = step["path"]
    state = file_state(path)
    if file_matches(state, step["sha256"]):
        if not changed_attrs(state, step):
            return False
        set_attrs(path, step.get("owner"), step.get("group"), step.get("mode"))
        return True
    data = base64.b64decode(step["content_b64"])
    with Place(path) as place:
        mode = step.get("mode")
        tmp = place.create(data, ids_of(step.get("owner"), step.get("group")),
                           int(mode, 8) if mode else 0o666 & ~UMASK)
        validate = step.get("validate")
        if validate and "%s" in validate:
            code, out = shell(validate.replace("%s", os.path.join(os.path.dirname(path), tmp)))
            if code != 0:
                place.unlink(tmp)
                raise StepFailed(f"validation failed ({validate}): {last_lines(out)}")
        journal.remember(path)
        place.replace(tmp)
    if validate and "%s" not in validate:
        code, out = shell(validate)
        if code != 0:
            raise StepFailed(f"validation failed ({validate}): {last_lines(out)}")
    return True


def apply_attrs(step: Request, _journal: Journal) -> bool:
    if not changed_attrs(file_state(step["path"]), step):
        return False
    set_attrs(step["path"], step.get("owner"), step.get("group"), step.get("mode"))
    return True


def apply_directory(step: Request, _journal: Journal) -> bool:
    state = file_state(step["path"])
    if state.get("kind") == "directory" and not changed_attrs(state, step):
        return False
    fd = open_dir(step["path"], create=True)
    try:
        mode = step.get("mode")
        set_fd_attrs(fd, step.get("owner"), step.get("group"), int(mode, 8) if mode else None)
    finally:
        os.close(fd)
    return True


def apply_symlink(step: Request, journal: Journal) -> bool:
    path = step["path"]
    state = file_state(path)
    if link_matches(state, step["target"]):
        return False
    if state.get("kind") == "directory":
        raise StepFailed(f"{path} is a directory, not replacing it with a link")
    with Place(path) as place:
        tmp = place.link(step["target"])
        journal.remember(path)
        place.replace(tmp)
    return True


def apply_absent(step: Request, journal: Journal) -> bool:
    path = step["path"]
    try:
        opened = Place(path)
    except MissingFolder:
        return False  # no folder, no file: already absent
    with opened as place:
        st = place.lstat()
        if st is None:
            return False
        if stat.S_ISDIR(st.st_mode):
            raise StepFailed(f"{path} is a directory; not removing it")
        journal.remember(path)
        place.unlink()
    return True


def apply_releases(step: Request, _journal: Journal) -> bool:
    """Remove the named release folders, re-checking that each is a plain folder and not what the link serves."""
    path = os.path.realpath(step["path"])
    serving = os.path.realpath(step["link"]) if os.path.islink(step["link"]) else ""
    removed = False
    for name in step["remove"]:
        full = os.path.join(path, name)
        if "/" in name or name in ("", ".", "..") or full == serving or os.path.islink(full) \
                or not os.path.isdir(full):
            continue
        lazy_shutil().rmtree(full)
        removed = True
    return removed


def apt_lists_age() -> float:
    lists = "/var/lib/apt/lists"
    times = [os.path.getmtime(os.path.join(lists, n)) for n in os.listdir(lists) if n.endswith("Packages")] \
        if os.path.isdir(lists) else []
    return time.time() - max(times) if times else float("inf")


def apply_packages(step: Request, _journal: Journal) -> bool:
    missing = missing_packages(packages_state(step["names"]), step["names"])
    if not missing:
        return False
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if apt_lists_age() > step.get("cache_valid_time", 86400):
        code, out = run(["apt-get", "update", "-q"], env=env)
        if code != 0:
            raise StepFailed(f"apt-get update failed: {last_lines(out)}")
    code, out = run(["apt-get", "install", "-y", "-q", "--no-install-recommends",
                     "-o", "Dpkg::Options::=--force-confold", *missing], env=env)
    if code != 0:
        raise StepFailed(f"apt-get install failed: {last_lines(out)}")
    return True


# Where unit files and their drop-ins live: one written by this role means systemd must read them again.
UNIT_DIRS = ("/etc/systemd/system/", "/lib/systemd/system/", "/usr/lib/systemd/system/")


def apply_service(step: Request, journal: Journal) -> bool:
    name = step["name"]
    verbs = service_actions(service_state(name), step)
    unit_written = any(path.startswith(UNIT_DIRS) for path, _ in journal.saved)
    if verbs and (unit_written or run(["systemctl", "show", "--property=NeedDaemonReload", "--value", "--",
                                       name])[1].strip() == "yes"):
        # its unit file or a drop-in changed in this run: start it as the files now say, not as systemd last read
        # them (the role's own "reload systemd" handler would only come after). A drop-in in a folder systemd did
        # not know yet does not show as NeedDaemonReload, hence the role's own writes are looked at too.
        run(["systemctl", "daemon-reload"])
    unmasked = verbs[:1] == ["unmask"]
    if unmasked:
        systemctl("unmask", name)
        verbs = service_actions(service_state(name), step)
    if {"start", "restart"} & set(verbs):
        # a unit that crash-looped before its config was in place (a package's own start, say) may have hit its
        # start limit: that history must not stop the start the role asks for
        run(["systemctl", "reset-failed", name])
    systemctl_all(verbs, name)
    return unmasked or bool(verbs)


# A unit's own timeouts can be unbounded (Debian's postgresql@ waits forever to start, an hour to stop): a job
# that outlasts this fails the step instead of holding the whole run.
SERVICE_JOB_SECONDS = 300


def systemctl(verb: str, name: str) -> None:
    try:
        code, out = run(["systemctl", verb, name], timeout=SERVICE_JOB_SECONDS)
    except subprocess.TimeoutExpired as exc:
        state = run(["systemctl", "show", "--property=ActiveState,SubState", "--", name])[1]
        raise StepFailed(f"systemctl {verb} {name} did not finish within {SERVICE_JOB_SECONDS} s "
                         f"({' '.join(state.split())}); see journalctl -u {name}") from exc
    if code != 0:
        raise StepFailed(f"systemctl {verb} {name} failed: {last_lines(out)}")


def systemctl_all(verbs: list, name: str) -> None:
    for verb in verbs:
        systemctl(verb, name)


def apply_sysctl(step: Request, _journal: Journal) -> bool:
    path = step["path"]
    state = sysctl_state(path)
    if sysctl_matches(state, step["value"]):
        return False
    if not state["writable"]:
        raise StepFailed(f"cannot set {path}: read-only here")
    try:
        with open(path, "w") as handle:
            handle.write(str(step["value"]))
    except OSError as exc:
        raise StepFailed(f"cannot set {path}: {exc.strerror}") from exc
    return True


def apply_account(step: Request, _journal: Journal) -> bool:
    if account_state(step["kind"], step["name"])["exists"]:
        return False
    if step["kind"] == "group":
        argv = ["groupadd", *(["--system"] if step.get("system") else []), step["name"]]
    else:
        argv = ["useradd", "--create-home" if step.get("home") else "--no-create-home",
                "--shell", step.get("shell") or "/usr/sbin/nologin"]
        if step.get("system"):
            argv.append("--system")
        if step.get("group"):
            argv += ["--gid", step["group"]]
        if step.get("home"):
            argv += ["--home-dir", step["home"]]
        argv.append(step["name"])
    code, out = run(argv)
    if code != 0:
        raise StepFailed(last_lines(out))
    return True


def apply_command(step: Request, _journal: Journal) -> bool:
    if guard_state(step)["satisfied"]:
        return False
    code, out = shell(step["command"], step.get("stdin"))
    if code != 0:
        raise StepFailed(f"exit status {code}: {last_lines(out)}")
    return True


def apply_pgsql(step: Request, _journal: Journal) -> bool:
    if pgsql_states([step])[0]["satisfied"]:
        return False
    proc = psql(step["database"], step["sql"], stop_on_error=True)
    if proc.returncode != 0:
        raise StepFailed(f"psql exit status {proc.returncode}: {last_lines(proc.stdout + proc.stderr)}")
    return True


# ---------------------------------------------------------------- the kinds
# Every operation kind the host understands: the fields of its probe, how its state is read, and each step type
# it may send with that step's fields and applier. fabstack.engine.operations has one class per kind, and a unit test
# holds the two sides to this table (kinds, fields and step types).


class Kind:
    """One operation kind as the host sees it."""

    def __init__(self, probe_fields: tuple, read: Any, steps: dict, read_many: Any = None) -> None:
        self.probe_fields = probe_fields
        self.read = read
        self.steps = steps  # step type -> (fields, applier)
        self.read_many = read_many  # items -> states, for kinds one command reads for many items


def read_path(item: Request) -> Answer:
    return file_state(item["path"], item.get("sha256"))


KINDS = {
    "file": Kind(("path", "sha256"), read_path, {
        "file": (("path", "content_b64", "sha256", "validate", *ATTRS), apply_file),
        "attrs": (("path", *ATTRS), apply_attrs)}),
    "directory": Kind(("path",), read_path, {"directory": (("path", *ATTRS), apply_directory)}),
    "symlink": Kind(("path",), read_path, {"symlink": (("path", "target"), apply_symlink)}),
    "absent": Kind(("path",), read_path, {"absent": (("path",), apply_absent)}),
    "releases": Kind(("path", "link"), lambda item: releases_state(item["path"], item["link"]),
                     {"releases": (("path", "link", "remove"), apply_releases)}),
    "packages": Kind(("names",), lambda item: packages_state(item["names"]),
                     {"packages": (("names", "cache_valid_time"), apply_packages)}),
    "service": Kind(("name",), lambda item: service_state(item["name"]),
                    {"service": (("name", "state", "enabled", "masked"), apply_service)},
                    read_many=lambda items: services_state([item["name"] for item in items])),
    "sysctl": Kind(("path",), lambda item: sysctl_state(item["path"]), {"sysctl": (("path", "value"), apply_sysctl)}),
    "account": Kind(("kind", "name"), lambda item: account_state(item["kind"], item["name"]),
                    {"account": (("kind", "name", "system", "shell", "home", "group"), apply_account)}),
    "command": Kind(("creates", "unless"), guard_state,
                    {"command": (("command", "creates", "unless", "stdin"), apply_command)}),
    "pgsql": Kind(("database", "query", "expected"), lambda item: pgsql_states([item])[0],
                  {"pgsql": (("database", "query", "expected", "sql"), apply_pgsql)}, read_many=pgsql_states),
}
APPLY = {step: applier for kind in KINDS.values() for step, (_fields, applier) in kind.steps.items()}


ROLLED_BACK = ("file", "symlink", "absent")


class Pending:
    """Handlers owed on this host, recorded before the step that makes them necessary is applied and removed once
    they have run: a run killed in between (controller or this program) leaves them here for the next run, which
    runs them even though the files no longer differ."""

    path = "/var/lib/fabstack/pending-handlers.json"

    @classmethod
    def read(cls) -> dict:
        try:
            with open(cls.path) as handle:
                data = json.load(handle)
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    @classmethod
    def write(cls, data: dict) -> None:
        if not data and not os.path.exists(cls.path):
            return
        os.makedirs(os.path.dirname(cls.path), mode=0o700, exist_ok=True)
        tmp = cls.path + ".tmp"
        with open(tmp, "w") as handle:
            json.dump(data, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, cls.path)

    @classmethod
    def owe(cls, role: str, handlers: dict) -> None:
        """Record handlers (name -> command) as owed for a role, durably, before the step that needs them."""
        data = cls.read()
        owed = data.setdefault(role, {})
        if all(owed.get(name) == command for name, command in handlers.items()):
            return
        owed.update(handlers)
        cls.write(data)

    @classmethod
    def settle(cls, role: str, names: set) -> None:
        """Forget handlers of a role: they ran, or what made them owed was rolled back."""
        data = cls.read()
        owed = data.get(role, {})
        if not any(name in owed for name in names):
            return
        for name in names:
            owed.pop(name, None)
        if not owed:
            data.pop(role, None)
        cls.write(data)


def checkpoint(name: str) -> None:
    """A point between a role's steps and handlers; fault-injection tests make it kill the run here."""


def apply_role(role: Request) -> tuple[list[Answer], bool]:
    """Apply one role's steps in order; on a failure put its files back and skip its handlers."""
    results = []
    journal = Journal()
    name = role["name"]
    commands = {h["name"]: h["command"] for h in role["handlers"]}
    owed_before = Pending.read().get(name, {})
    notified = set(owed_before)  # owed by a run that was killed before they ran
    for step in role["steps"]:
        wanted = {n: commands[n] for n in step.get("notify", []) if n in commands}
        Pending.owe(name, wanted)
        checkpoint("before step")
        started = time.monotonic()
        try:
            changed = APPLY[step["type"]](step, journal)
        except (StepFailed, OSError) as exc:
            journal.rollback()
            Pending.settle(name, set(commands) - set(owed_before))
            for earlier in results:
                if earlier["status"] == "changed" and earlier["type"] in ROLLED_BACK:
                    earlier.update(status="skipped", message=f"rolled back: role {name} failed")
            results.append({"id": step["id"], "status": "failed", "message": str(exc)})
            return results, False
        checkpoint("after step")
        results.append({"id": step["id"], "type": step["type"], "status": "changed" if changed else "ok",
                        "seconds": round(time.monotonic() - started, 3)})
        if changed:
            notified.update(step.get("notify", []))
    journal.commit()
    Pending.settle(name, (set(commands) - notified) - set(owed_before))  # recorded, but nothing changed for them
    order = [n for n in commands if n in notified] + [n for n in owed_before if n not in commands]
    for handler in order:
        checkpoint("before handler")
        started = time.monotonic()
        code, out = shell(commands.get(handler) or owed_before[handler])
        status = "changed" if code == 0 else "failed"
        results.append({"id": "handler " + handler, "role": name, "status": status,
                        "message": "" if code == 0 else last_lines(out),
                        "seconds": round(time.monotonic() - started, 3)})
        if code != 0:
            return results, False
        Pending.settle(name, {handler})
        checkpoint("after handler")
    return results, True


def apply(request: Request) -> Answer:
    results = []
    for role in request["roles"]:
        role_results, ok = apply_role(role)
        results.extend(role_results)
        if not ok:
            break
    return {"results": results}


# ---------------------------------------------------------------- the host's lock
# One command at a time changes a host, whoever runs it: the lock names its holder (owner, command, since when,
# and a token only that run knows). A lock older than the request's ``stale_after`` seconds is taken over. The
# generation counts the locks ever taken here: a run that read the host at generation N takes the lock only if
# nobody took it in between (what it planned from may have changed).

LOCK_PATH = "/var/lib/fabstack/lock.json"
LOCK_GENERATION = "/var/lib/fabstack/lock-generation"


def read_private(path: str) -> str:
    """A root-only file's text ('' when absent); never follows a link."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return ""
    with os.fdopen(fd) as handle:
        return handle.read()


def lock_state(token: str = "") -> Answer:
    """Who holds the host's lock (without its token), for how long, whether ``token`` is theirs, and the
    generation. A lock file that cannot be read counts as held by nobody known."""
    try:
        text = read_private(LOCK_PATH)
        age = time.time() - os.lstat(LOCK_PATH).st_mtime if text else 0.0
    except OSError:
        text, age = "{}", 0.0
    try:
        held = json.loads(text) if text else {}
    except ValueError:
        held = {}
    held = held if isinstance(held, dict) else {}
    generation = read_private(LOCK_GENERATION).strip()
    return {"held": {k: v for k, v in held.items() if k != "token"}, "locked": bool(text), "age": age,
            "mine": bool(token) and held.get("token") == token,
            "generation": int(generation) if generation.isdigit() else 0}


def lock(request: Request) -> Answer:
    """Take the host's lock for ``holder`` unless another run holds it (not stale, and ``force`` not set) or,
    with ``generation`` given, the lock was taken since that generation was read: ``{"taken": true}`` or
    ``{"taken": false, "state": lock_state}``."""
    holder = request["holder"]
    os.makedirs(os.path.dirname(LOCK_PATH), mode=0o700, exist_ok=True)
    for _attempt in range(3):
        state = lock_state(holder["token"])
        if state["mine"]:
            return {"taken": True}
        if request.get("generation") is not None and state["generation"] != request["generation"]:
            return {"taken": False, "state": state}
        if state["locked"]:
            if not (request.get("force") or state["age"] > float(request["stale_after"])):
                return {"taken": False, "state": state}
            with contextlib.suppress(FileNotFoundError):
                os.unlink(LOCK_PATH)
        try:
            fd = os.open(LOCK_PATH, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            continue  # another run took it in between: look again
        with os.fdopen(fd, "w") as handle:
            json.dump(holder, handle)
        write_private(LOCK_GENERATION, f"{state['generation'] + 1}\n")
        return {"taken": True}
    return {"taken": False, "state": lock_state(holder["token"])}


def write_private(path: str, text: str) -> None:
    """Replace a root-only file's text atomically (a temporary file beside it, renamed over it)."""
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


def unlock(request: Request) -> Answer:
    """Give the host's lock up, if the run with ``token`` holds it."""
    if lock_state(request["token"])["mine"]:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(LOCK_PATH)
        return {"released": True}
    return {"released": False}


def lock_status(request: Request) -> Answer:
    """The host's lock as ``lock_state`` reads it."""
    return lock_state(request.get("token", ""))


ACTIONS = {"facts": facts, "probe": probe, "apply": apply, "lock": lock, "unlock": unlock, "lock_status": lock_status}


def main() -> None:
    request = json.loads(sys.stdin.read())
    answer = ACTIONS[request["action"]](request)
    sys.stdout.write(json.dumps(answer))


if __name__ == "__main__":
    main()
