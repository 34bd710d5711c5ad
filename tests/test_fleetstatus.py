"""`inv status` from data: a rule's measured side and threshold, and per host the series most alarming."""

from __future__ import annotations

import pytest

from fabstack.day2.fleetstatus import closest_per_host, split_threshold


@pytest.mark.parametrize("expr,measured,threshold", [
    ("up == 0", "up", "== 0"),
    ("node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes * 100 < 10",
     "node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes * 100", "< 10"),
    ("a\n  and b < 0", "a and b", "< 0"),
    ("rate(x[5m]) > on(host) y", "rate(x[5m]) > on(host) y", ""),
])
def test_a_rule_splits_into_what_is_measured_and_its_threshold(expr: str, measured: str, threshold: str) -> None:
    assert split_threshold(expr) == (measured, threshold)


def series(host: str, value: float, **labels: str) -> dict:
    return {"metric": {"host": host, **labels}, "value": [0, str(value)]}


def test_per_host_a_series_past_the_threshold_wins_else_the_nearest() -> None:
    units = [series("a", 0, name="nginx.service"), series("a", 1, name="doomed.service"),
             series("b", 0, name="nginx.service")]
    assert closest_per_host(units, "== 1") == {"a": (1.0, "doomed.service"), "b": (0.0, "nginx.service")}
    memory = [series("a", 55.0), series("b", 8.0)]
    assert closest_per_host(memory, "< 10") == {"a": (55.0, ""), "b": (8.0, "")}
    disks = [series("a", 70, mountpoint="/"), series("a", 15, mountpoint="/var")]
    assert closest_per_host(disks, "< 20") == {"a": (15.0, "/var")}
