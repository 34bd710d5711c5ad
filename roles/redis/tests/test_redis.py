"""testinfra checks of the redis role."""

from typing import Any

# The app user's password, from whichever app's settings on this host hold it (FastAPI's, or the Laravel shop's)
AUTH = ("REDISCLI_AUTH=\"$(sed -n 's/^REDIS_PASSWORD=\\\"\\{0,1\\}\\([^\\\"]*\\)\\\"\\{0,1\\}$/\\1/p' "
        "/etc/fabstack/fastapi-app.env /srv/php-app/shared/.env 2>/dev/null | head -n 1)\"")


def test_running_and_enabled(host: Any) -> None:
    service = host.service("redis-server")
    assert service.is_running and service.is_enabled


def test_refuses_a_client_without_auth(host: Any) -> None:
    out = host.run("redis-cli -h 127.0.0.1 get anything")
    assert "NOAUTH" in out.stdout + out.stderr


def test_app_user_works_but_dangerous_commands_are_refused(host: Any, hostvars: dict[str, Any]) -> None:
    user = hostvars["redis_app_user"]
    assert host.check_output(f"{AUTH} redis-cli --no-auth-warning --user {user} -h 127.0.0.1 ping") == "PONG"
    refused = host.check_output(f"{AUTH} redis-cli --no-auth-warning --user {user} -h 127.0.0.1 flushall")
    assert "NOPERM" in refused


def test_memory_and_persistence_follow_use(host: Any, hostvars: dict[str, Any], computed: dict[str, Any]) -> None:
    conf = host.file("/etc/redis/redis.conf").content_string
    assert f"maxmemory {computed['redis_maxmemory_mb']}mb" in conf
    if hostvars["redis_use"] == "queue":
        assert "maxmemory-policy noeviction" in conf and "appendfsync everysec" in conf
    assert host.file("/etc/redis/users.acl").mode == 0o640


def test_listens_on_private_address_and_loopback_only(host: Any, hostvars: dict[str, Any]) -> None:
    port = hostvars["redis_port"]
    address = host.check_output("hostname -I").split()[0]
    assert host.socket(f"tcp://{address}:{port}").is_listening
    assert not host.socket(f"tcp://0.0.0.0:{port}").is_listening
