"""nginx: tuned from the host's cores and file limits; every config validated with `nginx -t` before use."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from fabstack.engine import tls
from fabstack.engine.errors import FabstackError, shorten
from fabstack.engine.role import RoleContext
from fabstack.engine.rolecontract import Commitment, Inbound
from fabstack.engine.settingspec import TCP_PORT, Setting, positive
from fabstack.stack import lb
from fabstack.stack.apps import APPS_KEY, App, parse_apps, served_here
from fabstack.stack.tuning import nginx_worker_connections, nginx_worker_processes, nginx_worker_rlimit_nofile

# Roles whose settings this role reads when the host runs them too (the firewall asks for inbound ports).
READS = ("firewall", "uvicorn")

# Settings holding TCP ports this role listens on: the engine refuses two roles sharing one on a host.
PORTS = ("nginx_listen_port", "nginx_status_port", "nginx_tls_port")
# The load balancer's self-signed key and certificate when the env gives none (fabstack.engine.secrets makes it).
GENERATED_SECRETS = ("nginx_tls_self_signed_pem",)
TLS_DIR = "/etc/nginx/tls"
TLS_CERTIFICATE = f"{TLS_DIR}/fabstack.crt"
TLS_KEY = f"{TLS_DIR}/fabstack.key"
# node_exporter's textfile collector reads metrics left here (the node_exporter role's --collector.textfile)
TEXTFILE_DIR = "/var/lib/prometheus/node-exporter"

HANDLERS = {
    "reload nginx": "systemctl reload nginx",
}

SITES = ("lb", "apps", "php", "uvicorn", "static")
# The security headers every response carries (an include each server and header-adding location repeats).
HEADERS_SNIPPET = "/etc/nginx/snippets/fabstack-security-headers.conf"


def inbound(values: dict[str, Any]) -> list[Inbound]:
    """The load balancer is open to the world (its status page to admins); an app's nginx to the load balancers."""
    if values["nginx_site"] == "lb":
        ports = (values["nginx_listen_port"], *((values["nginx_tls_port"],) if values["nginx_tls"] else ()))
        return [Inbound(ports, "the load balancer", anywhere=True),
                Inbound((values["nginx_status_port"],), "stub_status")]
    ports = (values["nginx_listen_port"],)
    if values["nginx_site"] == "apps":
        ports = tuple(sorted({app.port for app in served_here(values)}))
    return [Inbound(ports, "app behind the load balancer", (values["firewall_lb_group"],))]


# What an LB route may hold: it becomes nginx location and upstream lines, so its grammar, never nginx's syntax.
_ROUTE_PATH = re.compile(r"/[A-Za-z0-9._~/-]{0,200}")
_ROUTE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_ROUTE_KEYS = {"path", "group", "app", "strip"}


SETTINGS = {
    "nginx_site": Setting(choices=SITES),
    **{key: TCP_PORT for key in ("nginx_listen_port", "nginx_upstream_port", "nginx_status_port", "nginx_tls_port")},
    "nginx_worker_connections": positive(1_048_576), "nginx_worker_processes": Setting(least=0, most=1024),
    **{key: positive() for key in ("nginx_keepalive_timeout", "nginx_limit_req_rate", "nginx_limit_conn",
                                   "nginx_upstream_keepalive")},
    **{key: Setting(pattern=r"/[A-Za-z0-9._/-]*", shape="an absolute path of letters, digits, . _ / -")
       for key in ("nginx_health_path", "nginx_acme_root")},
    # older versions are broken
    "nginx_tls_protocols": Setting(nonempty=True, item=Setting(choices=("TLSv1.2", "TLSv1.3"))),
    "nginx_tls_ciphers": Setting(item=Setting(pattern=r"[A-Z0-9-]+", shape="an OpenSSL cipher name")),
    "nginx_tls_resolver": Setting(pattern=r"[A-Za-z0-9.:\[\] -]*", shape="addresses separated by spaces"),
}


