"""Run on a host as root, in an unpacked release: link the shared paths and hand the writable ones to the app's user,
following no link on the way.

The release is root's (unpacked with ``--no-same-owner``), but ``shared/`` holds what the app's user wrote, and an
app repository may ship links: root must not be steered by either (docs/security.md). Every path is walked one
folder at a time with ``O_NOFOLLOW``; a link anywhere on a declared path is refused with one line; ownership is
changed on the entries themselves; the first release seeds a shared folder by copying as the app's user.

Stdlib only: the file is sent as ``python3 -c`` with one JSON argument
``{"release", "shared", "user", "shared_dirs", "shared_files", "writable"}``.
"""

import json
import os
import pwd
import shutil
import stat
import subprocess
import sys

DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class Refused(Exception):
    """A declared path that would make root follow a link."""


def open_below(base: str, relative: str, create: bool) -> int:
    """The folder ``base/relative``, each component opened without following a link (made when ``create``)."""
    fd = os.open(base, DIR)
    for name in [p for p in relative.split("/") if p not in ("", ".")]:
        try:
            nxt = os.open(name, DIR, dir_fd=fd)
        except FileNotFoundError:
            if not create:
                os.close(fd)
                raise
            os.mkdir(name, 0o755, dir_fd=fd)
            nxt = os.open(name, DIR, dir_fd=fd)
        except OSError:
            os.close(fd)
            raise Refused(f"{base}/{relative}: {name} is a link or not a folder") from None
        os.close(fd)
        fd = nxt
    return fd


def lstat_at(fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def give(fd: int, uid: int, gid: int) -> None:
    """Own the folder open as ``fd`` and everything below it, links themselves included, never followed."""
    os.fchown(fd, uid, gid)
    for _root, dirs, files, root_fd in os.fwalk(dir_fd=fd, follow_symlinks=False):
        for name in dirs + files:
            os.chown(name, uid, gid, dir_fd=root_fd, follow_symlinks=False)


def remove(fd: int, name: str) -> None:
    """Remove ``name`` in the folder ``fd`` (a tree, a file or a link), following nothing."""
    st = lstat_at(fd, name)
    if st is None:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(name, dir_fd=fd)  # descriptor-based: it never follows a link
    else:
        os.unlink(name, dir_fd=fd)


def link_in(release: str, relative: str, target: str) -> None:
    """Replace ``release/relative`` with a link to ``target``."""
    parent, name = os.path.split(relative)
    fd = open_below(release, parent, create=True)
    try:
        remove(fd, name)
        os.symlink(target, name, dir_fd=fd)
    finally:
        os.close(fd)


def layout(spec: dict) -> None:
    """Shared folders (seeded once), shared files, writable folders: see the module's text."""
    release, shared = spec["release"], spec["shared"]
    account = pwd.getpwnam(spec["user"])
    uid, gid = account.pw_uid, account.pw_gid
    for sub in spec["shared_dirs"]:
        parent, name = os.path.split(sub)
        pfd = open_below(shared, parent, create=True)
        try:
            if lstat_at(pfd, name) is None:
                os.mkdir(name, 0o755, dir_fd=pfd)
                fd = os.open(name, DIR, dir_fd=pfd)
                try:
                    os.fchown(fd, uid, gid)
                    seed = f"{release}/{sub}"
                    src = open_below(release, sub, create=False) if os.path.lexists(seed) else None
                    if src is not None:
                        os.close(src)
                        subprocess.run(["runuser", "-u", spec["user"], "--", "cp", "-R", "--no-dereference",
                                        "--preserve=mode,timestamps", "--", f"{seed}/.", f"{shared}/{sub}/"],
                                       check=True)
                    give(fd, uid, gid)
                finally:
                    os.close(fd)
            else:
                os.close(open_below(shared, sub, create=False))  # it must be a folder, not a link
        finally:
            os.close(pfd)
        link_in(release, sub, f"{shared}/{sub}")
    for sub in spec["shared_files"]:
        parent, name = os.path.split(sub)
        pfd = open_below(shared, parent, create=True)
        try:
            st = lstat_at(pfd, name)
            if st is not None and not stat.S_ISREG(st.st_mode):
                raise Refused(f"{shared}/{sub}: a link or not a file")
            if st is None:  # an empty placeholder, root's, readable by the app's group, until a role writes it
                fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o640,
                             dir_fd=pfd)
                os.fchown(fd, -1, gid)
                os.close(fd)
        finally:
            os.close(pfd)
        link_in(release, sub, f"{shared}/{sub}")
    for sub in spec["writable"]:
        fd = open_below(release, sub, create=True)
        try:
            give(fd, uid, gid)
        finally:
            os.close(fd)


def main() -> int:
    try:
        layout(json.loads(sys.argv[1]))
    except (Refused, OSError, subprocess.CalledProcessError, KeyError) as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
