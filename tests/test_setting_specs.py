"""Role settings are declared (``SETTINGS`` specs, descriptions in the defaults) and the engine holds every value to
its spec: each declared bound, choice, pattern and item rule refuses a value past it, in one line naming the key and
the host, before any host is reached."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from fabstack.engine.errors import FabstackError
from fabstack.engine.inventory import env_names
from fabstack.engine.role import load_role
from fabstack.engine.settingspec import Setting
from fabstack.tiers.env import load_env
from tests.conftest import REPO, copy_project

ROLES = {path.parent.name: load_role(REPO / "roles", path.parent.name) for path in (REPO / "roles").glob("*/role.py")}
ENVS = env_names(REPO / "inventory")


def refused_value(spec: Setting, default: Any) -> Any:
    """A value of the default's type that the spec must refuse (None when it declares nothing to refuse)."""
    if spec.nonempty and isinstance(default, list | str):
        return type(default)()
    if spec.choices:
        return 7 if isinstance(default, int) else "not-a-choice"
    if spec.above is not None:
        return type(default)(spec.above)
    if spec.least is not None:
        return type(default)(spec.least - 1)
    if spec.most is not None:
        return type(default)(spec.most + 1)
    if spec.pattern:
        for candidate in ("has space", "UPPER;case", "x" * 300, "no/leading-slash"):
            if not re.fullmatch(spec.pattern, candidate):
                return candidate
    if spec.item is not None and isinstance(default, list):
        sample = default[0] if default else ""
        bad_item = refused_value(spec.item, sample)
        return None if bad_item is None else [*default, bad_item]
    return None


CASES = [(role.name, key, value) for role in ROLES.values() for key, spec in role.settings.items()
         if (value := refused_value(spec, role.defaults[key])) is not None]


def test_every_setting_of_every_role_is_described_in_its_defaults() -> None:
    undescribed = [f"{role.name}: {key}" for role in ROLES.values()
                   for key, text in role.descriptions.items() if not text]
    assert not undescribed, "a comment above each setting in defaults/main.yml says what it is: " + ", ".join(
        undescribed)


def test_every_role_default_meets_its_own_spec() -> None:
    wrong = [(role.name, key, why) for role in ROLES.values() for key, spec in role.settings.items()
             if "{{" not in str(role.defaults[key]) and (why := spec.problem(role.defaults[key]))]
    assert not wrong


def test_specs_are_walked_and_most_declared_settings_can_be_refused() -> None:
    assert len(CASES) >= 100  # the specs replaced the hand-written checks of 20 roles


@pytest.fixture(scope="module")
def projects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = copy_project(tmp_path_factory.mktemp("specs") / "repo")
    return {env: load_env(root, env) for env in ENVS}


def a_host_carrying(projects: dict[str, Any], role: str) -> tuple[Any, str]:
    for project in projects.values():
        for host in project.inventory.hosts:
            if role in {r.name for r in project.roles_for(host)}:
                return project, host
    raise AssertionError(f"no env of the repo deploys role {role}")


@pytest.mark.parametrize(("role", "key", "value"), CASES, ids=[f"{role}.{key}" for role, key, _ in CASES])
def test_a_value_past_its_spec_is_refused_naming_key_and_host(projects: dict[str, Any], role: str, key: str,
                                                              value: Any) -> None:
    project, host = a_host_carrying(projects, role)
    project.use_overrides({key: value})
    try:
        with pytest.raises(FabstackError) as refused:
            project.setup(host, None)
        assert refused.value.key == key and refused.value.host == host, refused.value.line()
        assert "\n" not in refused.value.line()
    finally:
        project.use_overrides({})


def test_a_declared_secret_is_never_shown(projects: dict[str, Any]) -> None:
    project, host = a_host_carrying(projects, "prometheus")
    assert project.roles["prometheus"].settings["alertmanager_webhook_url"].secret
    url = "https://alerts.example/hook?key=\"sekret-value\""
    project.use_overrides({"alertmanager_webhook_url": url})
    try:
        with pytest.raises(FabstackError) as refused:
            project.setup(host, None)
        assert "sekret-value" not in refused.value.line()
    finally:
        project.use_overrides({})


def test_a_spec_for_a_setting_the_role_does_not_own_is_refused_at_load(tmp_path: Path) -> None:
    role = tmp_path / "roles" / "toy"
    (role / "defaults").mkdir(parents=True)
    (role / "defaults" / "main.yml").write_text("# Workers.\ntoy_workers: 2\n")
    (role / "role.py").write_text(
        "from fabstack.engine.settingspec import Setting, positive\n"
        "SETTINGS = {'toy_workers': positive(64), 'nginx_site': Setting(choices=('lb',))}\n"
        "def deploy(ctx):\n    pass\n")
    with pytest.raises(FabstackError) as refused:
        load_role(tmp_path / "roles", "toy")
    assert refused.value.key == "SETTINGS" and "nginx_site" in refused.value.line()
