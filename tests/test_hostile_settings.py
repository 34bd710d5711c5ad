"""Every string setting of every role, set to hostile values: refused at input with one line naming the key, or
present in what would reach a host only where it cannot act (docs/security.md, "values").

For each env and each hostile value, every string setting the env's roles know is set at once to that value
tagged with the setting's name (so an occurrence names its setting); a setting refused at input is recorded and
taken out, and the rest planned again, until the plan stands. Then every shell command (commands, their guards,
validate lines, handlers, cron lines, shell scripts) must hold the value only quoted; nginx and nftables files
must not hold a value with their syntax in it at all (refused unless it fits the value's grammar); no file may
hold a value with a line break or a NUL as it is (that adds lines of its own); Python files never hold a quote
or a line break from a value.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fabstack.engine import operations as ops
from fabstack.engine.errors import FabstackError
from fabstack.engine.runner import declare_offline
from fabstack.tiers.env import load_env
from tests.conftest import copy_project, record_fake_host_keys
from tests.shellcheck_quoting import unsafe_use
from tests.test_roles_declare import SMALL, host_facts

# Each one a way a value could act where it lands: ``{k}`` is the setting's name, so a finding names its setting.
HOSTILE = {
    "command substitution": "$(touch /tmp/fabstack-pwned-{k})",
    "backticks": "`touch /tmp/fabstack-pwned-{k}`",
    "semicolon": "x; touch /tmp/fabstack-pwned-{k}",
    "newline": "x\ntouch /tmp/fabstack-pwned-{k}\n",
    "braces": "x }} server {{ listen 81; }} # {k}",
    "double quote": 'x" ; touch /tmp/fabstack-pwned-{k}; "',
    "single quote": "x' ; touch /tmp/fabstack-pwned-{k}; '",
    "NUL": "x\x00{k}",
    "10,000 characters": "{k}-" + "A" * 10_000,
}
ENVS = ("sandbox", "mariadb")
SHELL_SUFFIXES = (".sh",)
NGINX_OR_NFT = ("/etc/nginx/", "/etc/nftables")


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the repo with host keys recorded for the MariaDB env (its replicas trust their primary's)."""
    root = copy_project(tmp_path_factory.mktemp("hostile") / "repo")
    record_fake_host_keys(root, "mariadb")
    return root


def string_settings(project: Any) -> list[str]:
    """Every setting whose role default is a string, in the roles this env deploys."""
    return sorted({key for role in project.roles.values() for key, default in role.defaults.items()
                   if isinstance(default, str)})


def string_list_settings(project: Any) -> list[str]:
    """Every list setting whose role's spec (``SETTINGS``) says what each item must be: given one hostile item."""
    return sorted({key for role in project.roles.values() for key, spec in role.settings.items()
                   if spec.item is not None and isinstance(role.defaults[key], list)})


def plan(project: Any, overrides: dict[str, str], first: str = "") -> dict[str, list[tuple[Any, ops.Operation]]]:
    """Every host's operations with ``overrides``; each host's input is checked first (cheap, ``first`` host
    first: the one that refused last time likely refuses again), so a refusal is found without planning the fleet.
    """
    project.use_overrides(overrides)
    for name in sorted(project.inventory.hosts, key=lambda h: h != first):
        project.setup(name, None)
    facts = {name: host_facts(str(project.setup(name, None).vars["ansible_host"]), name, SMALL)
             for name in project.inventory.hosts}
    return declare_offline(project, facts)


def shell_texts(project: Any, declared: dict[str, list[tuple[Any, ops.Operation]]]) -> list[tuple[str, str]]:
    """(where, shell text) for everything a host would run."""
    found = []
    for host, items in declared.items():
        values = project.setup(host, None).vars
        for role in {role.name: role for role, _ in items}.values():
            for name, command in role.handler_commands(values, host).items():
                found.append((f"{host} {role.name} handler {name}", command))
        for role, op in items:
            where = f"{host} {role.name} {op.id}"
            if isinstance(op, ops.Command):
                found += [(where, text) for text in (op.command, op.creates, op.unless) if text]
            if isinstance(op, ops.File):
                if op.validate:
                    found.append((f"{where} validate", op.validate))
                text = op.content.decode(errors="replace")
                if op.path.startswith("/etc/cron.d/"):
                    found += [(where, line.split(" ", 6)[-1]) for line in text.splitlines()
                              if line[:1].isdigit() or line[:1] == "*"]
                elif op.path.endswith(SHELL_SUFFIXES) or (text.startswith("#!") and "python" not in text[:40]):
                    found.append((where, text))
    return found


