"""``inv capacity``'s report: an HTML page with a picture of the env's topology (hosts, their roles and sizes,
which host talks to which on what port, from the roles' own ``inbound`` declarations) and each tier's budget as
bars against its limit."""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

from fabstack.stack.budget import Budget
from fabstack.stack.svg import Svg

CLIENTS = "clients"
BOX_W, COL_GAP, ROW_GAP, LINE_H = 300, 150, 24, 15


@dataclass
class Link:
    """Traffic from one host (or the clients) to another: what it is and on which ports."""

    source: str
    target: str
    labels: list[str] = field(default_factory=list)


def links(setups: dict[str, Any], groups: dict[str, list[str]]) -> tuple[list[Link], dict[str, set[str]]]:
    """Who talks to whom, from each role's inbound declarations; the monitoring scrapes apart (per scraping host,
    the hosts it scrapes), since they go to every host and would hide the rest."""
    found: dict[tuple[str, str], Link] = {}
    scraped: dict[str, set[str]] = {}
    for target, setup in setups.items():
        monitoring = setup.vars.get("firewall_monitoring_group")
        for role in setup.roles:
            for entry in role.inbound(setup.vars):
                label = f"{entry.why.split(':')[0]} :{','.join(str(p) for p in entry.ports)}"
                if entry.anywhere:
                    found.setdefault((CLIENTS, target), Link(CLIENTS, target)).labels.append(label)
                    continue
                for group in entry.groups:
                    for source in groups.get(group, []):
                        if group == monitoring:
                            scraped.setdefault(source, set()).add(target)
                        elif source != target and source in setups:
                            link = found.setdefault((source, target), Link(source, target))
                            if label not in link.labels:
                                link.labels.append(label)
    return list(found.values()), scraped


def columns(hosts: list[str], edges: list[Link]) -> dict[str, int]:
    """Each host's column: one past the farthest host that sends it traffic, starting from the clients; pairs
    that talk both ways (replication) do not push each other; hosts nobody calls go last."""
    pairs = {(e.source, e.target) for e in edges}
    forward = [e for e in edges if (e.target, e.source) not in pairs]
    column = {CLIENTS: 0}
    for _ in range(len(hosts) + 1):
        for edge in forward:
            if edge.source in column and column.get(edge.target, -1) < column[edge.source] + 1:
                column[edge.target] = min(column[edge.source] + 1, len(hosts))
    last = max(column.values()) + 1
    return {host: column.get(host, last) for host in [CLIENTS, *hosts]}


def host_lines(name: str, setup: Any, facts: dict[str, Any], budget: Budget) -> list[str]:
    """What a host's box says: address and size, roles, and what the budget sized on it."""
    size = f"{facts['cpus']} cpu, {facts['memory_mb']} MB" if facts else "not reached"
    roles = [r.name for r in setup.roles]
    wrapped, line = [], ""
    for role in roles:
        if len(line) + len(role) > 44:
            wrapped.append(line.rstrip(", "))
            line = ""
        line += role + ", "
    wrapped.append(line.rstrip(", "))
    return [f"{setup.vars.get('ansible_host', name)} · {size}", *wrapped,
            *[s[:52] for s in budget.summaries.get(name, [])]]


