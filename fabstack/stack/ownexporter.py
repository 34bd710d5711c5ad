"""What every exporter of fabstack's own (a small Python script where Debian packages none that works) declares on
its host: its account, its script beside the shared HTTP helper, its systemd unit and its service."""

from __future__ import annotations

from typing import Any

from fabstack.engine.role import EXPORTER_USER, HOST_LIB, RoleContext


def own_exporter(ctx: RoleContext, name: str, **unit_values: Any) -> None:
    """Declare the exporter ``name``: the role's ``files/NAME-exporter.py`` as ``HOST_LIB/NAME-exporter.py``, run by
    the role's ``fabstack-NAME-exporter.service.j2`` as the exporters' account on the host's private address.
    The role names the handlers "reload systemd" and "restart NAME exporter"."""
    script = f"{HOST_LIB}/{name}-exporter.py"
    restart = f"restart {name} exporter"
    ctx.user(EXPORTER_USER)
    ctx.file(script, (ctx.role.path / "files" / f"{name}-exporter.py").read_bytes(), mode="0755", notify=restart)
    unit = f"fabstack-{name}-exporter"
    ctx.template(f"{unit}.service.j2", f"/etc/systemd/system/{unit}.service", notify=["reload systemd", restart],
                 script=script, user=EXPORTER_USER, address=ctx.facts["primary_address"], **unit_values)
    ctx.service(unit)
