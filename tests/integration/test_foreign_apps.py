"""Apps as their teams wrote them, released beside the demo apps on the same hosts: a FastAPI app laid out as the
FastAPI project template does (``app/main.py``), a second ASGI app, and an express-generator-style app started by
``bin/www``. None knows fabstack (no revision header, their own health paths); each answers through the load
balancer over HTTPS, each runs under units named after it, and the demo apps keep answering. Afterwards a deploy
without them removes their units."""

from __future__ import annotations

import pytest
import yaml

from fabstack.cli import commands
from fabstack.engine.yamlfile import load_vars_location
from fabstack.sandbox.hosts import seed_repository
from tests.conftest import REPO
from tests.integration.conftest import in_host
from tests.test_runtimes import FOREIGN

APP_HOSTS = ("app1", "app2")


def overrides() -> list[str]:
    """``--set`` pairs adding the foreign apps and their routes to the repo's own."""
    apps = load_vars_location(REPO / "group_vars", "all")[0]["apps"] + FOREIGN["apps"]
    routes = load_vars_location(REPO / "group_vars", "lb")[0]["nginx_lb_routes"] + FOREIGN["nginx_lb_routes"]
    flow = {"default_flow_style": True, "width": 1 << 20}
    return [f"apps={yaml.safe_dump(apps, **flow).strip()}", f"nginx_lb_routes={yaml.safe_dump(routes, **flow).strip()}"]


def through_lb(path: str) -> str:
    """A GET through the load balancer over HTTPS: the body (curl fails the command on a non-2xx answer)."""
    result = in_host("lb1", f"curl -sfk --max-time 10 'https://127.0.0.1{path}'")
    assert result.returncode == 0, (path, result.stdout, result.stderr)
    return result.stdout


@pytest.mark.timeout(1500)
def test_apps_written_without_fabstack_are_released_beside_the_demo_apps(deployed: list) -> None:
    for bare, folder in FOREIGN["repositories"].items():
        if not (REPO / bare / "HEAD").is_file():
            seed_repository(REPO / folder, REPO / bare)
    try:
        reports = commands.deploy(REPO, "sandbox", overrides=overrides())
        assert not [r.host for r in reports if r.failed], [(r.host, r.error) for r in reports if r.failed]
        assert through_lb("/tmpl/utils/health-check/").strip() == "true"  # FastAPI template layout, app.main:app
        assert through_lb("/hello/ping") == "pong"  # a bare ASGI callable, hello.asgi:application
        assert '"status":"up"' in through_lb("/gen/status")  # express-generator: npm start -> node ./bin/www
        assert '"ok":true' in through_lb("/api/health")  # the demo apps still answer beside them
        assert '"ok":true' in through_lb("/school/health")
        for host in APP_HOSTS:
            units = in_host(host, "systemctl is-active fabstack-fastapi fabstack-tmplapi fabstack-helloasgi "
                                  "fabstack-genapp@3200").stdout.split()
            assert units == ["active"] * 4, (host, units)
            command = in_host(host, "cat /proc/$(systemctl show -p MainPID --value fabstack-genapp@3200)/cmdline "
                                    "| tr '\\0' ' '").stdout
            assert command.strip() == "/usr/bin/node bin/www", command
            gunicorn = in_host(host, "systemctl show -p ExecStart --value fabstack-tmplapi").stdout
            assert "gunicorn app.main:app" in gunicorn and "127.0.0.1:8100" in gunicorn
        again = commands.deploy(REPO, "sandbox", overrides=overrides())
        assert sum(r.count("changed") for r in again) == 0
    finally:
        reports = commands.deploy(REPO, "sandbox")  # back to the repo's own apps
    assert not [r.host for r in reports if r.failed]
    for host in APP_HOSTS:
        left = in_host(host, "ls /etc/systemd/system | grep -E 'fabstack-(tmplapi|helloasgi|genapp)' || true").stdout
        assert left.strip() == "", (host, left)
        assert in_host(host, "systemctl is-active fabstack-fastapi").stdout.strip() == "active"
    assert '"ok":true' in through_lb("/api/health")
