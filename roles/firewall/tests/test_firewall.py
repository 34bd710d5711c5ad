"""testinfra checks of the firewall role: the ruleset is live, and each service is closed to the tiers that do
not use it, probed from the other sandbox hosts."""

from typing import Any


def reachable(host: Any, address: str, port: int) -> bool:
    out = host.check_output(f"timeout 1 bash -c '</dev/tcp/{address}/{port}' 2>/dev/null && echo open || echo closed")
    return out.strip() == "open"


def test_ruleset_is_loaded_and_drops_by_default(host: Any) -> None:
    ruleset = host.check_output("nft list ruleset")
    assert "table inet fabstack" in ruleset and "policy drop" in ruleset
    assert host.service("nftables").is_enabled


def test_services_are_open_only_to_their_clients(host: Any, fleet: dict[str, Any]) -> None:
    me = host.backend.get_hostname()
    my_groups = set(fleet[me]["vars"]["group_names"])
    for other, entry in fleet.items():
        if other == me:
            continue
        v, roles, address = entry["vars"], set(entry["roles"]), entry["vars"]["ansible_host"]
        if "postgresql" in roles:
            allowed = bool(my_groups & {"pgbouncer", "db"})
            assert reachable(host, address, v["postgresql_port"]) == allowed, (other, "postgresql")
        if "redis" in roles:
            allowed = bool(my_groups & {"app", "workers"})
            assert reachable(host, address, v["redis_port"]) == allowed, (other, "redis")
        if "pgbouncer" in roles:
            allowed = bool(my_groups & {"app", "workers"})
            assert reachable(host, address, v["pgbouncer_listen_port"]) == allowed, (other, "pgbouncer")
        if "nginx" in roles and v["nginx_site"] != "lb":
            ports = [v["nginx_listen_port"]]
            if v["nginx_site"] == "apps":  # one port per app the host serves
                ports = sorted({a.get("port", 80) for a in v["apps"] if set(a["serve"]) & set(v["group_names"])})
            for port in ports:
                assert reachable(host, address, port) == ("lb" in my_groups), (other, "app nginx", port)
        if "nginx" in roles and v["nginx_site"] == "lb":
            assert reachable(host, address, v["nginx_listen_port"]), (other, "load balancer")
