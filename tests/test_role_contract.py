"""The role contract (fabstack/engine/rolecontract.py, docs/roles.md): every bundled role keeps it, and a role that
breaks it is refused when loaded, in one line naming the file and the name."""

from __future__ import annotations

from pathlib import Path

import pytest

from fabstack.engine.errors import FabstackError
from fabstack.engine.role import load_role
from tests.conftest import REPO

SKELETON = '''"""demo: the smallest role."""

HANDLERS = {"reload demo": "true"}


def deploy(ctx):
    ctx.directory("/tmp/demo")
'''


def role_error(tmp_path: Path, source: str) -> str:
    """Load a role ``demo`` with this role.py; the one-line error it is refused with."""
    (tmp_path / "demo").mkdir(exist_ok=True)
    (tmp_path / "demo" / "role.py").write_text(source)
    with pytest.raises(FabstackError) as err:
        load_role(tmp_path, "demo")
    line = err.value.line()
    assert "\n" not in line and str(tmp_path / "demo" / "role.py") in line
    return line


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "roles").iterdir() if (p / "role.py").is_file()))
def test_every_bundled_role_keeps_the_contract(name: str) -> None:
    role = load_role(REPO / "roles", name)
    assert callable(role.module.deploy)


def test_the_skeleton_in_the_docs_loads(tmp_path: Path) -> None:
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "role.py").write_text(SKELETON)
    assert load_role(tmp_path, "demo").handlers == {"reload demo": "true"}
    assert "def deploy(ctx" in (REPO / "docs" / "roles.md").read_text()


@pytest.mark.parametrize(("source", "expected"), [
    (SKELETON.replace("HANDLERS =", "HANDLER ="), "HANDLER is not a name of the role contract: did you mean HANDLERS?"),
    (SKELETON + "GENERATED_SECRET = ('x_password',)\n", "did you mean GENERATED_SECRETS?"),
    (SKELETON + "handlers = {}\n", "handlers is not a name of the role contract: did you mean HANDLERS?"),
    (SKELETON.replace("def deploy(", "def deplyo("), "a role must define deploy: a function of one argument"),
    (SKELETON.replace("def deploy(", "def deplyo("), "deplyo is defined: a misspelling?"),
    (SKELETON.replace("def deploy(ctx)", "def deploy()"), "deploy must be a function of one argument"),
    (SKELETON + "PORTS = 'demo_port'\n", "PORTS must be a tuple of variable names"),
    (SKELETON + "HANDLERS = ['systemctl reload demo']\n", "HANDLERS must be a mapping of handler name"),
    (SKELETON + "def check():\n    return []\n", "check must be a function of one argument"),
    (SKELETON + "def broken(:\n", "cannot load the role: invalid syntax"),
    (SKELETON + "import no_such_module_here\n", "cannot load the role: ModuleNotFoundError"),
])
def test_a_role_that_breaks_the_contract_is_one_clear_line(tmp_path: Path, source: str, expected: str) -> None:
    assert expected in role_error(tmp_path, source)


def test_helpers_and_constants_of_a_role_own_are_allowed(tmp_path: Path) -> None:
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "role.py").write_text(SKELETON + "REWIND_GRANTS = ('f',)\n\ndef checks_done(v):\n"
                                                "    return v\n")
    assert load_role(tmp_path, "demo").ports == ()
