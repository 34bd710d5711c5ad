"""Paths on a host that a role writes and a day-2 operation or a tier's action reads: one definition here, below
both (a role may not import the layers that act on its results)."""

from __future__ import annotations

# The marker of a MariaDB host seeded and replicating: the mariadb_replica role seeds a host that lacks it; a rejoin
# removes it to seed the host afresh, a switchover writes it on the old primary (no seed needed).
SEEDED = "/var/lib/mysql/fabstack-seeded"
# The backups role's script (run, list, restore, stats, drop) and the settings it reads (engine, dir, databases).
BACKUP_SCRIPT = "/usr/local/sbin/fabstack-backup"
BACKUP_SETTINGS = "/etc/fabstack/backup.json"
# The marker of a PostgreSQL host whose server Patroni runs: written when the patroni role hands the server over
# from Debian's unit. From then on neither the postgresql role starts that unit nor the replica role re-clones.
PATRONI_ADOPTED = "/var/lib/fabstack/patroni-adopted"
# Patroni's settings file on a db host (patronictl reads it too).
PATRONI_CONFIG = "/etc/patroni/config.yml"
# pgBackRest's settings file on every host that runs it (Debian's path; the repository host's holds the cipher
# pass), and the ssh it runs to reach the other side: the env's key and recorded host keys, nothing from a home.
PGBACKREST_CONFIG = "/etc/pgbackrest.conf"
PGBACKREST_SSH = "/usr/local/sbin/fabstack-pgbackrest-ssh"
# The Patroni cluster's TLS files on a member (its CA, its own certificate and key): etcd's clients and Patroni's
# REST API use them, and so do day-2 reads of the REST API on a member.
PATRONI_TLS = "/etc/patroni/tls"
PATRONI_CA = f"{PATRONI_TLS}/ca.crt"