def check(values: dict[str, Any]) -> list[tuple[str, str]]:
    """What spans settings: a certificate with its key, distinct ports, well-formed headers and LB routes."""
    problems = []
    if bool(values["nginx_tls_certificate"]) != bool(values["nginx_tls_private_key"]):
        problems.append(("nginx_tls_certificate", "give both the certificate and nginx_tls_private_key, or neither"))
    if values["nginx_status_port"] == values["nginx_listen_port"]:
        problems.append(("nginx_status_port", f"collides with nginx_listen_port {values['nginx_listen_port']}"))
    for name, value in values["nginx_security_headers"].items():
        if not re.match(r"^[A-Za-z][A-Za-z0-9-]{0,63}$", str(name)) or not isinstance(value, str) or any(
                c in value for c in '"\n;{}'):
            problems.append(("nginx_security_headers", f"a header name and a value without quotes, ; or braces: "
                                                       f"{name!r}: {value!r}"))
    for route in values["nginx_lb_routes"]:
        if not isinstance(route, dict) or not _ROUTE_PATH.fullmatch(str(route.get("path", ""))) or \
                bool(route.get("group")) == bool(route.get("app")) or set(route) - _ROUTE_KEYS or \
                not all(_ROUTE_NAME.fullmatch(str(route[k])) for k in ("group", "app") if route.get(k)):
            problems.append(("nginx_lb_routes", f"each route needs a path (/ then letters, digits, . _ ~ / -), a "
                                                f"group or an app by name, and optionally strip: {route!r}"[:300]))
        elif not isinstance(route.get("strip", True), bool):
            problems.append(("nginx_lb_routes", f"strip must be true or false: {route!r}"))
    return problems


def app_ports(values: dict[str, Any], served: list[App], cpus: int) -> dict[str, list[int]]:
    """Each served app's loopback ports, as its runtime numbers them (by the app's place among the host's apps of
    that runtime)."""
    ports: dict[str, list[int]] = {}
    for app in served:
        index = [a.name for a in served if a.runtime is app.runtime].index(app.name)
        ports[app.name] = app.runtime.ports(app, values, index, cpus)
    taken = {port: name for name, numbers in ports.items() for port in numbers}
    for app in served:
        if app.port in taken:
            raise FabstackError(f"port {app.port} is also where app {taken[app.port]}'s processes listen on this "
                                f"host (its runtime numbers them from its role's first port)",
                                key=f"{APPS_KEY}[{app.name}].port")
    return ports


def upstreams(ctx: RoleContext, apps: list[App]) -> list[dict[str, Any]]:
    """One upstream per load-balancer route (to an app's serving hosts at its port, or to a group's hosts at
    ``nginx_upstream_port``): its name, path, servers and the file holding them, longest path first. A route that
    no host of this env serves (an env without that app's hosts) is left out."""
    by_name = {app.name: app for app in apps}
    found = []
    for route in sorted(ctx.vars["nginx_lb_routes"], key=lambda r: -len(r["path"])):
        if route.get("app"):
            app = by_name.get(route["app"])
            if app is None:
                raise FabstackError(f"route {route['path']} names unknown app {route['app']!r}",
                                    key="nginx_lb_routes", host=ctx.host)
            name, hosts, port = app.upstream, [h for g in app.serve for h in ctx.groups.get(g, [])], app.port
        else:
            group = route["group"]
            if group not in ctx.groups:
                raise FabstackError(f"route {route['path']} names unknown group {group!r}", key="nginx_lb_routes",
                                    host=ctx.host)
            name, hosts, port = f"{group}_servers", ctx.groups[group], ctx.vars["nginx_upstream_port"]
        servers = [f"{ctx.address_of(h)}:{port}" for h in dict.fromkeys(hosts)]
        if not servers:
            continue
        found.append({"name": name, "path": route["path"], "servers": servers, "file": lb.upstream_path(name),
                      "strip": route.get("strip", True)})
    return found


def pem_text(ctx: RoleContext, key: str) -> str:
    """A PEM setting's text: the value itself, or the file of the deployment repo it names."""
    value = ctx.vars[key]
    if "-----BEGIN" in value:
        return value
    try:
        return ctx.repo_path(value).read_text(errors="replace")
    except (OSError, ValueError):
        raise FabstackError(f"{shorten(value)} is neither PEM text nor a file of the deployment repo", key=key,
                            host=ctx.host) from None


def tls_pair(ctx: RoleContext) -> tls.Pair:
    """The load balancer's certificate and key, checked here before any host sees them (they parse, they belong
    together); the env's self-signed pair when none is given."""
    given = bool(ctx.vars["nginx_tls_certificate"])
    key = "nginx_tls_certificate" if given else "nginx_tls_self_signed_pem"
    try:
        if given:
            return tls.parse_pair(pem_text(ctx, "nginx_tls_certificate"), pem_text(ctx, "nginx_tls_private_key"))
        generated = ctx.vars["nginx_tls_self_signed_pem"]
        return tls.parse_pair(generated, generated)
    except tls.TlsError as exc:
        raise FabstackError(str(exc), key=key, host=ctx.host) from None


