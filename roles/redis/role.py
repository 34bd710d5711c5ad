"""redis: private address only, ACL users (no anonymous access), maxmemory and persistence by use."""

from __future__ import annotations

from typing import Any

from fabstack.engine.role import RoleContext
from fabstack.engine.rolecontract import Commitment, Inbound
from fabstack.engine.settingspec import TCP_PORT, Setting

# Roles whose settings this role reads when the host runs them too (the firewall asks for inbound ports).
READS = ("firewall",)

GENERATED_SECRETS = ("redis_app_password", "redis_admin_password")

# Settings holding TCP ports this role listens on: the engine refuses two roles sharing one on a host.
PORTS = ("redis_port",)

HANDLERS = {
    "restart redis": "systemctl restart redis-server",
}


def inbound(values: dict[str, Any]) -> list[Inbound]:
    """Redis is reached by the apps and the workers."""
    return [Inbound((values["redis_port"],), "Redis: apps and workers", tuple(values["firewall_app_groups"]))]


SETTINGS = {"redis_use": Setting(choices=("queue", "cache")), "redis_maxmemory_mb": Setting(least=0),
            "redis_port": TCP_PORT}


def commitment(values: dict[str, Any], facts: dict[str, Any] | None) -> Commitment | None:
    """maxmemory (configured, or a quarter of the host), twice over for a queue: a snapshot or AOF rewrite forks,
    and copy-on-write can touch up to the whole dataset again."""
    if facts is None:
        return None
    maxmemory = values["redis_maxmemory_mb"] or facts["memory_mb"] // 4
    fork = values["redis_use"] == "queue"
    return Commitment(computed={"redis_maxmemory_mb": maxmemory},
                      memory=[("redis maxmemory" + (" x2 (fork)" if fork else ""), maxmemory * (2 if fork else 1))],
                      memory_key="redis_maxmemory_mb",
                      summary=f"redis     maxmemory {maxmemory}MB, use {values['redis_use']}")


def deploy(ctx: RoleContext) -> None:
    """Declare Redis with its config, ACL file and the kernel settings it needs."""
    ctx.packages("redis-server")
    v = ctx.vars
    # ACL files take no comments, so this one is written without a template header.
    acl = (f"user default off\n"
           f"user {v['redis_app_user']} on >{v['redis_app_password']} ~* &* +@all -@dangerous\n"
           f"user admin on >{v['redis_admin_password']} ~* &* +@all\n")
    ctx.file("/etc/redis/users.acl", acl, owner="redis", group="redis", mode="0640", secret=True,
              notify="restart redis")
    ctx.template("redis.conf.j2", "/etc/redis/redis.conf", owner="redis", group="redis", mode="0640",
                  notify="restart redis", maxmemory_mb=ctx.computed["redis_maxmemory_mb"],
                  bind=["127.0.0.1", ctx.facts["primary_address"]])
    # Redis warns and can stall on fork with transparent huge pages; tmpfiles applies this at every boot.
    ctx.file("/etc/tmpfiles.d/fabstack-thp.conf",
              f"# {ctx.vars_managed()}\nw /sys/kernel/mm/transparent_hugepage/enabled - - - - never\n")
    ctx.kernel_file("/sys/kernel/mm/transparent_hugepage/enabled", "never")
    ctx.service("redis-server")
