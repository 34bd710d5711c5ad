"""Running an app's own build commands on the controller as untrusted code.

``npm ci`` runs lifecycle scripts of every dependency, composer may run plugins, ``pip wheel`` runs a source
package's setup code: all of it is the app repository's code (docs/security.md). A build step therefore sees a
scrubbed environment (none of fabstack's variables, no SSH agent, a throwaway HOME beside the tree) and, when the
controller runs as root, runs as an unprivileged user who owns only the build folder, so it cannot read the vault
password file, ``.fabstack/`` or the deploy key.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

from fabstack.engine.errors import FabstackError

# The only variables of ours a build sees: where tools are, the locale, and how to reach package indexes (a
# team's mirror or proxy). Anything else (vault password, SSH agent, cloud credentials) stays out.
PASSED_THROUGH = ("PATH", "LANG", "LC_ALL", "TZ", "http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY",
                  "HTTPS_PROXY", "NO_PROXY", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS",
                  "PIP_TRUSTED_HOST", "npm_config_registry", "NPM_CONFIG_REGISTRY")
# Who runs build steps when the controller runs as root.
BUILD_USER = "nobody"
HOME_NAME = "home"


def home_of(tree: Path) -> Path:
    """The build's throwaway HOME, beside the tree in the build's own scratch folder."""
    return tree.parent / HOME_NAME


def environment(tree: Path) -> dict[str, str]:
    """What a build step's process sees: the passed-through variables and a HOME, caches and TMPDIR of its own."""
    home = home_of(tree)
    env = {key: os.environ[key] for key in PASSED_THROUGH if key in os.environ}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.update(HOME=str(home), TMPDIR=str(home), XDG_CACHE_HOME=str(home / ".cache"),
               COMPOSER_HOME=str(home / ".composer"), npm_config_cache=str(home / ".npm"),
               npm_config_update_notifier="false", PIP_DISABLE_PIP_VERSION_CHECK="1")
    return env


def build_user() -> pwd.struct_passwd | None:
    """The account build steps run as: ``nobody`` when we are root, else none (we are already unprivileged)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(BUILD_USER)
    except KeyError as exc:
        raise FabstackError(f"no user {BUILD_USER} on this machine to run build steps as", key="build") from exc


def hand_over(tree: Path) -> None:
    """Create the build's HOME and give the scratch folder to the build user (when we are root)."""
    home = home_of(tree)
    home.mkdir(mode=0o700, exist_ok=True)
    user = build_user()
    if user is None:
        return
    scratch = tree.parent
    os.chown(scratch, user.pw_uid, user.pw_gid, follow_symlinks=False)
    for base, dirs, files in os.walk(scratch):
        for name in dirs + files:
            os.chown(os.path.join(base, name), user.pw_uid, user.pw_gid, follow_symlinks=False)


def runnable_by_anyone(path: str) -> bool:
    """Whether every folder on ``path`` and the file itself are open to others (the build user is one)."""
    target = Path(path).absolute()  # the path as it will be run: a link into a private folder does not help
    return all(os.stat(p).st_mode & 0o001 for p in (target, *target.parents))


def python_for_builds() -> str:
    """The Python that runs ``pip wheel``: this one, unless the build user could not run it (a virtualenv in a
    private folder), then the system's."""
    if build_user() is None or runnable_by_anyone(sys.executable):
        return sys.executable
    return shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin") or sys.executable


def run(argv: list[str], tree: Path, what: str, timeout: float) -> None:
    """Run one build command in ``tree`` as untrusted code; a failure is one line naming ``what``."""
    if not home_of(tree).is_dir():
        hand_over(tree)
    user = build_user()
    ids = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []} if user else {}
    try:
        done = subprocess.run(argv, cwd=tree, env=environment(tree), capture_output=True, text=True,
                              timeout=timeout, check=False, stdin=subprocess.DEVNULL, **ids)  # type: ignore[call-overload]
    except FileNotFoundError as exc:
        raise FabstackError(f"{argv[0]} is not installed on this machine (apt install {argv[0]})", key="build") \
            from exc
    except OSError as exc:
        raise FabstackError(f"{what}: cannot run {argv[0]}: {exc.strerror}", key="build") from exc
    except subprocess.TimeoutExpired as exc:
        raise FabstackError(f"{what} took over {timeout:.0f} s", key="build") from exc
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()
        raise FabstackError(f"{what} failed: {last[-1] if last else done.returncode}", key="build")
