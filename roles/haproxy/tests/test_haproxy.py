"""testinfra checks of the haproxy role: the read-write route reaches the member Patroni names leader, the
read-only route a replica, and neither listens beyond loopback."""

import json
from typing import Any


def through(host: Any, hostvars: dict[str, Any], port: int, query: str) -> str:
    """A query through a local route (plain TCP to PostgreSQL), as the app user, whose password PgBouncer's user
    list holds."""
    user = hostvars["pgbouncer_users"][0]
    return host.check_output(
        f"PGPASSWORD=\"$(sed -n 's/^\"{user}\" \"\\(.*\\)\"$/\\1/p' /etc/pgbouncer/userlist.txt)\" "
        f"psql -X -At -h 127.0.0.1 -p {port} -U {user} -d {hostvars['pgbouncer_database']} -c \"{query}\"")


def leader(host: Any, fleet: dict[str, Any], hostvars: dict[str, Any]) -> str:
    members = [(n, e["vars"]) for n, e in fleet.items() if hostvars["haproxy_db_group"] in e["vars"]["group_names"]]
    name, v = members[0]
    cluster = json.loads(host.check_output(f"curl -sf --cacert /etc/haproxy/patroni-ca.crt "
                                           f"https://{v['ansible_host']}:{v['patroni_rest_port']}/cluster"))
    return next(m["name"] for m in cluster["members"] if m["role"] == "leader")


def test_the_read_write_route_reaches_the_leader(host: Any, hostvars: dict[str, Any], fleet: dict[str, Any]) -> None:
    address = through(host, hostvars, hostvars["haproxy_rw_port"], "select inet_server_addr()")
    assert address == fleet[leader(host, fleet, hostvars)]["vars"]["ansible_host"]
    assert through(host, hostvars, hostvars["haproxy_rw_port"], "select pg_is_in_recovery()") == "f"


def test_the_read_only_route_reaches_a_replica(host: Any, hostvars: dict[str, Any]) -> None:
    assert through(host, hostvars, hostvars["haproxy_ro_port"], "select pg_is_in_recovery()") == "t"


def test_routes_listen_on_loopback_only(host: Any, hostvars: dict[str, Any]) -> None:
    for port in (hostvars["haproxy_rw_port"], hostvars["haproxy_ro_port"]):
        assert host.socket(f"tcp://127.0.0.1:{port}").is_listening
        assert not host.socket(f"tcp://0.0.0.0:{port}").is_listening
