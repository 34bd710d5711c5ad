"""nginx: tuned from the host's cores and file limits; every config validated with `nginx -t` before use."""

from __future__ import annotations

from typing import Any

from fabstack.role import RoleContext
from fabstack.tuning import nginx_worker_connections, nginx_worker_processes, nginx_worker_rlimit_nofile

HANDLERS = {
    "reload nginx": "systemctl reload nginx",
}


def check(values: dict[str, Any]) -> list[tuple[str, str]]:
    """Values that are well-typed but cannot work."""
    problems = []
    if values["nginx_site"] not in ("lb", "static"):
        problems.append(("nginx_site", f"must be lb or static, got {values['nginx_site']!r}"))
    for key in ("nginx_worker_connections", "nginx_listen_port", "nginx_upstream_port", "nginx_keepalive_timeout"):
        if values[key] <= 0:
            problems.append((key, f"must be a positive number, got {values[key]}"))
    if values["nginx_worker_processes"] < 0:
        problems.append(("nginx_worker_processes", "must be 0 (from cores) or more"))
    return problems


def upstream_servers(host: RoleContext) -> list[str]:
    """``address:port`` of every host in the upstream group."""
    group = host.vars["nginx_upstream_group"]
    port = host.vars["nginx_upstream_port"]
    return [f"{host.hostvars[h].get('ansible_host', h)}:{port}" for h in host.groups.get(group, [])]


def deploy(host: RoleContext) -> None:
    """Declare nginx's package, main config, site and service."""
    v = host.vars
    rlimit = nginx_worker_rlimit_nofile(v["nginx_worker_connections"], host.facts["nofile_hard"])
    tuning = {
        "worker_processes": nginx_worker_processes(host.facts["cpus"], v["nginx_worker_processes"]),
        "worker_rlimit_nofile": rlimit,
        "worker_connections": nginx_worker_connections(v["nginx_worker_connections"], rlimit),
    }
    host.packages("nginx")
    host.template("nginx.conf.j2", "/etc/nginx/nginx.conf", validate="nginx -t -q -c %s", notify="reload nginx",
                  **tuning)
    host.absent("/etc/nginx/sites-enabled/default", notify="reload nginx")
    if v["nginx_site"] == "lb":
        host.template("lb.conf.j2", "/etc/nginx/sites-enabled/fabstack.conf", validate="nginx -t -q",
                      notify="reload nginx", servers=upstream_servers(host))
    else:
        host.directory(v["nginx_root"])
        host.template("index.html.j2", f"{v['nginx_root']}/index.html")
        host.template("static.conf.j2", "/etc/nginx/sites-enabled/fabstack.conf", validate="nginx -t -q",
                      notify="reload nginx")
    host.service("nginx", state="started", enabled=True)
