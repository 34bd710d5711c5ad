"""TLS certificates on the controller: a self-signed pair for an env that has none, and the checks made before a
certificate and key go to any host (they parse, they belong together, the certificate's days left)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

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


def new_ca_pem(name: str, days: int = 3650, now: dt.datetime | None = None) -> str:
    """A new Ed25519 certificate authority for ``name`` (a cluster's members trust it alone), as one PEM text:
    its key, then its self-signed certificate."""
    now = now or dt.datetime.now(dt.UTC)
    key = ed25519.Ed25519PrivateKey.generate()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} CA")])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, None))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return key_pem + cert.public_bytes(serialization.Encoding.PEM).decode()


def ca_certificate(ca_pem: str) -> str:
    """The certificate of a ``new_ca_pem`` text (what every client and member trusts), without its key."""
    return _CERT.findall(ca_pem)[0] + "\n"


def issued_pair(ca_pem: str, name: str, addresses: list[str]) -> Pair:
    """A certificate for host ``name`` reachable at ``addresses`` (IP SANs), for serving and as a client, signed by
    the CA of ``ca_pem``. The same inputs always give the same bytes (the key and serial are derived from the CA's
    key, the validity is the CA's, Ed25519 signs deterministically): a deploy rewrites nothing until a host's
    name or addresses change."""
    ca_key = serialization.load_pem_private_key(_KEY.findall(ca_pem)[0].encode(), password=None)
    if not isinstance(ca_key, ed25519.Ed25519PrivateKey):
        raise TlsError("the CA's key is not Ed25519")
    ca = x509.load_pem_x509_certificate(_CERT.findall(ca_pem)[0].encode())
    seed = ca_key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                serialization.NoEncryption())
    digest = hmac.new(seed, f"leaf\0{name}\0{','.join(addresses)}".encode(), hashlib.sha512).digest()
    key = ed25519.Ed25519PrivateKey.from_private_bytes(digest[:32])
    sans = [x509.DNSName(name), *(x509.IPAddress(ipaddress.ip_address(a)) for a in addresses)]
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(int.from_bytes(digest[32:51], "big") | 1)
            .not_valid_before(ca.not_valid_before_utc).not_valid_after(ca.not_valid_after_utc)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(ca_key, None))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return Pair(chain=cert.public_bytes(serialization.Encoding.PEM).decode(), key=key_pem)
