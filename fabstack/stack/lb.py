"""The load balancer's upstreams as files of their own, so that a release can take hosts out and put them back.

Each upstream's ``server`` lines live in ``UPSTREAMS_DIR/NAME.conf``, included by the nginx role's lb site. The
role writes every server up; a release marks its batch ``down``, reloads nginx (old workers finish their requests,
new ones skip the host), and writes them up again when the batch is healthy. A deploy after an interrupted release
puts every host back.
"""

from __future__ import annotations

import re
import shlex
import time
from typing import TYPE_CHECKING

from fabstack.engine.errors import FabstackError

if TYPE_CHECKING:
    from fabstack.engine.remote import RemoteHost

UPSTREAMS_DIR = "/etc/nginx/fabstack-upstreams"
# How long a drained host's in-flight requests may take to finish (old nginx workers to exit) before going on.
DRAIN_SECONDS = 30
_SERVER = re.compile(r"^(\s*server\s+)(\S+)(.*?)(\s+down)?;\s*$")


def upstream_path(name: str) -> str:
    """The file holding an upstream's servers."""
    return f"{UPSTREAMS_DIR}/{name}.conf"


def upstream_file(servers: list[str], max_fails: int, fail_timeout: int, header: str) -> str:
    """The ``server`` lines of one upstream, every server up."""
    lines = [f"# {header}"]
    lines += [f"server {server} max_fails={max_fails} fail_timeout={fail_timeout}s;" for server in servers]
    return "\n".join(lines) + "\n"


def with_down(text: str, down: set[str]) -> str:
    """The upstream file with exactly the servers in ``down`` (``address:port``) marked down."""
    out = []
    for line in text.splitlines():
        match = _SERVER.match(line)
        if match:
            line = f"{match[1]}{match[2]}{match[3]}{' down' if match[2] in down else ''};"
        out.append(line)
    return "\n".join(out) + "\n"


def servers_down(text: str) -> set[str]:
    """The servers an upstream file marks down."""
    return {m[2] for m in map(_SERVER.match, text.splitlines()) if m and m[4]}


def read_upstreams(lb: RemoteHost) -> dict[str, str]:
    """Every upstream file on a load balancer: name -> content."""
    script = (f"for f in {UPSTREAMS_DIR}/*.conf; do [ -f \"$f\" ] || continue; "
              "printf '==> %s\\n' \"$f\"; cat \"$f\"; done")
    found: dict[str, str] = {}
    name = ""
    for line in lb.run(script).splitlines():
        if line.startswith("==> "):
            name = line[4:].rsplit("/", 1)[-1].removesuffix(".conf")
            found[name] = ""
        elif name:
            found[name] += line + "\n"
    return found


def set_down(lb: RemoteHost, down: set[str], touched: set[str], wait: float = DRAIN_SECONDS) -> dict[str, str]:
    """Mark exactly ``down`` servers down in every upstream that lists a server of ``touched`` (others keep their
    state), validate, reload nginx and wait for the old workers' requests to finish. Returns the files written."""
    changed = {}
    for name, text in read_upstreams(lb).items():
        servers = {m[2] for m in map(_SERVER.match, text.splitlines()) if m}
        if not servers & touched:
            continue
        wanted = (servers_down(text) - touched) | (down & servers)
        new = with_down(text, wanted)
        if new != text:
            changed[name] = new
    if not changed:
        return {}
    writes = " && ".join(
        f"printf %s {shlex.quote(text)} > {upstream_path(name)}.new && mv {upstream_path(name)}.new "
        f"{upstream_path(name)}" for name, text in changed.items())
    lb.run(f"{writes} && nginx -t -q && systemctl reload nginx")
    wait_for_old_workers(lb, wait)
    return changed


def wait_for_old_workers(lb: RemoteHost, seconds: float) -> None:
    """Wait until nginx's workers from before the reload have finished their requests and exited."""
    deadline = time.monotonic() + seconds
    while True:
        # the [g] keeps pgrep from counting the shell that runs it
        left = lb.run("pgrep -c -f 'nginx: worker process is shuttin[g] down' || true", check=False).strip()
        if left in ("", "0"):
            return
        if time.monotonic() > deadline:
            raise FabstackError(f"{left} old nginx workers still serving requests after {seconds:.0f} s",
                                host=lb.name, key="drain")
        time.sleep(0.2)
