"""TLS certificates on the controller: a self-signed pair for an env that has none, and the checks made before a
certificate and key go to any host (they parse, they belong together, the certificate's days left)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

_CERT = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)
_KEY = re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----.+?-----END (?:[A-Z]+ )?PRIVATE KEY-----", re.S)


class TlsError(ValueError):
    """A certificate or key that cannot be used, said in one line."""


@dataclass(frozen=True)
class Pair:
    """A certificate chain (leaf first) and its private key, as PEM text."""

    chain: str
    key: str

    @property
    def leaf(self) -> x509.Certificate:
        """The server's own certificate."""
        return x509.load_pem_x509_certificate(_CERT.findall(self.chain)[0].encode())

    @property
    def has_chain(self) -> bool:
        """Whether intermediates follow the leaf (what OCSP stapling needs to verify the responder)."""
        return len(_CERT.findall(self.chain)) > 1

    def days_left(self, now: dt.datetime) -> float:
        """Days until the leaf expires, from ``now`` (negative once expired)."""
        return (self.leaf.not_valid_after_utc - now).total_seconds() / 86400


def self_signed_pem(name: str, days: int = 397, now: dt.datetime | None = None) -> str:
    """A new ECDSA P-256 key and a certificate for ``name`` signed by itself, as one PEM text (key first)."""
    now = now or dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return key_pem + cert.public_bytes(serialization.Encoding.PEM).decode()


def parse_certificates(text: str) -> str:
    """Only the PEM certificates of ``text`` (a CA bundle), each checked to parse; anything between them is
    dropped, so no other text reaches a host."""
    certs = _CERT.findall(text)
    if not certs:
        raise TlsError("no PEM certificate (-----BEGIN CERTIFICATE-----) found")
    for cert in certs:
        try:
            x509.load_pem_x509_certificate(cert.encode())
        except ValueError as exc:
            raise TlsError(f"a certificate does not parse: {exc}") from None
    return "".join(c + "\n" for c in certs)


def parse_pair(chain_text: str, key_text: str) -> Pair:
    """The certificate chain and key from PEM texts (either may hold both), checked: each parses, the key is not
    encrypted, and the leaf certificate's public key is the key's."""
    certs = _CERT.findall(chain_text) or _CERT.findall(key_text)
    keys = _KEY.findall(key_text) or _KEY.findall(chain_text)
    if not certs:
        raise TlsError("no PEM certificate (-----BEGIN CERTIFICATE-----) found")
    if len(keys) != 1:
        raise TlsError(f"expected one PEM private key, found {len(keys)}")
    try:
        leaf = x509.load_pem_x509_certificate(certs[0].encode())
        for other in certs[1:]:
            x509.load_pem_x509_certificate(other.encode())
    except ValueError as exc:
        raise TlsError(f"the certificate does not parse: {exc}") from None
    try:
        key = serialization.load_pem_private_key(keys[0].encode(), password=None)
    except TypeError:
        raise TlsError("the private key is encrypted: nginx would ask for its passphrase at start") from None
    except ValueError as exc:
        raise TlsError(f"the private key does not parse: {exc}") from None
    raw = serialization.PublicFormat.SubjectPublicKeyInfo
    if leaf.public_key().public_bytes(serialization.Encoding.PEM, raw) != \
            key.public_key().public_bytes(serialization.Encoding.PEM, raw):
        raise TlsError("the private key does not belong to the certificate (key mismatch)")
    return Pair(chain="".join(c + "\n" for c in certs), key=keys[0] + "\n")
