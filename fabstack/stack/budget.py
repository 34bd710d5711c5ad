"""The connection and memory budget of a whole env, computed before any host is changed.

Every tier's numbers come from here, so the roles that write them into configs and ``inv capacity`` that prints
them can never disagree. A plan whose numbers cannot work (pools above max_connections, clients above
max_client_conn, more memory committed than a host has) is refused with the numbers named.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Problem:
    """One reason the budget does not fit."""

    message: str
    key: str = ""
    host: str = ""
    where: str = ""


@dataclass(frozen=True)
class Bar:
    """One use of a limited resource on one host, against its limit (for the capacity report's bars)."""

    tier: str
    host: str
    used: int
    limit: int
    unit: str = ""


@dataclass
class Budget:
    """Per-host computed values, the tier summary lines, each host's own summaries, the bars, and any problems."""

    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    memory: dict[str, list[tuple[str, int, str]]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    summaries: dict[str, list[str]] = field(default_factory=dict)
    bars: list[Bar] = field(default_factory=list)

    def of(self, host: str) -> dict[str, Any]:
        """The computed values for one host (an empty mapping if none)."""
        return self.values.setdefault(host, {})

    def summarize(self, host: str, text: str) -> None:
        """Record one line of what a host carries (a pool's size, a limit), for the topology picture."""
        self.summaries.setdefault(host, []).append(" ".join(text.split()))

    def commit(self, host: str, what: str, mb: int, key: str = "") -> None:
        """Record memory a component commits on a host, and the setting that sizes it."""
        self.memory.setdefault(host, []).append((what, mb, key))


def roles_of(setup: Any) -> set[str]:
    """The names of a host's roles."""
    return {r.name for r in setup.roles}


# A db tier's part of the budget: (project, setups, hostfacts, budget, app database clients) -> None; it sizes its
# hosts (budget.of), commits their memory, adds its lines, bars and problems.
TierBudget = Callable[[Any, dict[str, Any], dict[str, dict[str, Any]], "Budget", int], None]


def compute_budget(project: Any, setups: dict[str, Any], hostfacts: dict[str, dict[str, Any]],
                   tiers: Sequence[TierBudget] = ()) -> Budget:
    """Compute every tier's numbers for the whole env and check that they fit together.

    Each role says what it commits on a host (its ``commitment``: computed values, memory, database clients);
    each db tier's budget (``tiers``: PgBouncer pools and PostgreSQL's max_connections, MariaDB's) is sized from
    the clients they add up to.
    ``setups`` should hold every host of the inventory, even under ``--limit``: PostgreSQL's max_connections
    depends on every PgBouncer's pools. Numbers that need a host's facts (PHP-FPM children, tuning, memory)
    are computed for the hosts in ``hostfacts`` only.
    """
    budget = Budget()
    clients = 0
    lines = budget.lines
    lines.append("HOSTS (what each role commits; database clients go through PgBouncer)")
    for host, setup in setups.items():
        for role in setup.roles:
            taken = role.commitment(setup.vars, hostfacts.get(host))
            if taken is None:
                continue
            budget.of(host).update(taken.computed)
            for what, mb in taken.memory:
                budget.commit(host, what, mb, taken.memory_key)
            if taken.summary:
                lines.append(f"  {host:<8} {taken.summary}")
                budget.summarize(host, taken.summary)
            clients += taken.db_clients
    lines.append(f"  total database clients: {clients}")

    for tier in tiers:
        tier(project, setups, hostfacts, budget, clients)
    _memory(setups, hostfacts, budget)
    return budget




def _memory(setups: dict[str, Any], hostfacts: dict[str, dict[str, Any]], budget: Budget) -> None:
    budget.lines.append("MEMORY (committed / host memory)")
    for host, parts in budget.memory.items():
        if host not in hostfacts:
            continue
        total = sum(mb for _, mb, _ in parts)
        have = hostfacts[host]["memory_mb"]
        detail = ", ".join(f"{what} {mb}MB" for what, mb, _ in parts)
        budget.lines.append(f"  {host:<8} {total}MB / {have}MB: {detail}")
        budget.bars.append(Bar("Memory", host, total, have, "MB"))
        if total > have:
            # name the setting behind the largest share: the first one to change
            key = max(((mb, key) for _, mb, key in parts if key), default=(0, ""))[1]
            budget.problems.append(Problem(
                f"{total}MB committed ({detail}) exceeds the host's {have}MB", key=key or "memory", host=host,
                where=setups[host].resolved.origin(key) if key else ""))
