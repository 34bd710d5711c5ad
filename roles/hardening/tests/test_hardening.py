"""testinfra checks of the hardening role: each measure is live, not just written."""

from typing import Any

import pytest


def test_fail2ban_watches_sshd_and_bans_through_nftables(host: Any) -> None:
    assert host.service("fail2ban").is_running
    status = host.check_output("fail2ban-client status sshd")
    assert "Journal matches:  _SYSTEMD_UNIT=sshd.service" in status or "_SYSTEMD_UNIT=ssh" in status, status
    assert "nftables" in host.check_output("fail2ban-client get sshd actions")


def test_unattended_upgrades_take_security_updates_only(host: Any, hostvars: dict[str, Any]) -> None:
    config = host.check_output("apt-config dump")
    origins = [line for line in config.splitlines() if line.startswith("Unattended-Upgrade::Origins-Pattern:: ")]
    assert origins and all("-security" in line for line in origins), origins
    enabled = '"1"' if hostvars["hardening_unattended_upgrades"] else '"0"'
    assert f'APT::Periodic::Unattended-Upgrade {enabled};' in config
    reboot = "true" if hostvars["hardening_automatic_reboot"] else "false"
    assert f'Unattended-Upgrade::Automatic-Reboot "{reboot}";' in config
    assert host.service("apt-daily-upgrade.timer").is_enabled


def test_login_defs_umask_and_no_core_dumps(host: Any, hostvars: dict[str, Any]) -> None:
    assert f"UMASK           {hostvars['hardening_umask']}" in host.file("/etc/login.defs").content_string
    assert host.check_output("su -s /bin/sh nobody -c 'ulimit -H -c'") == "0"


def test_blacklisted_modules_cannot_load(host: Any, hostvars: dict[str, Any]) -> None:
    config = host.check_output("cat /etc/modprobe.d/fabstack-hardening.conf")
    for module in hostvars["hardening_blacklisted_modules"]:
        assert f"install {module} /bin/true" in config and f"blacklist {module}" in config


def test_compilers_are_root_only(host: Any, hostvars: dict[str, Any]) -> None:
    for path in hostvars["hardening_compilers"]:
        if host.file(path).exists:
            assert host.run(f"su -s /bin/sh nobody -c '{path} --version'").rc != 0, path


def test_kernel_settings_hold_where_the_kernel_lets_them(host: Any, hostvars: dict[str, Any]) -> None:
    if host.run("test -w /proc/sys/kernel/dmesg_restrict").rc != 0:
        # a container's kernel settings are its host's: the deploy reports each as skipped, with the reason
        pytest.skip("/proc/sys is read-only here")
    for key, value in hostvars["hardening_sysctls"].items():
        path = "/proc/sys/" + key.replace(".", "/")
        if host.file(path).exists:
            assert host.check_output(f"cat {path}").split() == str(value).split(), key


def test_legal_banner(host: Any, hostvars: dict[str, Any]) -> None:
    if not hostvars["hardening_banner"]:
        pytest.skip("no banner asked for")
    for path in ("/etc/issue", "/etc/issue.net"):
        assert host.file(path).content_string.startswith("Authorized") or hostvars["hardening_banner"].split()[0] in \
            host.file(path).content_string