def findings(project: Any, declared: dict, values: dict[str, str]) -> list[str]:
    """Every place a hostile value stands where it could act."""
    found = []
    texts = shell_texts(project, declared)
    for key, value in values.items():
        for where, text in texts:
            problem = unsafe_use(text, value)
            if problem:
                found.append(f"{key}: {where}: {problem}")
        for host, items in declared.items():
            for _role, op in items:
                if not isinstance(op, ops.File):
                    continue
                text = op.content.decode(errors="replace")
                if value not in text:
                    continue
                syntax = any(c in value for c in ";{}\n\"'")
                if op.path.startswith(NGINX_OR_NFT) and syntax:
                    found.append(f"{key}: {host} {op.path}: its syntax in an nginx or nftables file")
                elif "\n" in value or "\x00" in value:
                    found.append(f"{key}: {host} {op.path}: a line break or NUL written as it is")
                elif (op.path.endswith(".py") or "python" in text[:40]) and any(c in value for c in "\"'\n"):
                    found.append(f"{key}: {host} {op.path}: a quote inside Python source")
    return found


@pytest.mark.parametrize("env", ENVS)
@pytest.mark.parametrize("kind", list(HOSTILE))
def test_every_string_setting_is_refused_or_inert(repo: Path, env: str, kind: str, record_property: Any) -> None:
    project = load_env(repo, env)
    keys = string_settings(project) + string_list_settings(project)
    pending: dict[str, Any] = {key: HOSTILE[kind].format(k=key) for key in string_settings(project)}
    pending |= {key: [HOSTILE[kind].format(k=key)] for key in string_list_settings(project)}
    refused: dict[str, str] = {}
    last = ""
    while True:
        try:
            declared = plan(project, pending, last)
            break
        except FabstackError as exc:
            last = exc.host
            line = exc.line()
            key = exc.key.removeprefix("--set ").split("[")[0]
            if key not in pending:  # a pair of settings (a certificate and its key): the message names the other
                key = next((k for k in pending if k in exc.message), key)
            assert key in pending, f"refused without naming a setting it was given: {line}"
            assert "\n" not in line and "Traceback" not in line
            refused[key] = line
            del pending[key]
    problems = findings(project, declared, {k: v[0] if isinstance(v, list) else v for k, v in pending.items()})
    record_property("tried", json.dumps({"settings": len(keys), "refused": len(refused), "inert": len(pending)}))
    assert not problems, "\n".join(problems)


def test_credentials_in_urls_are_masked() -> None:
    from fabstack.engine.masking import Masker, secret_values

    values = {"alertmanager_webhook_url": "https://hooks.slack.com/services/T0ABCDEF/B0GHIJKL/xYzXyZ0123456789abcdef",
              "backup_target": "sftp://backup:s3cr3t-pass@backup1.example/srv"}
    masker = Masker(secret_values(values))
    shown = masker(f"notify {values['alertmanager_webhook_url']} and {values['backup_target']}")
    assert "xYzXyZ0123456789abcdef" not in shown and "s3cr3t-pass" not in shown
    assert "hooks.slack.com" in shown  # where it goes stays readable


@pytest.mark.parametrize(("key", "value"), [
    ("nginx_lb_routes", [{"path": "/ { return 200 pwned; } location /x", "app": "shop"}]),
    ("nginx_lb_routes", [{"path": "/api/", "app": "shop; include /etc/passwd"}]),
    ("nginx_lb_routes", [{"path": "/api/", "app": "shop", "proxy": "evil"}]),
    ("nginx_status_allow", ["127.0.0.1; allow all"]),
    ("nginx_status_allow", ["10.0.0.0/8\n  allow all"]),
    ("firewall_admin_sources", ["10.0.0.1 } ; chain evil {"]),
    ("firewall_admin_sources", ["0.0.0.0/0, 1.2.3.4"]),
])
def test_list_items_that_reach_nginx_or_nftables_must_fit_their_grammar(repo: Path, key: str, value: list) -> None:
    """``nginx -t`` and ``nft -c`` check syntax, not intent: a route path or an address that adds statements is
    refused at input, naming the key."""
    project = load_env(repo, "sandbox")
    with pytest.raises(FabstackError) as caught:
        plan(project, {key: value})
    assert caught.value.key == key, caught.value.line()


def test_addresses_and_networks_still_pass(repo: Path) -> None:
    project = load_env(repo, "sandbox")
    declared = plan(project, {"firewall_admin_sources": ["10.213.0.1/32", "fd00::/8"],
                              "nginx_status_allow": ["127.0.0.1"]})
    assert declared
