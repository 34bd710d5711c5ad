"""Build once, ship one file: an app's ref resolved to a commit in a cached bare mirror, its tree exported and built
on the controller, a REVISION file written, and the result packed into one compressed tarball named by its content.

Builds are cached per commit (``.fabstack/apps/NAME/``), so releasing the same commit again builds nothing.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import posixpath
import shutil
import stat
import subprocess
import tarfile
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from fabstack.engine.errors import FabstackError, shorten
from fabstack.stack.apps import App

REVISION_FILE = "REVISION"
# Seconds a git command may take (a fetch over a slow link included) before the release gives up.
GIT_TIMEOUT = 300
# Never copied from a local source folder (what a developer's machine left there), and never shipped.
_NOT_SOURCE = frozenset({".git", "__pycache__", "node_modules", ".venv", "vendor"})
_NOT_SHIPPED = {".git", "__pycache__"}


@dataclass(frozen=True)
class Artifact:
    """A built release: its revision (short commit), the full commit, the packed file and what it cost."""

    app: str
    revision: str
    commit: str
    path: str
    sha256: str
    size: int
    build_seconds: float

    @property
    def file_name(self) -> str:
        """The name it has on every host: its content's digest."""
        return Path(self.path).name


def cache_dir(root: Path, app: App) -> Path:
    """Where the app's mirror, builds and artifacts are kept on the controller."""
    return root / ".fabstack" / "apps" / app.name


def _git(args: list[str], app: App, cwd: Path | None = None, binary: bool = False) -> str | bytes:
    env = dict(os.environ, GIT_TERMINAL_PROMPT="0", GIT_ASKPASS="true")
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, timeout=GIT_TIMEOUT, env=env, check=False)
    except subprocess.TimeoutExpired as exc:
        raise FabstackError(f"git {args[0]} took over {GIT_TIMEOUT} s", key=f"apps[{app.name}].source") from exc
    if done.returncode != 0:
        last = done.stderr.decode(errors="replace").strip().splitlines()
        raise FabstackError(f"git {args[0]}: {shorten(last[-1] if last else str(done.returncode), 200)}",
                            key=f"apps[{app.name}].source")
    return done.stdout if binary else done.stdout.decode().strip()


def repository_url(root: Path, app: App) -> str:
    """The git address; a relative local path is taken from the deployment repo."""
    url = app.source.git
    if "://" in url or ":" in url.split("/")[0]:
        return url
    return str((root / url).resolve())


def resolve_commit(root: Path, app: App, ref: str | None = None) -> str:
    """The commit ``ref`` (the app's own by default) names now, after fetching into the cached bare mirror."""
    mirror = cache_dir(root, app) / "mirror.git"
    url = repository_url(root, app)
    if not (mirror / "HEAD").is_file():
        mirror.parent.mkdir(parents=True, exist_ok=True)
        _git(["clone", "--quiet", "--mirror", "--", url, str(mirror)], app)
    else:
        _git(["remote", "set-url", "origin", url], app, cwd=mirror)
        _git(["fetch", "--quiet", "--prune", "--force", "origin"], app, cwd=mirror)
    wanted = ref or app.source.ref
    if wanted.startswith("-"):
        raise FabstackError(f"not a ref: {shorten(wanted)}", key="--ref")
    return str(_git(["rev-parse", "--verify", "--quiet", "--end-of-options", f"{wanted}^{{commit}}"], app,
                    cwd=mirror))


def _folder_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(_tree_files(folder)):
        digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _tree_files(folder: Path) -> list[Path]:
    found = []
    for base, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in _NOT_SOURCE)
        found += [Path(base) / name for name in files if not (Path(base) / name).is_symlink()]
    return found


def _refuse(app: App, ref: str, path: str, problem: str) -> FabstackError:
    """The one line for an app tree holding something that could reach outside its release (docs/security.md)."""
    return FabstackError(f"ref {shorten(ref, 60)}: {shorten(path, 200)}: {problem}", key=f"apps[{app.name}]")


def _link_escapes(relative: str, target: str) -> bool:
    """Whether a link at ``relative`` (inside the tree) to ``target`` points outside the tree."""
    if not target or target.startswith("/"):
        return True
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(relative), target))
    return joined == ".." or joined.startswith("../")


def check_tree(tree: Path, app: App, ref: str, skip: frozenset[str] = frozenset()) -> None:
    """Refuse a tree (exported, or after its build) holding anything that could reach outside the release once
    unpacked as root: links to absolute paths or out of the tree, device files, FIFOs and sockets, setuid or setgid
    files, and hard links to files outside the tree. Nothing is followed or opened while looking; folders named
    in ``skip`` are not entered."""
    inodes: dict[tuple[int, int], int] = {}
    nlinks: dict[tuple[int, int], tuple[int, str]] = {}
    for base, dirs, files in os.walk(tree):
        dirs[:] = [d for d in dirs if d not in skip]
        for name in dirs + files:
            path = os.path.join(base, name)
            relative = os.path.relpath(path, tree)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                target = os.readlink(path)
                if _link_escapes(relative, target):
                    raise _refuse(app, ref, relative, f"a link to {shorten(target, 80)}, outside the release")
            elif stat.S_ISREG(st.st_mode):
                if st.st_mode & (stat.S_ISUID | stat.S_ISGID):
                    raise _refuse(app, ref, relative, "a setuid or setgid file")
                if st.st_nlink > 1:
                    inode = (st.st_dev, st.st_ino)
                    inodes[inode] = inodes.get(inode, 0) + 1
                    nlinks[inode] = (st.st_nlink, relative)
            elif not stat.S_ISDIR(st.st_mode):
                raise _refuse(app, ref, relative, "a device file, FIFO or socket")
    for inode, (count, relative) in nlinks.items():
        if inodes[inode] < count:
            raise _refuse(app, ref, relative, "a hard link to a file outside the release")


