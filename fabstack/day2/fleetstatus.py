"""`inv status`: what the env's Prometheus says now: each alert rule's measured value per host against its
threshold, and the alerts firing."""

from __future__ import annotations

import json
import math
import re
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fabstack.engine.errors import FabstackError
from fabstack.tiers.env import load_env

# A rule's expression ends in its threshold: "LEFT < 10", "LEFT == 0" (the left side is what is measured).
_THRESHOLD = re.compile(r"^(?P<left>.+?)\s*(?P<op>==|!=|<=|>=|<|>)\s*(?P<value>-?[\d.]+)\s*$", re.S)


_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}


def closest_per_host(series: list[dict[str, Any]], threshold: str) -> dict[str, tuple[float, str]]:
    """Per host, the series most alarming against the threshold: one past it if any, else the nearest to it;
    with what it is (a unit, a mount point), for a query that returns many series per host."""
    op, _, number = threshold.partition(" ")
    limit = float(number) if number else 0.0
    best: dict[str, tuple[tuple[bool, float], float, str]] = {}
    for entry in series:
        labels, value = entry["metric"], float(entry["value"][1])
        detail = labels.get("name") or labels.get("mountpoint") or labels.get("key") or labels.get("job", "")
        rank = (not (op in _COMPARE and _COMPARE[op](value, limit)), abs(value - limit))
        host = labels.get("host") or labels.get("app", "-")
        if host not in best or rank < best[host][0]:
            best[host] = (rank, value, detail)
    return {host: (value, detail) for host, (_, value, detail) in sorted(best.items())}


def split_threshold(expr: str) -> tuple[str, str]:
    """A rule expression's measured side and its threshold (``"up", "== 0"``); the whole expression and "" when
    it does not end in a comparison with a number."""
    match = _THRESHOLD.match(" ".join(expr.split()))
    if not match:
        return expr, ""
    return match.group("left"), f"{match.group('op')} {match.group('value')}"


class Prometheus:
    """The HTTP API of one Prometheus server."""

    def __init__(self, base: str, timeout: float = 10) -> None:
        self.base, self.timeout = base.rstrip("/"), timeout

    def get(self, path: str, **params: str) -> Any:
        """One API call's ``data``."""
        url = f"{self.base}{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as response:  # noqa: S310 - an http URL we build
                body = json.load(response)
        except OSError as exc:
            raise FabstackError(f"Prometheus at {self.base} does not answer: {exc}", key="prometheus_port") from None
        if body.get("status") != "success":
            raise FabstackError(f"Prometheus refused {path}: {body.get('error', body)}", key="prometheus_port")
        return body["data"]


def prometheus_of(root: Path, env: str) -> Prometheus:
    """The env's first monitoring host's Prometheus (its private address: this machine must be an admin source)."""
    project = load_env(root, env)
    for name in project.inventory.hosts:
        values = project.setup(name, None).vars
        if any(role.name == "prometheus" for role in project.roles_for(name)):
            return Prometheus(f"http://{values['ansible_host']}:{values['prometheus_port']}")
    raise FabstackError("no host of this env carries the prometheus role", key="site.yml")


def status(root: Path, env: str, out: Callable[[str], None] = print) -> int:
    """Print each alert rule's current value per host against its threshold, then the firing alerts; returns the
    number of alerts firing."""
    prometheus = prometheus_of(root, env)
    rules = [rule for group in prometheus.get("/api/v1/rules")["groups"] for rule in group["rules"]
             if rule.get("type") == "alerting"]
    firing = 0
    width = max((len(rule["name"]) for rule in rules), default=5) + 2
    out(f"{'ALERT':<{width}}{'HOST / APP':<14}{'VALUE':>12}  THRESHOLD")
    for rule in rules:
        left, threshold = split_threshold(rule["query"])
        measured = prometheus.get("/api/v1/query", query=left)["result"]
        for where, (value, detail) in closest_per_host(measured, threshold).items():
            shown = "no data" if math.isnan(value) else f"{value:.4g}"  # a rate over a window without requests
            out(f"{rule['name']:<{width}}{where:<14}{shown:>12}  {threshold or rule['query']}"
                f"{'  (' + detail + ')' if detail else ''}")
    out("")
    for rule in rules:
        for alert in rule.get("alerts", []):
            if alert.get("state") == "firing":
                firing += 1
                out(f"FIRING {rule['name']} {alert['labels'].get('host', '')} since {alert.get('activeAt', '?')}: "
                    f"{alert.get('annotations', {}).get('summary', '')}")
    if not firing:
        out("no alert firing")
    return firing
