"""testinfra checks of the mariadb role: the server answers on the private address only, writes ROW binary logs
with strict GTID, holds the computed sizes, and only the primary takes writes."""

from typing import Any


def variables(host: Any, *names: str) -> dict[str, str]:
    """Server variables by name, as the server reports them."""
    quoted = ", ".join(f"'{name}'" for name in names)
    out = host.check_output(f"mariadb --batch -N -e \"show global variables where variable_name in ({quoted})\"")
    return dict(line.split("\t", 1) for line in out.splitlines())


def test_it_listens_on_the_private_address_only(host: Any, hostvars: dict[str, Any]) -> None:
    sockets = host.socket.get_listening_sockets()
    port = hostvars["mariadb_port"]
    assert f"tcp://{hostvars['ansible_host']}:{port}" in sockets
    assert f"tcp://0.0.0.0:{port}" not in sockets and f"tcp://:::{port}" not in sockets


def test_binary_logs_are_row_based_with_strict_gtid(host: Any) -> None:
    found = variables(host, "log_bin", "binlog_format", "gtid_strict_mode", "log_slave_updates", "sync_binlog")
    assert found == {"log_bin": "ON", "binlog_format": "ROW", "gtid_strict_mode": "ON", "log_slave_updates": "ON",
                     "sync_binlog": "1"}


def test_sizes_are_the_computed_ones(host: Any, computed: dict[str, Any]) -> None:
    wanted = computed["mariadb_tuning"]
    found = variables(host, "max_connections", "innodb_buffer_pool_size", "thread_cache_size")
    assert int(found["max_connections"]) == wanted["max_connections"]
    assert int(found["innodb_buffer_pool_size"]) == wanted["innodb_buffer_pool_size_mb"] * 1024 * 1024
    assert int(found["thread_cache_size"]) == wanted["thread_cache_size"]


def test_only_the_primary_takes_writes(host: Any, hostvars: dict[str, Any]) -> None:
    primary = hostvars["mariadb_primary_group"] in hostvars["group_names"]
    assert variables(host, "read_only")["read_only"] == ("OFF" if primary else "ON")


def test_the_replication_account_must_use_tls_when_the_tier_asks(host: Any, hostvars: dict[str, Any]) -> None:
    wanted = "ANY" if hostvars["mariadb_tls"] else ""
    found = host.check_output(f"mariadb --batch -N -e \"select distinct ssl_type from mysql.user where user = "
                              f"'{hostvars['mariadb_replication_user']}'\"").split("\n")
    assert found == [wanted]
    if hostvars["mariadb_tls"]:  # and it serves TLS, with the tier's certificate
        assert variables(host, "have_ssl")["have_ssl"] == "YES"
