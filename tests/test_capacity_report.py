"""The capacity report: the topology picture's links come from the roles' declarations, columns follow the
traffic, and the bars show each limit (red when it is passed)."""

from __future__ import annotations

import re
from pathlib import Path

from fabstack.stack.capacityreport import CLIENTS, Link, columns, links, write_report
from fabstack.tiers.env import load_env
from tests.test_budget import FLEET, budget_for


def sandbox_links(root: Path) -> tuple[dict[tuple[str, str], list[str]], dict[str, set[str]]]:
    project = load_env(root, "sandbox")
    setups = {h: project.setup(h, None) for h in project.inventory.hosts}
    found, scraped = links(setups, project.groups())
    return {(link.source, link.target): link.labels for link in found}, scraped


def opens(labels: list[str], port: int, what: str = "") -> bool:
    """Whether one of a link's labels names ``what`` and lists ``port`` (":80,443")."""
    return any(what in label and re.search(rf"[:,]{port}(,|$)", label) for label in labels)


def test_links_follow_what_each_role_opens(project_copy: Path) -> None:
    found, scraped = sandbox_links(project_copy)
    assert opens(found[(CLIENTS, "lb1")], 443)
    assert (CLIENTS, "app1") not in found  # only the LB is open to the world
    assert ("lb1", "app1") in found and ("lb1", "app2") in found
    assert opens(found[("app1", "cache1")], 6432, "PgBouncer")
    assert opens(found[("cache1", "db1")], 5432)
    assert ("db1", "db2") in found and ("db2", "db1") in found  # replication goes both ways after a failover
    assert ("app1", "db1") not in found  # apps reach the database through PgBouncer only
    # the exporters are open to the monitoring host alone: apart from the picture's lines
    assert scraped == {"mon1": {"lb1", "app1", "app2", "db1", "db2", "cache1", "mon1"}}
    assert not any(source == "mon1" for source, _ in found)


def test_columns_follow_the_traffic_and_a_pair_both_ways_stays_side_by_side() -> None:
    edges = [Link(CLIENTS, "lb"), Link("lb", "app"), Link("app", "db1"), Link("app", "db2"), Link("db1", "db2"),
             Link("db2", "db1")]
    assert columns(["lb", "app", "db1", "db2", "mon"], edges) == {CLIENTS: 0, "lb": 1, "app": 2, "db1": 3,
                                                                  "db2": 3, "mon": 4}


def test_the_report_shows_each_host_and_its_limits(project_copy: Path, tmp_path: Path) -> None:
    project = load_env(project_copy, "sandbox")
    setups = {h: project.setup(h, None) for h in project.inventory.hosts}
    budget = budget_for(project_copy, ["php_fpm_max_children=40"])  # 40 children x 64 MB: past app1's memory
    page = write_report(tmp_path / "r.html", "sandbox", setups, project.groups(), FLEET, budget).read_text()
    for host in FLEET:
        assert f">{host}</text>" in page
    assert ">PostgreSQL connections</text>" in page and ">PgBouncer clients</text>" in page
    bar = re.search(r">app1</text><rect[^>]*/?>(?:</rect>)?<rect[^>]*fill=\"(#[0-9a-f]+)\"", page)
    assert bar and bar.group(1) == "#d62728"  # over its memory: red
    assert "<h2>Problems</h2>" in page and "php_fpm_max_children" in page
