"""testinfra checks of the etcd role: every member of the group is in one healthy cluster, reached on its private
address, and the client port is closed to hosts that are neither members nor clients (probed from them)."""

from typing import Any

TLS = "/etc/etcd/tls"


def etcdctl(hostvars: dict[str, Any], command: str) -> str:
    return (f"ETCDCTL_API=3 etcdctl --endpoints=https://{hostvars['ansible_host']}:{hostvars['etcd_client_port']} "
            f"--cacert {TLS}/ca.crt --cert {TLS}/member.crt --key {TLS}/member.key {command}")


def test_every_member_is_in_one_healthy_cluster(host: Any, hostvars: dict[str, Any], fleet: dict[str, Any]) -> None:
    members = {name for name, entry in fleet.items() if hostvars["etcd_group"] in entry["vars"]["group_names"]}
    listed = host.check_output(etcdctl(hostvars, "member list -w simple"))
    assert {line.split(", ")[2] for line in listed.splitlines()} == members
    assert "is healthy" in host.run(etcdctl(hostvars, "endpoint health")).stderr


def test_only_members_and_clients_reach_the_client_port(host: Any, hostvars: dict[str, Any],
                                                          fleet: dict[str, Any], reachable: Any) -> None:
    me = host.backend.get_hostname()
    allowed = {hostvars["etcd_group"], *hostvars["etcd_client_groups"]}
    targets = {(entry["vars"]["ansible_host"], entry["vars"]["etcd_client_port"]): other
               for other, entry in fleet.items()
               if other != me and hostvars["etcd_group"] in entry["vars"]["group_names"]}
    seen = reachable(list(targets))
    may = bool(allowed & set(hostvars["group_names"]))
    wrong = [(targets[t], "open" if opened else "closed") for t, opened in seen.items() if opened != may]
    assert targets and not wrong, wrong


def test_a_client_without_the_clusters_certificate_is_refused(host: Any, hostvars: dict[str, Any]) -> None:
    url = f"https://{hostvars['ansible_host']}:{hostvars['etcd_client_port']}/health"
    with_cert = host.run(f"curl -sf -m 3 --cacert {TLS}/ca.crt --cert {TLS}/member.crt --key {TLS}/member.key {url}")
    without = host.run(f"curl -sf -m 3 --cacert {TLS}/ca.crt {url}")
    plain = host.run(f"curl -sf -m 3 http://{hostvars['ansible_host']}:{hostvars['etcd_client_port']}/health")
    assert with_cert.rc == 0, with_cert.stderr
    assert without.rc != 0 and plain.rc != 0
