"""testinfra checks of the nginx role, run by `inv verify` on every host carrying it."""

import re
import uuid
from typing import Any

import pytest


def worker_pids(host: Any) -> list[str]:
    """PIDs of nginx's worker processes (by process name, so the probing shell never matches)."""
    rows = host.check_output("ps -C nginx -o pid=,args=").splitlines()
    return [row.split()[0] for row in rows if "worker process" in row]


def test_nginx_running_and_enabled(host: Any) -> None:
    service = host.service("nginx")
    assert service.is_running
    assert service.is_enabled


def test_config_is_valid(host: Any) -> None:
    assert host.run("nginx -t").rc == 0


def test_workers_follow_cores(host: Any, hostvars: dict[str, Any]) -> None:
    conf = host.file("/etc/nginx/nginx.conf").content_string
    cores = int(host.check_output("nproc"))
    wanted = hostvars["nginx_worker_processes"] or cores
    assert f"worker_processes {wanted};" in conf
    assert len(worker_pids(host)) == wanted


def test_worker_file_limit_holds_two_per_connection(host: Any) -> None:
    conf = host.file("/etc/nginx/nginx.conf").content_string
    rlimit = int(re.search(r"worker_rlimit_nofile (\d+);", conf).group(1))
    connections = int(re.search(r"worker_connections (\d+);", conf).group(1))
    assert rlimit >= 2 * connections
    pid = worker_pids(host)[0]
    limits = host.file(f"/proc/{pid}/limits").content_string
    assert re.search(rf"Max open files\s+{rlimit}\s+{rlimit}", limits)


# What a page served by each kind of site contains (a static site names the host serving it).
SITE_MARKS = {"php": '"app":"php"', "uvicorn": '"app":"fastapi"'}


def site_mark(site: str, hostname: str) -> str:
    """Text that a page served by a host with this ``nginx_site`` contains."""
    return SITE_MARKS.get(site, f"served by {hostname}")


def route_marks(fleet: dict[str, Any], group: str) -> set[str]:
    """The marks of every verified host in an LB route's group: any of them may answer."""
    return {site_mark(entry["vars"]["nginx_site"], name) for name, entry in fleet.items()
            if group in entry["vars"]["group_names"] and "nginx" in entry["roles"]}


def served_apps(hostvars: dict[str, Any]) -> list[dict[str, Any]]:
    """The apps of ``apps:`` that a host serves (one of its groups is among the app's ``serve``)."""
    return [app for app in hostvars.get("apps") or [] if set(app["serve"]) & set(hostvars["group_names"])]


def test_serves_its_site(host: Any, hostvars: dict[str, Any]) -> None:
    if hostvars["nginx_site"] == "lb":
        pytest.skip("the LB serves no site of its own: its routes are tested instead")
    if hostvars["nginx_site"] == "apps":
        assert served_apps(hostvars), "an apps site serving no app"
        for app in served_apps(hostvars):  # each on its own port, answering its health check with its revision
            health = app.get("health", {})
            out = host.check_output(f"curl -sfi http://127.0.0.1:{app.get('port', 80)}{health.get('path', '/health')}")
            assert re.search(r"^x-app-revision: [0-9a-f]{12}\r?$", out, re.I | re.M), out
            assert health.get("expect", "") in out
        return
    body = host.check_output(f"curl -sf http://127.0.0.1:{hostvars['nginx_listen_port']}/")
    assert site_mark(hostvars["nginx_site"], host.backend.get_hostname()) in body


def served_routes(hostvars: dict[str, Any], fleet: dict[str, Any]) -> list[dict[str, Any]]:
    """The LB's routes that some host of this env serves (the role leaves the others out)."""
    groups = {g for entry in fleet.values() for g in entry["vars"]["group_names"]}
    apps = {app["name"]: app for app in hostvars.get("apps") or []}
    return [route for route in hostvars["nginx_lb_routes"]
            if set(apps[route["app"]]["serve"] if route.get("app") else [route["group"]]) & groups]


def test_lb_routes_each_path_to_its_group(host: Any, hostvars: dict[str, Any], fleet: dict[str, Any]) -> None:
    if hostvars["nginx_site"] != "lb":
        pytest.skip("only the LB has routes, a per-IP limit and stub_status")
    for route in served_routes(hostvars, fleet):
        if route.get("app"):  # answered by one of the app's serving hosts, at the app's port
            app = next(a for a in hostvars["apps"] if a["name"] == route["app"])
            servers = {f"{entry['vars']['ansible_host']}:{app.get('port', 80)}" for entry in fleet.values()
                       if set(app["serve"]) & set(entry["vars"]["group_names"])}
            # a mark of this request's own, so that the exporter's scrapes logged meanwhile are never read instead
            mark = f"probe={uuid.uuid4().hex}"
            out = host.check_output(f"curl -sfik 'https://127.0.0.1{route['path']}?{mark}'")
            assert re.search(r"^x-app-revision: \S+\r?$", out, re.I | re.M), (route, out[:300])  # the app answered
            logged = host.check_output(f"grep -F '{mark}' /var/log/nginx/access.log")  # who answered: logged, not sent
            assert re.search(r"upstream=(\S+)", logged).group(1) in servers, (route, logged)
            continue
        marks = route_marks(fleet, route["group"])
        assert marks, f"route {route['path']}: no verified host of group {route['group']} serves it"
        body = host.check_output(f"curl -sfk https://127.0.0.1{route['path']}")
        assert any(mark in body for mark in marks), (route, body)


