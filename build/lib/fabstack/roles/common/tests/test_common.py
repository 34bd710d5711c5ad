"""testinfra checks of the common role, run by `inv verify` on every host carrying it."""

from typing import Any


def test_base_packages_installed(host: Any, hostvars: dict[str, Any]) -> None:
    for name in hostvars["common_packages"]:
        assert host.package(name).is_installed, name


def test_timezone(host: Any, hostvars: dict[str, Any]) -> None:
    assert host.file("/etc/timezone").content_string.strip() == hostvars["common_timezone"]
    assert host.file("/etc/localtime").linked_to == f"/usr/share/zoneinfo/{hostvars['common_timezone']}"


def test_somaxconn_live_and_persisted(host: Any, hostvars: dict[str, Any]) -> None:
    persisted = host.file("/etc/sysctl.d/60-fabstack-net.core.somaxconn.conf")
    assert f"net.core.somaxconn = {hostvars['common_somaxconn']}" in persisted.content_string
    assert host.sysctl("net.core.somaxconn") == hostvars["common_somaxconn"]


def test_nofile_limit_within_host_limit(host: Any, hostvars: dict[str, Any]) -> None:
    conf = host.file("/etc/systemd/system.conf.d/60-fabstack-limits.conf").content_string
    configured = int(conf.split("DefaultLimitNOFILE=")[1].split()[0])
    assert 1024 <= configured <= hostvars["common_nofile_limit"]
    # a login still works with the configured limit (pam_limits would refuse one above the hard limit)
    assert int(host.check_output("ulimit -Hn")) >= configured
