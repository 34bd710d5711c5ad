"""ansible-vault compatible encryption ($ANSIBLE_VAULT;1.1;AES256): whole files and inline ``!vault`` values.

The format is Ansible's, so a team can use either tool on the same files: PBKDF2-HMAC-SHA256 (10,000 rounds,
a 32-byte salt) derives an AES-256 key, an HMAC-SHA256 key and a CTR counter; the ciphertext is PKCS#7-padded
AES-256-CTR, authenticated by the HMAC, and everything is hex-encoded in 80-column lines.

The password comes from ``FABSTACK_VAULT_PASSWORD``, or a file named by ``FABSTACK_VAULT_PASSWORD_FILE`` (or
Ansible's ``ANSIBLE_VAULT_PASSWORD_FILE``): never from the command line, where it would sit in shell history
and the process list.
"""

from __future__ import annotations

import binascii
import hmac
import os
import secrets
import shlex
import subprocess
import tempfile
from hashlib import sha256
from pathlib import Path

from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from fabstack.engine.errors import FabstackError
from fabstack.engine.privatefile import write_private

HEADER = "$ANSIBLE_VAULT;1.1;AES256"
_REVEALED: set[str] = set()
# Inline ``!vault`` values decrypted so far: plaintext -> the vault text it came from (to show it encrypted).
_INLINE: dict[str, str] = {}


class VaultError(FabstackError):
    """A vault that cannot be opened: no password, or the wrong one."""


def is_vaulted(text: str) -> bool:
    """Whether text is an ansible-vault payload."""
    return text.lstrip().startswith("$ANSIBLE_VAULT;")


# Set from the command line (--vault-password-file, --ask-vault-pass): used before the environment.
_GIVEN: dict[str, bytes] = {}


def use_password_file(path: str) -> None:
    """Read the vault password from ``path`` (``--vault-password-file``), refusing an unreadable file now."""
    try:
        secret = Path(path).expanduser().read_bytes().strip()
    except OSError as exc:
        raise VaultError(f"cannot read the vault password file: {exc.strerror}", key="--vault-password-file") from exc
    if not secret:
        raise VaultError("the vault password file is empty", where=str(path), key="--vault-password-file")
    _GIVEN["password"] = secret


def ask_password() -> None:
    """Prompt for the vault password on the terminal (``--ask-vault-pass``); it is never echoed."""
    import getpass

    _GIVEN["password"] = getpass.getpass("Vault password: ").encode()


def password(where: str = "") -> bytes:
    """The vault password: given on the command line, else from the environment or a password file; a clear
    error if there is none."""
    if "password" in _GIVEN:
        return _GIVEN["password"]
    value = os.environ.get("FABSTACK_VAULT_PASSWORD")
    if value:
        return value.encode()
    for variable in ("FABSTACK_VAULT_PASSWORD_FILE", "ANSIBLE_VAULT_PASSWORD_FILE"):
        path = os.environ.get(variable)
        if path:
            try:
                return Path(path).expanduser().read_text().strip().encode()
            except OSError as exc:
                raise VaultError(f"cannot read the vault password file {path}: {exc.strerror}",
                                 where=where, key=variable) from exc
    raise VaultError("vault-encrypted, but no vault password: use --vault-password-file FILE or --ask-vault-pass, "
                     "or set FABSTACK_VAULT_PASSWORD_FILE", where=where)


def _keys(secret: bytes, salt: bytes) -> tuple[bytes, bytes, bytes]:
    kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=80, salt=salt, iterations=10000)
    derived = kdf.derive(secret)
    return derived[:32], derived[32:64], derived[64:80]


def encrypt(plaintext: str | bytes, secret: bytes) -> str:
    """The vault text (header and 80-column hex lines) of ``plaintext``."""
    data = plaintext.encode() if isinstance(plaintext, str) else plaintext
    salt = secrets.token_bytes(32)
    key, mac_key, counter = _keys(secret, salt)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(data) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CTR(counter)).encryptor()
    ciphertext = encryptor.update(padded) + encryptor.finalize()
    mac = hmac.new(mac_key, ciphertext, sha256).hexdigest().encode()
    body = binascii.hexlify(b"\n".join([binascii.hexlify(salt), mac, binascii.hexlify(ciphertext)])).decode()
    return HEADER + "\n" + "\n".join(body[i:i + 80] for i in range(0, len(body), 80)) + "\n"


