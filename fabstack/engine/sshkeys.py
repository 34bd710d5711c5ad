"""SSH key pairs fabstack generates for host-to-host work (a replica pulling its seed copy from the primary):
the private key in OpenSSH's format, and the public line derived from it wherever it is needed."""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from fabstack.engine.errors import FabstackError


def new_private_key() -> str:
    """A fresh ed25519 private key, OpenSSH's PEM text."""
    key = ed25519.Ed25519PrivateKey.generate()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                             serialization.NoEncryption()).decode()


def public_line(private_text: str, comment: str) -> str:
    """The ``ssh-ed25519 AAAA... comment`` line of a private key (refused when it is not an unencrypted key)."""
    try:
        key = serialization.load_ssh_private_key(private_text.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise FabstackError(f"not an unencrypted OpenSSH private key: {exc}") from None
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return f"{public.decode()} {comment}"
