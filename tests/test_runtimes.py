"""The runtime registry (docs/runtimes.md): every runtime keeps the contract and owns its server side, so an app is
taken as its team wrote it: its own entry point (ASGI module:attr, package.json's start or main, a command), any
number of apps of one runtime on a host, each with units named after it. A runtime that breaks the contract is named
with what it lacks."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
import yaml

from fabstack.engine.errors import FabstackError
from fabstack.stack.apps import parse_apps
from fabstack.stack.runtimes import RUNTIMES, unit_shell_command
from fabstack.stack.runtimes.base import contract_problems
from fabstack.stack.runtimes.node import START_FILE, entry_of, record_entry
from tests.test_roles_declare import SMALL, declared_for


@pytest.mark.parametrize("name", sorted(RUNTIMES))
def test_each_runtime_keeps_the_contract(name: str) -> None:
    assert contract_problems(RUNTIMES[name]) == []


def test_a_runtime_that_breaks_the_contract_is_named_with_what_it_lacks() -> None:
    asgi = RUNTIMES["asgi"]
    assert contract_problems(dataclasses.replace(asgi, reload=None)) == ["asgi: reload is not a function"]
    one_port = dataclasses.replace(asgi, ports=lambda app, values, index, cpus: [8000])
    assert contract_problems(one_port) == ["asgi: proxied, so two apps on a host need ports of their own (got [8000] "
                                           "and [8000])"]
    shared_unit = dataclasses.replace(asgi, unit=lambda app: "fabstack-fastapi")
    assert contract_problems(shared_unit) == ["asgi: its unit 'fabstack-fastapi' is not named after the app"]
    assert contract_problems(dataclasses.replace(asgi, entry_default="main.py")) == [
        "asgi: entry default 'main.py' does not fit its own grammar"]


def app(**fields: object) -> object:
    """One checked app of the given fields (a node app by default)."""
    entry = {"name": "web", "runtime": "node", "source": {"path": "web"}, "serve": ["app"], **fields}
    return parse_apps([entry], "group_vars/all.yml", {"app"})[0]


def test_asgi_entries_are_module_attr_and_default_to_main_app() -> None:
    assert app(runtime="asgi").entry == "main:app"
    assert app(runtime="asgi", entry="app.main:app").entry == "app.main:app"
    for bad in ("app/main.py", "main", "app.main:app; rm -rf /", ":app"):
        with pytest.raises(FabstackError, match="module:attribute") as refused:
            app(runtime="asgi", entry=bad)
        assert refused.value.key == "apps[web].entry"
    with pytest.raises(FabstackError, match="runtime laravel takes no entry"):
        app(runtime="laravel", entry="public/index.php")
    with pytest.raises(FabstackError, match="starts the app its own way"):
        app(runtime="laravel", command="php -S 0.0.0.0:8000")


def test_an_app_may_not_declare_fabstacks_own_files_writable() -> None:
    for key in ("writable", "shared_dirs", "shared_files"):
        with pytest.raises(FabstackError, match=r"\.fabstack/ holds fabstack's own files") as refused:
            app(**{key: [".fabstack/start.env" if key == "shared_files" else ".fabstack"]})
        assert refused.value.key == f"apps[web].{key}"


@pytest.mark.parametrize(("package", "files", "entry"), [
    ({"scripts": {"start": "node ./bin/www"}}, ["bin/www", "app.js"], "bin/www"),  # express-generator
    ({"main": "src/index.js", "scripts": {"start": "nodemon src/index.js"}}, ["src/index.js"], "src/index.js"),
    ({"name": "plain"}, ["server.js"], "server.js"),  # Next.js standalone, and fabstack's demo apps
])
def test_node_finds_the_entry_the_app_declares(tmp_path: Path, package: dict, files: list[str], entry: str) -> None:
    (tmp_path / "package.json").write_text(json.dumps(package))
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    assert entry_of(app(), tmp_path) == entry
    record_entry(tmp_path, entry)
    assert (tmp_path / START_FILE).read_text() == f"FABSTACK_ENTRY={entry}\n"


def test_a_node_entry_that_is_no_plain_file_of_the_app_is_refused_at_build(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text(json.dumps({"scripts": {"start": "node bin/www"}}))
    with pytest.raises(FabstackError, match="the entry 'bin/www' is not a file of the built app") as refused:
        entry_of(app(), tmp_path)
    assert refused.value.key == "apps[web].entry"
    (tmp_path / "bin").symlink_to("/etc")  # a link out of the tree: never followed, never run
    (tmp_path / "passwd.js").symlink_to("/etc/passwd")
    (tmp_path / "--inspect").write_text("")  # a file that node would read as an option
    for package in ({"scripts": {"start": "node bin/passwd"}}, {"main": "passwd.js"}, {"main": "../x.js"},
                    {"main": "--inspect"}):
        (tmp_path / "package.json").write_text(json.dumps(package))
        with pytest.raises(FabstackError, match="is not a file of the built app"):
            entry_of(app(), tmp_path)
    (tmp_path / ".fabstack").symlink_to("/etc")  # a link where fabstack writes its file is replaced, not followed
    (tmp_path / "server.js").write_text("")
    record_entry(tmp_path, "server.js")
    assert (tmp_path / ".fabstack").is_dir() and not (tmp_path / ".fabstack").is_symlink()


def test_a_command_reaches_sh_alone() -> None:
    line = unit_shell_command('uvicorn app.main:app --port $PORT --log-config "a b.json" # 100%')
    assert line == '/bin/sh -c "exec uvicorn app.main:app --port $$PORT --log-config \\"a b.json\\" # 100%%"'


# Three apps as their teams wrote them, beside the demo apps (tests/integration/test_foreign_apps.py releases them).
FOREIGN = yaml.safe_load((Path(__file__).parent / "fixtures" / "foreign_apps.yml").read_text())


def with_foreign_apps(root: Path) -> Path:
    """The repo with the foreign apps added to the apps of group_vars/all.yml and their routes to the LB's."""
    for group, key in (("all", "apps"), ("lb", "nginx_lb_routes")):
        path = root / "group_vars" / f"{group}.yml"
        data = yaml.safe_load(path.read_text())
        data[key] = data[key] + FOREIGN[key]
        path.write_text(yaml.safe_dump(data, sort_keys=False))
    return root