def _extract(archive: bytes, tree: Path, app: App, ref: str) -> None:
    """Unpack a ``git archive`` tarball; every member is checked first, so that nothing lands outside ``tree``
    (Debian's Python 3.11.2 lacks tarfile's filters): no absolute path or ``..``, no link leaving the tree, no
    member below a link, only files, folders and links."""
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        members = tar.getmembers()
        links = set()
        for member in members:
            name = posixpath.normpath(member.name)
            parts = name.split("/")
            if member.name.startswith("/") or ".." in parts:
                raise _refuse(app, ref, member.name, "a path outside the release")
            if not (member.isfile() or member.isdir() or member.issym()):
                raise _refuse(app, ref, member.name, "not a file, folder or link")
            if member.mode & (stat.S_ISUID | stat.S_ISGID):
                raise _refuse(app, ref, member.name, "a setuid or setgid file")
            if any("/".join(parts[:i]) in links for i in range(1, len(parts))):
                raise _refuse(app, ref, member.name, "a path through a link")
            if member.issym():
                if _link_escapes(name, member.linkname):
                    raise _refuse(app, ref, member.name,
                                  f"a link to {shorten(member.linkname, 80)}, outside the release")
                links.add(name)
        if hasattr(tarfile, "data_filter"):
            tar.extractall(tree, filter="data")
        else:
            tar.extractall(tree)  # noqa: S202 - every member checked above


def _walk(tree: Path) -> list[Path]:
    """Every entry below ``tree``, never descending into a link."""
    found = []
    for base, dirs, files in os.walk(tree):
        found += [Path(base) / name for name in dirs + files]
    return found


def pack(tree: Path, dest: Path) -> tuple[str, int]:
    """A reproducible .tar.gz of ``tree`` (sorted, owner root, no times) written under ``dest``; (sha256, size)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(_walk(tree)):
            relative = path.relative_to(tree)
            if _NOT_SHIPPED & set(relative.parts):
                continue
            info = tar.gettarinfo(str(path), arcname=str(relative))
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = 0
            info.mode = 0o755 if path.is_dir() or info.mode & 0o111 else 0o644
            if info.isreg():
                with path.open("rb") as handle:
                    tar.addfile(info, handle)
            elif info.isdir() or info.issym():
                tar.addfile(info)
    data = gzip.compress(raw.getvalue(), compresslevel=6, mtime=0)
    sha = hashlib.sha256(data).hexdigest()
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / f"{sha[:16]}.tar.gz"
    if not target.is_file():
        tmp = target.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(target)
    return sha, len(data)


def build(root: Path, app: App, ref: str | None = None) -> Artifact:
    """The app's artifact for ``ref`` (or its configured source): taken from the cache when that commit (or that
    folder content) was built before, else exported, built with the runtime's build step, and packed."""
    cache = cache_dir(root, app)
    if app.source.git:
        commit = resolve_commit(root, app, ref)
    else:
        folder = root / app.source.path
        if not folder.is_dir():
            raise FabstackError(f"app source folder {folder} does not exist", key=f"apps[{app.name}].source.path")
        check_tree(folder, app, str(app.source.path), skip=_NOT_SOURCE)  # before reading it: a FIFO blocks
        commit = _folder_digest(folder)
    record = cache / "builds" / f"{commit}.json"
    if record.is_file():
        known = Artifact(**json.loads(record.read_text()))
        if Path(known.path).is_file():
            return known
    started = time.monotonic()
    ref_name = ref or app.source.ref or str(app.source.path)
    with tempfile.TemporaryDirectory(prefix=f"fabstack-build-{app.name}-") as scratch:
        tree = Path(scratch) / "tree"
        if app.source.git:
            tree.mkdir()
            archive = _git(["archive", "--format=tar", commit], app, cwd=cache / "mirror.git", binary=True)
            assert isinstance(archive, bytes)
            _extract(archive, tree, app, ref_name)
        else:
            shutil.copytree(root / app.source.path, tree, symlinks=True,
                            ignore=shutil.ignore_patterns(*_NOT_SOURCE))
        (tree / REVISION_FILE).write_text(commit + "\n")
        app.runtime.build(app, tree)
        check_tree(tree, app, ref_name)  # what the build left ships: it is held to the same rules
        sha, size = pack(tree, cache / "artifacts")
    artifact = Artifact(app=app.name, revision=commit[:12], commit=commit,
                        path=str(cache / "artifacts" / f"{sha[:16]}.tar.gz"), sha256=sha, size=size,
                        build_seconds=round(time.monotonic() - started, 2))
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(asdict(artifact)))
    return artifact
