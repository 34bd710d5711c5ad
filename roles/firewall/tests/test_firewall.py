"""testinfra checks of the firewall role: the ruleset is live, and each service is closed to the tiers that do
not use it, probed from the other sandbox hosts."""

from typing import Any


def test_ruleset_is_loaded_and_drops_by_default(host: Any) -> None:
    ruleset = host.check_output("nft list ruleset")
    assert "table inet fabstack" in ruleset and "policy drop" in ruleset
    assert host.service("nftables").is_enabled


def test_services_are_open_only_to_their_clients(host: Any, fleet: dict[str, Any], reachable: Any) -> None:
    me = host.backend.get_hostname()
    my_groups = set(fleet[me]["vars"]["group_names"])
    expected: dict[tuple[str, int], tuple[bool, str, str]] = {}  # (address, port) -> (open?, host, what)
    for other, entry in fleet.items():
        if other == me:
            continue
        v, roles, address = entry["vars"], set(entry["roles"]), entry["vars"]["ansible_host"]
        if "postgresql" in roles:
            expected[address, v["postgresql_port"]] = (bool(my_groups & {"pgbouncer", "db"}), other, "postgresql")
        if "redis" in roles:
            expected[address, v["redis_port"]] = (bool(my_groups & {"app", "workers"}), other, "redis")
        if "pgbouncer" in roles:
            expected[address, v["pgbouncer_listen_port"]] = (bool(my_groups & {"app", "workers"}), other, "pgbouncer")
        if "nginx" in roles and v["nginx_site"] != "lb":
            ports = [v["nginx_listen_port"]]
            if v["nginx_site"] == "apps":  # one port per app the host serves
                ports = sorted({a.get("port", 80) for a in v["apps"] if set(a["serve"]) & set(v["group_names"])})
            for port in ports:
                expected[address, port] = ("lb" in my_groups, other, f"app nginx {port}")
        if "nginx" in roles and v["nginx_site"] == "lb":
            expected[address, v["nginx_listen_port"]] = (True, other, "load balancer")
    seen = reachable(list(expected))
    wrong = [(other, what, "open" if seen[target] else "closed")
             for target, (allowed, other, what) in expected.items() if seen[target] != allowed]
    assert not wrong, wrong
