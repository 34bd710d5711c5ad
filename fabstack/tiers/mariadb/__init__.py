"""The MariaDB tier: a primary and GTID replicas, no pooler (roles ``mariadb``, ``mariadb_replica``); ``budget``
sizes it, ``failover`` moves its primary."""

from __future__ import annotations

from fabstack.tiers.base import Tier
from fabstack.tiers.mariadb import backups, budget, failover

TIER = Tier(
    name="mariadb",
    server_role="mariadb",
    replica_role="mariadb_replica",
    group_settings=("mariadb_primary_group", "mariadb_replica_group", "mariadb_fenced_group"),
    fleet=failover.MariaFleet,
    actions=failover,
    budget=budget.size,
    backups=backups,
)
