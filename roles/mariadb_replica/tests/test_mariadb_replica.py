"""testinfra checks of the mariadb_replica role: the replica replicates from the primary by GTID with both
threads running (its lag is printed), and no account but the local admins can write past read_only."""

from collections.abc import Callable
from typing import Any


def replica_status(host: Any) -> dict[str, str]:
    """SHOW REPLICA STATUS as a mapping."""
    out = host.check_output("mariadb --batch -e 'show replica status'")
    header, *rows = out.splitlines()
    assert rows, "this host replicates from nobody"
    return dict(zip(header.split("\t"), rows[0].split("\t"), strict=False))


def test_it_replicates_from_the_primary_by_gtid(host: Any, fleet: dict[str, Any], hostvars: dict[str, Any],
                                                report: Callable[[str], None]) -> None:
    status = replica_status(host)
    primary = next(entry["vars"]["ansible_host"] for entry in fleet.values()
                   if hostvars["mariadb_primary_group"] in entry["vars"]["group_names"])
    assert status["Master_Host"] == primary
    assert status["Using_Gtid"] == "Slave_Pos"
    assert (status["Slave_IO_Running"], status["Slave_SQL_Running"]) == ("Yes", "Yes"), status["Last_Error"]
    # over TLS when the tier asks for it (the primary then refuses the account anything else), trusting its CA
    assert status["Master_SSL_Allowed"] == ("Yes" if hostvars["mariadb_tls"] else "No")
    if hostvars["mariadb_tls"]:
        assert status["Master_SSL_CA_File"] == f"{hostvars['mariadb_tls_dir']}/ca.pem"
    report(f"replica of {primary}{' over TLS' if hostvars['mariadb_tls'] else ''}: IO and SQL threads running, "
           f"{status['Seconds_Behind_Master']} s behind, "
           f"received up to GTID {status['Gtid_IO_Pos']}")


def test_no_account_but_the_admins_may_write_past_read_only(host: Any) -> None:
    """read_only stops every account without READ ONLY ADMIN (MariaDB's super_read_only): only the local admins
    (root, MariaDB's own) have it, or SUPER, or every privilege."""
    accounts = host.check_output("mariadb --batch -N -e \"select concat(user, '@', host) from mysql.user "
                                 "where user not in ('root', 'mariadb.sys', 'mysql')\"").split()
    assert accounts  # the replication and checksum accounts at least
    for account in accounts:
        user, _, address = account.partition("@")
        grants = host.check_output(f"mariadb --batch -N -e \"show grants for '{user}'@'{address}'\"")
        assert not [power for power in ("READ_ONLY ADMIN", "SUPER", "ALL PRIVILEGES ON *.*") if power in grants], grants
