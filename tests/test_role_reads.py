"""Every setting a role or an engine module reads by name is owned by a role's defaults (or generated secrets),
or is one the engine, the inventory or the sandbox declare; a role that reads another role's settings declares it
(``NEEDS``: must run on the same host, refused otherwise; ``READS``: read when present), and a host that runs a role
without one it needs is refused before anything happens."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fabstack.engine.errors import FabstackError
from fabstack.engine.inventory import INVENTORY_VARIABLES
from fabstack.engine.project import ENGINE_SETTINGS
from fabstack.engine.role import Role, load_role
from fabstack.sandbox.hosts import SETTINGS as SANDBOX_SETTINGS
from fabstack.tiers.env import RULES, load_env
from tests.conftest import REPO

ROLES = {path.parent.name: load_role(REPO / "roles", path.parent.name) for path in (REPO / "roles").glob("*/role.py")}
# a read by name: v["x"], values.get("x"), ctx.vars["x"], setup.vars.get("x") ...; and {{ x }} in templates
_READ = re.compile(r'''(?:\bv|\bvalues|\bvars)\s*(?:\[\s*|\.get\(\s*)["']([a-z_][a-z0-9_]*)["']''')
_TEMPLATED = re.compile(r"\{\{\s*([a-z_][a-z0-9_]*)")


def owner_of() -> dict[str, set[str]]:
    """Setting -> the roles that own it (its defaults, or its generated secrets: several roles may share one)."""
    owners: dict[str, set[str]] = {}
    for name, role in ROLES.items():
        for key in [*role.defaults, *role.generated_secrets]:
            owners.setdefault(key, set()).add(name)
    return owners


def reads_of(role: Role) -> set[str]:
    """The setting names a role's role.py and templates read."""
    files = [role.path / "role.py", *sorted((role.path / "templates").glob("*"))]
    text = "\n".join(f.read_text() for f in files if f.is_file())
    return set(_READ.findall(text)) | set(_TEMPLATED.findall(text))


def undeclared(role: Role, owners: dict[str, set[str]]) -> list[str]:
    """Other roles' settings a role reads without naming one of their owners in NEEDS or READS."""
    declared = {role.name, *role.needs, *role.reads}
    return sorted(f"{key} ({', '.join(sorted(owners[key]))})" for key in reads_of(role)
                  if key in owners and not owners[key] & declared)


@pytest.mark.parametrize("name", sorted(ROLES))
def test_a_role_declares_the_roles_whose_settings_it_reads(name: str) -> None:
    role = ROLES[name]
    assert undeclared(role, owner_of()) == []
    assert set(role.needs) | set(role.reads) <= set(ROLES)


def test_every_setting_an_engine_module_reads_is_owned_or_declared() -> None:
    known = set(owner_of()) | set(ENGINE_SETTINGS) | set(INVENTORY_VARIABLES) | set(SANDBOX_SETTINGS) | set(
        RULES.settings)
    unowned = {}
    for path in sorted((REPO / "fabstack").rglob("*.py")):
        found = set(_READ.findall(path.read_text())) - known
        if found:
            unowned[str(path.relative_to(REPO))] = sorted(found)
    assert unowned == {}


def test_an_undeclared_read_is_found(tmp_path: Path) -> None:
    role = tmp_path / "spy"
    (role / "defaults").mkdir(parents=True)
    (role / "defaults" / "main.yml").write_text("spy_port: 1\n")
    (role / "role.py").write_text('def deploy(ctx):\n    ctx.file("/x", ctx.vars["php_fpm_service"])\n')
    assert undeclared(load_role(tmp_path, "spy"), owner_of()) == ["php_fpm_service (php)"]


def test_a_host_without_a_role_it_needs_is_refused_before_anything(project_copy: Path) -> None:
    site = project_copy / "site.yml"
    site.write_text(site.read_text().replace("roles: [php, php_app]", "roles: [php_app]"))
    with pytest.raises(FabstackError, match="role php_app needs role php on the same host") as refused:
        load_env(project_copy, "sandbox").setup("app1", None)
    assert refused.value.key == "roles" and refused.value.host == "app1"
