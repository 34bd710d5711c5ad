"""Generated SSH key pairs: the private key parses back and gives the public line; anything else is refused."""

from __future__ import annotations

import pytest

from fabstack.engine import sshkeys
from fabstack.engine.errors import FabstackError
from fabstack.engine.masking import pem_key_parts
from fabstack.engine.secrets import new_value


def test_a_generated_key_gives_its_public_line() -> None:
    key = new_value("mariadb_seed_ssh_private_key", "sandbox")
    assert key.startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    line = sshkeys.public_line(key, "seed@db1")
    kind, body, comment = line.split(" ")
    assert (kind, comment) == ("ssh-ed25519", "seed@db1") and len(body) == 68
    assert sshkeys.public_line(key, "x").split()[1] == body  # the same key, the same public half
    assert pem_key_parts(key)  # masked wherever fabstack prints


def test_two_generated_keys_differ() -> None:
    assert new_value("a_ssh_private_key", "e") != new_value("a_ssh_private_key", "e")


@pytest.mark.parametrize("text", ["", "not a key", "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH "
                                                  "PRIVATE KEY-----\n"])
def test_anything_else_is_refused_in_one_line(text: str) -> None:
    with pytest.raises(FabstackError) as caught:
        sshkeys.public_line(text, "x")
    assert "\n" not in caught.value.line()