def declare_tls(ctx: RoleContext) -> dict[str, Any]:
    """The certificate and key files (the key 0600, hidden from diffs; nginx -t checks the pair before a reload),
    the ACME folder, and a warning when the certificate is close to expiry. Returns what the site template needs."""
    pair = tls_pair(ctx)
    days = pair.days_left(dt.datetime.now(dt.UTC))
    if days < ctx.vars["nginx_tls_expiry_warning_days"]:
        until = f"{pair.leaf.not_valid_after_utc:%Y-%m-%d}"
        ctx.warn(f"the TLS certificate {TLS_CERTIFICATE} expires in {days:.0f} days ({until})" if days >= 0
                 else f"the TLS certificate {TLS_CERTIFICATE} expired on {until}")
    ctx.directory(TLS_DIR, mode="0700")
    ctx.file(TLS_CERTIFICATE, pair.chain, notify="reload nginx")
    ctx.file(TLS_KEY, pair.key, mode="0600", secret=True, validate="nginx -t -q", notify="reload nginx")
    ctx.directory(ctx.vars["nginx_acme_root"])
    # for node_exporter's textfile collector: the "certificate expiring" alert reads it
    ctx.directory(TEXTFILE_DIR)
    ctx.file(f"{TEXTFILE_DIR}/fabstack_tls.prom",
             "# HELP fabstack_tls_certificate_expiry_timestamp_seconds When the LB's certificate expires.\n"
             "# TYPE fabstack_tls_certificate_expiry_timestamp_seconds gauge\n"
             f"fabstack_tls_certificate_expiry_timestamp_seconds {pair.leaf.not_valid_after_utc.timestamp():.0f}\n")
    return {"tls": {"certificate": TLS_CERTIFICATE, "key": TLS_KEY,
                    "stapling": pair.has_chain and bool(ctx.vars["nginx_tls_resolver"])}}


def commitment(values: dict[str, Any], facts: dict[str, Any] | None) -> Commitment | None:
    """About 32 MB per worker process."""
    if facts is None:
        return None
    workers = nginx_worker_processes(facts["cpus"], values["nginx_worker_processes"])
    return Commitment(memory=[("nginx workers", workers * 32)], memory_key="nginx_worker_processes")


def deploy(ctx: RoleContext) -> None:
    """Declare nginx's package, main config, site and service."""
    v = ctx.vars
    rlimit = nginx_worker_rlimit_nofile(v["nginx_worker_connections"], ctx.facts["nofile_hard"])
    tuning = {
        "worker_processes": nginx_worker_processes(ctx.facts["cpus"], v["nginx_worker_processes"]),
        "worker_rlimit_nofile": rlimit,
        "worker_connections": nginx_worker_connections(v["nginx_worker_connections"], rlimit),
        "lb_addresses": [] if v["nginx_site"] == "lb" else
        [ctx.address_of(h) for h in ctx.groups.get(v.get("firewall_lb_group", "lb"), [])],
    }
    ctx.packages("nginx")
    ctx.template("nginx.conf.j2", "/etc/nginx/nginx.conf", validate="nginx -t -q -c %s", notify="reload nginx",
                  **tuning)
    ctx.absent("/etc/nginx/sites-enabled/default", notify="reload nginx")
    site = v["nginx_site"]
    https = site == "lb" and v["nginx_tls"]
    ctx.directory("/etc/nginx/snippets")
    ctx.template("security-headers.conf.j2", HEADERS_SNIPPET, validate="nginx -t -q", notify="reload nginx",
                 hsts=v["nginx_hsts_max_age"] if https else 0)
    extra: dict[str, Any] = {"private_address": ctx.facts["primary_address"], "headers_snippet": HEADERS_SNIPPET,
                             "status_allow": v["nginx_status_allow"] or v.get("firewall_admin_sources", [])}
    apps = parse_apps(v.get(APPS_KEY), APPS_KEY, set(ctx.groups))
    if site == "lb":
        extra["tls"] = None
        if https:
            extra.update(declare_tls(ctx))
        extra["upstreams"] = upstreams(ctx, apps)
        ctx.directory(lb.UPSTREAMS_DIR)
        for upstream in extra["upstreams"]:
            ctx.file(upstream["file"], lb.upstream_file(upstream["servers"], v["nginx_upstream_max_fails"],
                                                        v["nginx_upstream_fail_timeout"], ctx.vars_managed()),
                     validate="nginx -t -q", notify="reload nginx")
    elif site == "apps":
        extra["served"] = served_here(v)
        extra["app_ports"] = app_ports(v, extra["served"], ctx.facts["cpus"])
        extra["app_idle"] = v.get("uvicorn_upstream_idle_seconds", 60)
    elif site == "uvicorn":
        extra["app_port"] = v.get("uvicorn_port", 8000)
        extra["app_idle"] = v.get("uvicorn_upstream_idle_seconds", 60)
    elif site == "static":
        ctx.directory(v["nginx_root"])
        ctx.template("index.html.j2", f"{v['nginx_root']}/index.html")
    ctx.template(f"{site}.conf.j2", "/etc/nginx/sites-enabled/fabstack.conf", validate="nginx -t -q",
                  notify="reload nginx", **extra)
    ctx.service("nginx")
