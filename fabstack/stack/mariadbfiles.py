"""Files fabstack keeps on a MariaDB host that both the roles (which write them) and the tier's day-2 actions
(which read or remove them) name: one definition here, below both."""

from __future__ import annotations

# The marker of a host seeded and replicating: the mariadb_replica role seeds a host that lacks it; a rejoin
# removes it to seed the host afresh, a switchover writes it on the old primary (no seed needed).
SEEDED = "/var/lib/mysql/fabstack-seeded"
