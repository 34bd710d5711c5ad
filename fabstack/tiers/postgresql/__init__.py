"""The PostgreSQL tier: a primary and streaming replicas behind PgBouncer (roles ``postgresql``,
``postgresql_replica``, ``pgbouncer``); ``budget`` sizes it, ``failover`` moves its primary."""

from __future__ import annotations

from fabstack.tiers.base import Tier
from fabstack.tiers.postgresql import backups, budget, failover

TIER = Tier(
    name="postgresql",
    server_role="postgresql",
    replica_role="postgresql_replica",
    group_settings=("postgresql_primary_group", "postgresql_replica_group", "postgresql_fenced_group"),
    fleet=failover.PgFleet,
    actions=failover,
    budget=budget.size,
    backups=backups,
)