def test_lb_answers_429_past_the_per_ip_limit(host: Any, hostvars: dict[str, Any]) -> None:
    if hostvars["nginx_site"] != "lb":
        pytest.skip("only the LB has routes, a per-IP limit and stub_status")
    burst = hostvars["nginx_limit_req_burst"] + hostvars["nginx_limit_req_rate"] + 50
    # one client, all at once over one HTTP/2 connection: more than a second's allowance plus the burst, to an
    # app's health check (the LB's own health path is answered before any limit: monitors are never refused)
    path = hostvars["nginx_lb_routes"][0]["path"] + "health"
    out = host.check_output(f"curl -sk --parallel --parallel-max 100 -w '\\n%{{http_code}}\\n' "
                            f"'https://127.0.0.1{path}?n=[1-{burst}]'")
    codes = [line for line in out.split() if re.fullmatch(r"\d{3}", line)]
    assert "429" in codes
    assert any(code != "429" for code in codes), "the limit turned away even the allowed requests"


# Private (RFC 1918) addresses: the fleet's own, which no client may learn.
PRIVATE = re.compile(r"\b(?:10|172\.(?:1[6-9]|2\d|3[01])|192\.168)\.\d{1,3}\.\d{1,3}(?:\.\d{1,3})?\b")


def test_every_response_carries_the_security_headers_and_no_internal_address(
        host: Any, hostvars: dict[str, Any], fleet: dict[str, Any]) -> None:
    if hostvars["nginx_site"] != "lb":
        pytest.skip("what clients see is the LB's")
    paths = [route["path"] for route in served_routes(hostvars, fleet)]
    missing = [f"{paths[0]}fabstack-missing.css", f"{paths[0]}fabstack-no-such-page"]  # static, and a page
    for path in paths + missing:
        out = host.check_output(f"curl -sk -i https://127.0.0.1{path}")
        headers = out.split("\r\n\r\n", 1)[0].lower()
        status = re.match(r"http/[\d.]+ (\d)(\d\d)", headers)
        assert status and status.group(1) == ("4" if path in missing else "2"), (path, headers[:200])
        for name, value in hostvars["nginx_security_headers"].items():
            assert f"\n{name.lower()}: {value.lower()}" in headers, (path, headers)
        assert "x-upstream" not in headers and not PRIVATE.search(out), (path, out[:600])


def test_stub_status_only_on_private_address(host: Any, hostvars: dict[str, Any]) -> None:
    if hostvars["nginx_site"] != "lb":
        pytest.skip("only the LB has routes, a per-IP limit and stub_status")
    port = hostvars["nginx_status_port"]
    private = host.backend.get_hostname()
    address = host.check_output("hostname -I").split()[0]
    assert "Active connections" in host.check_output(f"curl -sf http://{address}:{port}/nginx_status")
    assert host.run(f"curl -sf http://127.0.0.1:{port}/nginx_status").rc != 0, private


def test_server_tokens_off(host: Any, hostvars: dict[str, Any]) -> None:
    port = hostvars["nginx_listen_port"]
    if hostvars["nginx_site"] == "apps":
        port = min(app.get("port", 80) for app in served_apps(hostvars))
    headers = host.check_output(f"curl -sI http://127.0.0.1:{port}/")
    assert re.search(r"^Server: nginx\s*$", headers, re.M)


def test_lb_certificate_is_valid_and_not_close_to_expiry(host: Any, hostvars: dict[str, Any]) -> None:
    if hostvars["nginx_site"] != "lb" or not hostvars["nginx_tls"]:
        pytest.skip("only the LB terminates TLS")
    import datetime as dt
    import warnings

    from cryptography import x509

    pem = host.check_output(f"python3 -c \"import ssl; print(ssl.get_server_certificate(('127.0.0.1', "
                            f"{hostvars['nginx_tls_port']})))\"")
    left = (x509.load_pem_x509_certificate(pem.encode()).not_valid_after_utc - dt.datetime.now(dt.UTC)).days
    assert left > 0, "the certificate the load balancer serves has expired"
    if left < hostvars["nginx_tls_expiry_warning_days"]:
        warnings.warn(f"the load balancer's certificate expires in {left} days", stacklevel=1)
    plain = host.check_output(f"curl -s -o /dev/null -w '%{{http_code}} %{{redirect_url}}' "
                              f"http://127.0.0.1:{hostvars['nginx_listen_port']}/x")
    assert plain == "301 https://127.0.0.1/x"
