"""What the hardening, sshd and firewall roles declare and refuse, from the project alone (no host): the audit
trail only where the platform has one, ssh-audit's bar as checked input, the SSH rate limit in the ruleset."""

from __future__ import annotations

from pathlib import Path

import pytest

from fabstack.engine.errors import FabstackError
from tests.conftest import REPO
from tests.test_roles_declare import ops_by_host


def declared(container: str, *overrides: str) -> dict[str, dict[str, object]]:
    """Each sandbox host's operations by id, planned from offline facts of a VM or of a container."""
    return ops_by_host(overrides=overrides, container=container)


def test_the_audit_trail_and_accounting_come_only_where_the_kernel_lets_them_run() -> None:
    on_vm, in_container = declared("")["db1"], declared("podman")["db1"]
    assert {"service auditd", "service acct"} <= set(on_vm)
    assert not {"service auditd", "service acct"} & set(in_container)
    assert "service fail2ban" in in_container and "file /etc/login.defs" in in_container


def test_fail2ban_never_bans_the_fleet_or_the_admins() -> None:
    jail = declared("podman")["db1"]["file /etc/fail2ban/jail.local"].content.decode()
    ignore = next(line for line in jail.splitlines() if line.startswith("ignoreip"))
    assert "10.213.0.1/32" in ignore and "10.213.0.11/32" in ignore and "10.213.0.41/32" in ignore


def test_sshd_offers_only_ed25519_and_etm_macs() -> None:
    conf = declared("podman")["lb1"]["file /etc/ssh/sshd_config.d/00-fabstack.conf"].content.decode()
    assert "HostKey /etc/ssh/ssh_host_ed25519_key" in conf and "ecdsa" not in conf
    assert "HostKeyAlgorithms ssh-ed25519\n" in conf
    macs = next(line for line in conf.splitlines() if line.startswith("MACs ")).split()[1].split(",")
    assert macs and all(mac.endswith("-etm@openssh.com") for mac in macs)
    assert "PerSourceMaxStartups" in conf and "DisableForwarding yes" in conf


def test_the_ssh_rate_limit_is_in_every_hosts_ruleset() -> None:
    for host, ops in declared("podman").items():
        rules = ops["file /etc/nftables.conf"].content.decode()
        assert "limit rate over 5/second burst 10 packets" in rules, host
        assert "flush ruleset" not in rules, host  # fail2ban's own table survives a reload


@pytest.mark.parametrize("setting,message", [
    ('sshd_macs=["hmac-sha2-256"]', "encrypt-then-MAC"),
    ('sshd_host_key_types=["ecdsa"]', "one of ed25519, rsa, got 'ecdsa'"),
    ("firewall_ssh_rate=0", "from 1 to at most 1000, got 0"),
    ("hardening_umask=\"0999\"", "octal umask"),
    ('hardening_blacklisted_modules=["usb storage"]', "must be a module name, got 'usb storage'"),
])
def test_settings_that_would_fail_an_audit_or_lock_us_out_are_refused(setting: str, message: str) -> None:
    with pytest.raises(FabstackError, match=message) as refused:
        declared("podman", setting)
    assert refused.value.key == setting.split("=")[0] and refused.value.host


def test_every_new_setting_is_explained_in_its_defaults() -> None:
    for role in ("hardening", "sshd", "firewall"):
        lines = Path(REPO / "roles" / role / "defaults" / "main.yml").read_text().splitlines()
        for index, line in enumerate(lines):
            if line and not line.startswith((" ", "#")) and ":" in line:
                above = lines[index - 1] if index else ""
                assert above.startswith("#") or lines[index - 1].split(":")[0].startswith(role), (role, line)
