"""testinfra checks of the postgresql role (primary and replicas)."""

from typing import Any


def sql(host: Any, query: str, database: str = "postgres") -> str:
    return host.check_output(f"runuser -u postgres -- psql -X -At -d {database} -c \"{query}\"")


def under_patroni(host: Any, fleet: dict[str, Any]) -> bool:
    """Whether Patroni runs this host's server (the leader is then whoever holds the lease)."""
    return "patroni" in fleet[host.backend.get_hostname()]["roles"]


def is_primary(host: Any, hostvars: dict[str, Any], fleet: dict[str, Any]) -> bool:
    if under_patroni(host, fleet):
        return sql(host, "select pg_is_in_recovery()") == "f"
    primaries = [h for h, e in fleet.items() if hostvars["postgresql_primary_group"] in e["vars"]["group_names"]]
    return host.backend.get_hostname() in primaries


def test_cluster_running_and_enabled(host: Any, hostvars: dict[str, Any], fleet: dict[str, Any]) -> None:
    if under_patroni(host, fleet):
        # Patroni starts the server, at boot too; Debian's unit never does again
        assert host.service("patroni").is_running and host.service("patroni").is_enabled
        assert not host.service(hostvars["postgresql_service"]).is_enabled
        assert sql(host, "select 1") == "1"
        return
    service = host.service(hostvars["postgresql_service"])
    assert service.is_running and service.is_enabled


def test_listens_on_private_address_and_loopback_only(host: Any, hostvars: dict[str, Any]) -> None:
    port = hostvars["postgresql_port"]
    address = host.check_output("hostname -I").split()[0]
    assert host.socket(f"tcp://{address}:{port}").is_listening
    assert host.socket(f"tcp://127.0.0.1:{port}").is_listening
    assert not host.socket(f"tcp://0.0.0.0:{port}").is_listening


def test_settings_hold_the_computed_values(host: Any, computed: dict[str, Any]) -> None:
    tuning = computed["postgresql_tuning"]
    assert sql(host, "show max_connections") == str(computed["postgresql_max_connections"])
    assert sql(host, "show shared_buffers") == tuning["shared_buffers"]
    assert sql(host, "show effective_cache_size") == tuning["effective_cache_size"]
    assert sql(host, "show work_mem") == tuning["work_mem"]
    assert sql(host, "show wal_log_hints") == "on"
    assert sql(host, "show password_encryption") == "scram-sha-256"
    assert "pg_stat_statements" in sql(host, "show shared_preload_libraries")


def test_hba_has_no_trust_and_no_errors(host: Any) -> None:
    assert sql(host, "select count(*) from pg_hba_file_rules where auth_method = 'trust'") == "0"
    assert sql(host, "select count(*) from pg_hba_file_rules where error is not null") == "0"


def test_primary_streams_to_every_replica(host: Any, hostvars: dict[str, Any], fleet: dict[str, Any]) -> None:
    me = host.backend.get_hostname()
    if under_patroni(host, fleet):  # every other member follows the leader, each through its own slot
        slots_wanted = sorted(e["vars"]["postgresql_slot"] for name, e in fleet.items()
                              if name != me and "patroni" in e["roles"])
    else:
        slots_wanted = sorted(e["vars"]["postgresql_slot"] for e in fleet.values()
                              if hostvars["postgresql_replica_group"] in e["vars"]["group_names"])
    if not is_primary(host, hostvars, fleet):
        assert sql(host, "select pg_is_in_recovery()") == "t"
        assert sql(host, "select status from pg_stat_wal_receiver") == "streaming"
        return
    streaming = sql(host, "select application_name from pg_stat_replication where state = 'streaming'").split()
    assert sorted(streaming) == slots_wanted
    slots = sql(host, "select slot_name from pg_replication_slots where active").split()
    assert sorted(slots) == slots_wanted
    assert sql(host, "show max_slot_wal_keep_size") == hostvars["postgresql_max_slot_wal_keep_size"]


def test_app_database_and_schema(host: Any, hostvars: dict[str, Any]) -> None:
    for database in hostvars["postgresql_databases"]:
        assert sql(host, "select count(*) from items", database) != "0"
        assert sql(host, "select count(*) from pg_extension where extname = 'pg_stat_statements'", database) == "1"


def test_indexes_from_group_vars_exist(host: Any, hostvars: dict[str, Any]) -> None:
    for index in hostvars["postgresql_indexes"]:
        valid = sql(host, "select i.indisvalid from pg_index i join pg_class c on c.oid = i.indexrelid "
                          f"where c.relname = '{index['name']}'", index["database"])
        assert valid == "t", index["name"]