def decrypt(vaulted: str, secret: bytes, where: str = "") -> str:
    """The plaintext of vault text; a wrong password or damaged text is one clear error naming ``where``."""
    lines = vaulted.strip().splitlines()
    header = lines[0].strip().split(";") if lines else []
    if len(header) < 3 or header[0] != "$ANSIBLE_VAULT" or header[2].strip() != "AES256":
        raise VaultError("not an ansible-vault AES256 payload", where=where)
    try:
        salt_hex, mac_hex, cipher_hex = binascii.unhexlify("".join(x.strip() for x in lines[1:])).split(b"\n", 2)
        salt, ciphertext = binascii.unhexlify(salt_hex), binascii.unhexlify(cipher_hex)
    except (ValueError, binascii.Error) as exc:
        raise VaultError("damaged vault payload", where=where) from exc
    key, mac_key, counter = _keys(secret, salt)
    if not hmac.compare_digest(hmac.new(mac_key, ciphertext, sha256).hexdigest().encode(), mac_hex):
        raise VaultError("wrong vault password (or the file was altered)", where=where)
    decryptor = Cipher(algorithms.AES(key), modes.CTR(counter)).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return (unpadder.update(padded) + unpadder.finalize()).decode()
    except UnicodeDecodeError:
        raise VaultError("the decrypted content is not UTF-8 text", where=where) from None


def reveal(value: object) -> None:
    """Remember the strings of a decrypted value (walking mappings and lists) so every output masks them."""
    if isinstance(value, dict):
        for item in value.values():
            reveal(item)
    elif isinstance(value, list):
        for item in value:
            reveal(item)
    elif isinstance(value, str) and len(value.strip()) >= 4:
        _REVEALED.add(value.strip())


def remember_inline(plaintext: str, vaulted: str) -> None:
    """Record that ``plaintext`` came from the inline vault text ``vaulted``."""
    _INLINE[plaintext] = vaulted.strip()


def vaulted_text_of(plaintext: str) -> str | None:
    """The inline vault text a decrypted value came from, if it came from one."""
    return _INLINE.get(plaintext)


def revealed() -> set[str]:
    """Every value decrypted so far in this process."""
    return set(_REVEALED)


def encrypt_file(path: Path) -> None:
    """Encrypt a plaintext file in place (refusing one that is already encrypted)."""
    text = path.read_text()
    if is_vaulted(text):
        raise VaultError("already encrypted", where=str(path))
    write_private(path, encrypt(text, password(str(path))))


def decrypt_file(path: Path) -> None:
    """Decrypt a vault file in place (mode 0600: it now holds secrets in clear)."""
    write_private(path, view_file(path))


def _read_vault_file(path: Path) -> str:
    """A vault file's text; one line naming the file when it cannot be read or is not text."""
    try:
        return path.read_text()
    except UnicodeDecodeError as exc:
        raise VaultError(f"not a vault file: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
                         f"{exc.start})", where=str(path)) from None
    except OSError as exc:
        raise VaultError(f"cannot read: {exc.strerror}", where=str(path)) from None


def view_file(path: Path) -> str:
    """The plaintext of a vault file."""
    return decrypt(_read_vault_file(path), password(str(path)), str(path))


def edit_file(path: Path, editor: str) -> bool:
    """Open the decrypted file in ``editor`` (a private temporary copy) and re-encrypt it if it changed."""
    secret = password(str(path))
    plain = decrypt(_read_vault_file(path), secret, str(path)) if path.exists() else ""
    with tempfile.TemporaryDirectory(prefix="fabstack-vault-") as folder:
        draft = Path(folder) / path.name
        write_private(draft, plain)
        subprocess.run([*shlex.split(editor), str(draft)], check=True)
        edited = draft.read_text()
    if edited == plain:
        return False
    write_private(path, encrypt(edited, secret))
    return True



