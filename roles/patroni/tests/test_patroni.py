"""testinfra checks of the patroni role: the member runs under Patroni in the cluster of every db host that
carries the role, exactly one member holds the lease, and etcd holds the env's cluster settings."""

import json
from typing import Any

# the REST API answers over HTTPS with a certificate the cluster's CA issued (the member's copy of the CA)
CURL = "curl --cacert /etc/patroni/tls/ca.crt"


def rest(hostvars: dict[str, Any]) -> str:
    return f"https://{hostvars['ansible_host']}:{hostvars['patroni_rest_port']}"


def cluster(host: Any, hostvars: dict[str, Any]) -> dict[str, Any]:
    return json.loads(host.check_output(f"{CURL} -sf -m 3 {rest(hostvars)}/cluster"))


def test_every_member_is_in_one_cluster_with_one_leader(host: Any, hostvars: dict[str, Any],
                                                        fleet: dict[str, Any]) -> None:
    members = {m["name"]: m for m in cluster(host, hostvars)["members"]}
    assert set(members) == {name for name, entry in fleet.items() if "patroni" in entry["roles"]}
    assert [m["role"] for m in members.values()].count("leader") == 1
    assert all(m["state"] in ("running", "streaming") for m in members.values()), members


def test_only_the_leader_answers_primary(host: Any, hostvars: dict[str, Any]) -> None:
    code = host.check_output(f"{CURL} -s -o /dev/null -w '%{{http_code}}' -m 3 {rest(hostvars)}/primary")
    in_recovery = host.check_output("runuser -u postgres -- psql -X -At -c 'select pg_is_in_recovery()'")
    assert code == ("503" if in_recovery == "t" else "200")


def test_etcd_holds_the_envs_cluster_settings(host: Any, hostvars: dict[str, Any]) -> None:
    held = json.loads(host.check_output(f"{CURL} -sf -m 3 {rest(hostvars)}/config"))
    assert (held["ttl"], held["loop_wait"], held["retry_timeout"]) == (
        hostvars["patroni_ttl"], hostvars["patroni_loop_wait"], hostvars["patroni_retry_timeout"])
    assert held["synchronous_mode"] == hostvars["postgresql_synchronous"]


def test_the_rest_api_speaks_only_tls_with_the_clusters_certificate(host: Any, hostvars: dict[str, Any]) -> None:
    plain = host.run(f"curl -s -o /dev/null -w '%{{http_code}}' -m 3 http://{hostvars['ansible_host']}:"
                     f"{hostvars['patroni_rest_port']}/cluster")
    untrusted = host.run(f"curl -s -o /dev/null -m 3 {rest(hostvars)}/cluster")  # the system's CAs only
    assert plain.stdout != "200" and untrusted.rc == 60  # 60: the peer's certificate cannot be verified
