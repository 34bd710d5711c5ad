"""molecule on podman's Docker API: the default scenario passes whole, and its idempotence step reads fabstack's
recap (a host changed behind fabstack's back makes it fail)."""

from __future__ import annotations

import re
import subprocess

import pytest

from fabstack.cli import commands
from tests.conftest import REPO

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def molecule(action: str, scenario: str) -> tuple[int, str]:
    """Run one molecule action as `inv sandbox.molecule` does; returns its status and its plain output."""
    result = commands.molecule(REPO, scenario, action, capture=True, timeout=900)
    return result.returncode, ANSI.sub("", result.stdout + result.stderr)


def failure_excerpt(output: str) -> str:
    """The part of molecule's output that explains a failure: from ansible's first ``fatal:`` on (its start, then
    every line of the deploy it ran that failed, and the recap), else the end."""
    start = output.find("fatal:")
    if start < 0:
        return output[-6000:]
    text = output[start:].replace("\\n", "\n")
    recap = text.find("RECAP")
    telling = [line for line in text.splitlines() if re.search(r"\| FAILED|\bfailed\b", line)]
    return "\n".join([text[:4000], "...", *telling[:60], text[recap:recap + 2000] if recap >= 0 else ""])


@pytest.mark.timeout(1500)
def test_molecule_test_of_the_default_scenario_passes(podman_root: None) -> None:
    status, output = molecule("test", "default")
    assert status == 0, failure_excerpt(output)
    for step in ("converge", "idempotence", "verify"):
        assert re.search(rf"default ➜ {step}: Executed: Successful", output), step


@pytest.mark.timeout(1500)
def test_idempotence_fails_when_a_host_drifted_after_converge(podman_root: None) -> None:
    try:
        for action in ("create", "prepare", "converge"):
            status, output = molecule(action, "nginx")
            assert status == 0, (action, failure_excerpt(output))
        drift = subprocess.run(["podman", "exec", "mol-nginx-web1", "sh", "-c", "echo drift >> /etc/nginx/nginx.conf"],
                               check=False, timeout=60)
        assert drift.returncode == 0
        status, output = molecule("idempotence", "nginx")
        assert status != 0
        assert "Idempotence test failed" in output and "Inv deploy" in output, output[-4000:]
    finally:
        molecule("destroy", "nginx")
