"""testinfra checks of the node role."""

from typing import Any


def node_apps(hostvars: dict[str, Any]) -> list[dict[str, Any]]:
    """The Node.js apps this host serves."""
    return [app for app in hostvars.get("apps") or [] if app["runtime"] == "node"
            and set(app["serve"]) & set(hostvars["group_names"])]


def test_one_instance_per_core_each_on_loopback_as_the_app_user(host: Any, hostvars: dict[str, Any]) -> None:
    cores = int(host.check_output("nproc"))
    wanted = hostvars["node_instances"] or cores
    for index, app in enumerate(node_apps(hostvars)):
        first = hostvars["node_first_port"] + 100 * index
        for port in range(first, first + wanted):
            service = host.service(f"fabstack-{app['name']}@{port}")
            assert service.is_running and service.is_enabled  # started at boot too
            assert host.socket(f"tcp://127.0.0.1:{port}").is_listening
            assert not host.socket(f"tcp://0.0.0.0:{port}").is_listening
            pid = host.check_output(f"systemctl show -p MainPID --value fabstack-{app['name']}@{port}")
            assert host.check_output(f"ps -o user= -p {pid}") == app.get("user", "www-data")
            # the instance runs the live release's own folder, not a path through "current"
            # read as the instance's own user: root without CAP_SYS_PTRACE (a container) may not look
            cwd = host.check_output(f"runuser -u {app.get('user', 'www-data')} -- readlink /proc/{pid}/cwd")
            assert cwd == host.check_output(f"readlink -f {app.get('dest', '/srv/' + app['name'])}/current")
        assert not host.service(f"fabstack-{app['name']}@{first + wanted}").is_running


def test_journal_is_bounded(host: Any, hostvars: dict[str, Any]) -> None:
    conf = host.file("/etc/systemd/journald.conf.d/60-fabstack.conf").content_string
    assert f"SystemMaxUse={hostvars['node_journal_max_mb']}M" in conf