def test_two_asgi_apps_and_a_generator_app_share_the_app_hosts(project_copy: Path) -> None:
    declared = declared_for(with_foreign_apps(project_copy), dict(SMALL, memory_mb=4096, cpus=2))["app1"]
    files = {op.id.removeprefix("file "): op.content.decode() for _, op in declared if op.id.startswith("file ")}
    units = {name: text for name, text in files.items() if name.startswith("/etc/systemd/system/fabstack-")}
    # each ASGI app its own unit, named after it, on its own port, started from its own entry
    assert "--bind 127.0.0.1:8000" in units["/etc/systemd/system/fabstack-fastapi.service"]
    assert " gunicorn main:app " in units["/etc/systemd/system/fabstack-fastapi.service"]
    tmpl = units["/etc/systemd/system/fabstack-tmplapi.service"]
    assert " gunicorn app.main:app " in tmpl and "--bind 127.0.0.1:8100" in tmpl and "--workers 1 " in tmpl
    assert "hello.asgi:application --pythonpath /srv/helloasgi/current" in units[
        "/etc/systemd/system/fabstack-helloasgi.service"]
    # the generator app runs what its build found, one instance (processes: 1), 100 ports above nextweb's
    gen = units["/etc/systemd/system/fabstack-genapp@.service"]
    assert "EnvironmentFile=-/srv/genapp/current/.fabstack/start.env" in gen
    assert "ExecStart=/usr/bin/node ${FABSTACK_ENTRY}" in gen
    services = [op.id for name, op in declared if name == "node" and op.id.startswith("service ")]
    assert "service fabstack-genapp@3200" in services and "service fabstack-genapp@3201" not in services
    # the host's nginx fronts each on the port the LB routes to, proxying to the app's own loopback ports
    site = files["/etc/nginx/sites-enabled/fabstack.conf"]
    for public, upstream in ((8004, "8100"), (8005, "8200"), (8006, "3200")):
        assert re.search(rf"listen \S*{public}\b", site), public
        assert f"server 127.0.0.1:{upstream};" in site, upstream


def test_an_app_port_that_a_runtime_takes_on_the_host_is_refused(project_copy: Path) -> None:
    root = with_foreign_apps(project_copy)
    path = root / "group_vars" / "all.yml"
    path.write_text(path.read_text().replace("port: 8005", "port: 8100"))
    with pytest.raises(FabstackError, match="port 8100 is also") as refused:
        declared_for(root, dict(SMALL, memory_mb=4096, cpus=2))
    assert refused.value.key == "apps[helloasgi].port"