def topology_svg(setups: dict[str, Any], groups: dict[str, list[str]], hostfacts: dict[str, dict[str, Any]],
                 budget: Budget) -> str:
    """The topology picture."""
    edges, scraped = links(setups, groups)
    column = columns(list(setups), edges)
    boxes: dict[str, tuple[float, float, float]] = {}  # host -> x, y, height
    texts: dict[str, list[str]] = {CLIENTS: ["the internet"]}
    for name, setup in setups.items():
        texts[name] = host_lines(name, setup, hostfacts.get(name, {}), budget)
        if name in scraped:
            texts[name].append(f"scrapes the exporters of {len(scraped[name])} hosts")
    heights = {name: 26 + LINE_H * len(lines) for name, lines in texts.items()}
    tallest = 0.0
    for col in sorted(set(column.values())):
        y = 50.0
        for name in [n for n in column if column[n] == col]:
            boxes[name] = (20 + col * (BOX_W + COL_GAP), y, heights[name])
            y += heights[name] + ROW_GAP
        tallest = max(tallest, y)
    svg = Svg(20 + (max(column.values()) + 1) * (BOX_W + COL_GAP) - COL_GAP + 20, tallest + 20)
    svg.text(20, 28, "Topology: who talks to whom (ports from the roles' declarations; monitoring scrapes apart)",
             size=14, weight="bold")
    drawn: set[tuple[str, str]] = set()
    for edge in edges:
        if (edge.target, edge.source) in drawn:
            continue  # a pair that talks both ways (replication): one line
        drawn.add((edge.source, edge.target))
        sx, sy, sh = boxes[edge.source]
        tx, ty, th = boxes[edge.target]
        x1, y1 = (sx + BOX_W, sy + sh / 2) if tx > sx else (sx + BOX_W / 2, sy + sh)
        x2, y2 = (tx, ty + th / 2) if tx > sx else (tx + BOX_W / 2, ty)
        svg.line(x1, y1, x2, y2, arrow=True, dash="" if tx > sx else "4 3")
        for index, label in enumerate(edge.labels):
            svg.text((x1 + x2) / 2, (y1 + y2) / 2 - 4 - 11 * (len(edge.labels) - 1 - index), label, size=9,
                     anchor="middle", fill="#333")
    for name, (x, y, h) in boxes.items():
        group_names = setups[name].vars.get("group_names", []) if name in setups else []
        svg.rect(x, y, BOX_W, h, fill="#eef4fb" if name != CLIENTS else "#f4f4f4", stroke="#4a78a8", rx=6,
                 title=", ".join(group_names))
        svg.text(x + 8, y + 17, name, size=13, weight="bold")
        for index, line in enumerate(texts[name]):
            svg.text(x + 8, y + 17 + LINE_H * (index + 1), line, size=10)
    return svg.render()


def bars_svg(budget: Budget) -> str:
    """Each tier's budget: one bar per host, used against its limit (red past 100 %, amber past 80 %)."""
    rows = budget.bars
    svg = Svg(760, 60 + 26 * len(rows) + 24 * len({bar.tier for bar in rows}))
    svg.text(20, 28, "Budget per tier: what is committed against each limit", size=14, weight="bold")
    y, tier = 44.0, ""
    for bar in rows:
        if bar.tier != tier:
            tier = bar.tier
            y += 18
            svg.text(20, y, tier, size=12, weight="bold")
            y += 6
        share = bar.used / bar.limit if bar.limit else 1.0
        color = "#d62728" if share > 1 else "#ff9f1c" if share > 0.8 else "#2ca02c"
        svg.text(20, y + 15, bar.host, size=11)
        svg.rect(110, y + 3, 440, 16, fill="#f0f0f0", stroke="#bbb")
        svg.rect(110, y + 3, 440 * min(share, 1.0), 16, fill=color)
        svg.text(560, y + 15, f"{bar.used} / {bar.limit} {bar.unit} ({share:.0%})".replace("  ", " "), size=11)
        y += 26
    return svg.render()


def write_report(path: Path, env: str, setups: dict[str, Any], groups: dict[str, list[str]],
                 hostfacts: dict[str, dict[str, Any]], budget: Budget) -> Path:
    """Write the HTML report (both pictures inline, then the budget's text and problems); returns its path."""
    problems = "".join(f"<li>{escape(p.host)}: {escape(p.message)} ({escape(p.key)})</li>" for p in budget.problems)
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>fabstack capacity: {escape(env)}</title>"
            "<style>body{font-family:sans-serif;margin:24px} pre{background:#f7f7f7;padding:12px}</style></head>"
            f"<body><h1>Capacity of env {escape(env)}</h1>{topology_svg(setups, groups, hostfacts, budget)}"
            f"<p>{bars_svg(budget)}</p>"
            f"<h2>{'Problems' if problems else 'The budget fits'}</h2>{f'<ul>{problems}</ul>' if problems else ''}"
            f"<h2>Budget</h2><pre>{escape(chr(10).join(budget.lines))}</pre></body></html>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)
    return path
