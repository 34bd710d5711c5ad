"""testinfra checks of the pgbouncer role."""

from typing import Any

PASSWORD = "PGPASSWORD=\"$(sed -n 's/^\"app\" \"\\(.*\\)\"$/\\1/p' /etc/pgbouncer/userlist.txt)\""


def through(host: Any, hostvars: dict[str, Any], database: str, query: str) -> str:
    port = hostvars["pgbouncer_listen_port"]
    return host.check_output(f"{PASSWORD} psql -X -At -h 127.0.0.1 -p {port} -U app -d {database} -c \"{query}\"")


def test_running_and_enabled(host: Any) -> None:
    service = host.service("pgbouncer")
    assert service.is_running and service.is_enabled


def test_answers_for_rw_and_ro(host: Any, hostvars: dict[str, Any]) -> None:
    assert through(host, hostvars, hostvars["pgbouncer_rw_name"], "select pg_is_in_recovery()") == "f"
    assert through(host, hostvars, hostvars["pgbouncer_ro_name"], "select pg_is_in_recovery()") == "t"


def test_wrong_password_is_refused(host: Any, hostvars: dict[str, Any]) -> None:
    port = hostvars["pgbouncer_listen_port"]
    out = host.run(f"PGPASSWORD=wrong psql -X -h 127.0.0.1 -p {port} -U app -d app -c 'select 1'")
    assert out.rc != 0 and "authentication failed" in out.stderr


def test_config_holds_pool_and_limits(host: Any, hostvars: dict[str, Any], computed: dict[str, Any]) -> None:
    ini = host.file("/etc/pgbouncer/pgbouncer.ini").content_string
    assert "pool_mode = transaction" in ini and "auth_type = scram-sha-256" in ini
    assert f"max_client_conn = {hostvars['pgbouncer_max_client_conn']}" in ini
    assert f"default_pool_size = {hostvars['pgbouncer_default_pool_size']}" in ini
    pid = host.check_output("systemctl show -p MainPID --value pgbouncer")
    limits = host.file(f"/proc/{pid}/limits").content_string
    line = next(x for x in limits.splitlines() if x.startswith("Max open files"))
    assert int(line.split()[3]) == computed["pgbouncer_nofile"] >= hostvars["pgbouncer_max_client_conn"]
    assert host.file("/etc/pgbouncer/userlist.txt").mode == 0o640


def test_listens_on_private_address_and_loopback_only(host: Any, hostvars: dict[str, Any]) -> None:
    port = hostvars["pgbouncer_listen_port"]
    address = host.check_output("hostname -I").split()[0]
    assert host.socket(f"tcp://{address}:{port}").is_listening
    assert not host.socket(f"tcp://0.0.0.0:{port}").is_listening
