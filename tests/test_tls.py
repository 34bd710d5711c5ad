"""The load balancer's certificate on the controller: checked before any host sees it, the private key never shown,
a certificate close to expiry a warning in the recap, and VM-only hardening where a container cannot have it."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pytest

from fabstack.engine import tls
from fabstack.engine.errors import FabstackError
from fabstack.engine.masking import Masker, secret_values
from fabstack.engine.report import HostReport, recap
from fabstack.engine.runner import HostRun, before_planning, declare
from fabstack.tiers.env import load_env
from tests.conftest import copy_project
from tests.test_roles_declare import SMALL, host_facts

NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


def test_a_pair_parses_and_belongs_together() -> None:
    pem = tls.self_signed_pem("lb.example", now=NOW)
    pair = tls.parse_pair(pem, pem)
    assert pair.chain.startswith("-----BEGIN CERTIFICATE-----") and "PRIVATE KEY" not in pair.chain
    assert pair.key.startswith("-----BEGIN PRIVATE KEY-----") and "CERTIFICATE" not in pair.key
    assert round(pair.days_left(NOW)) == 397 and not pair.has_chain


@pytest.mark.parametrize("chain,key,problem", [
    ("cert-of:a", "key-of:b", "key mismatch"),
    ("nothing", "key-of:a", "no PEM certificate"),
    ("cert-of:a", "nothing", "expected one PEM private key, found 0"),
    ("cert-of:a", "encrypted-key", "encrypted"),
    ("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n", "key-of:a", "does not parse"),
])
def test_unusable_pairs_are_refused_in_one_line(chain: str, key: str, problem: str) -> None:
    from cryptography.hazmat.primitives import serialization

    pems = {name: tls.self_signed_pem(name, now=NOW) for name in ("a", "b")}

    def resolve(text: str) -> str:
        if text.startswith("cert-of:"):
            return pems[text[8:]].split("-----END PRIVATE KEY-----\n")[1]
        if text.startswith("key-of:"):
            return pems[text[7:]].split("-----BEGIN CERTIFICATE-----")[0]
        if text == "encrypted-key":
            key = serialization.load_pem_private_key(resolve("key-of:a").encode(), None)
            return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.BestAvailableEncryption(b"passphrase")).decode()
        return text

    with pytest.raises(tls.TlsError, match=problem) as refused:
        tls.parse_pair(resolve(chain), resolve(key))
    assert "\n" not in str(refused.value)


def test_a_private_key_is_masked_whole_and_line_by_line() -> None:
    pem = tls.self_signed_pem("lb.example")
    found = secret_values({"nginx_tls_certificate_bundle": pem})  # a name that says nothing of secrets
    key_line = pem.splitlines()[2]
    masked = Masker(found)(f"diff:\n+{key_line}\n")
    assert key_line not in masked and "********" in masked


def lb_declared(root: Path, *overrides: str) -> tuple[list, HostReport]:
    """What the sandbox LB declares from offline facts (with ``--set`` overrides), and its report, planned as a
    deploy plans it (the whole env's budget first)."""
    project = load_env(root, "sandbox")
    project.set_overrides(list(overrides))
    runs = [HostRun(setup=project.setup(name, None), report=HostReport(host=name)) for name in project.inventory.hosts]
    for run in runs:
        run.facts = host_facts(run.setup.vars["ansible_host"], run.name, SMALL)
    hostfacts = {run.name: run.facts for run in runs}
    budget, problems = before_planning(project, hostfacts)
    assert not problems, problems
    [lb] = [run for run in runs if run.name == "lb1"]
    return declare(project, lb, hostfacts, budget), lb.report


def test_a_mismatched_pair_is_refused_naming_key_and_host_before_any_host(tmp_path: Path) -> None:
    root = copy_project(tmp_path / "repo")
    (root / "cert.pem").write_text(tls.self_signed_pem("one.example").split("-----END PRIVATE KEY-----\n")[1])
    (root / "key.pem").write_text(tls.self_signed_pem("two.example").split("-----BEGIN CERTIFICATE-----")[0])
    with pytest.raises(FabstackError, match="key mismatch") as refused:
        lb_declared(root, "nginx_tls_certificate=cert.pem", "nginx_tls_private_key=key.pem")
    assert (refused.value.key, refused.value.host) == ("nginx_tls_certificate", "lb1")


def test_the_self_signed_pair_ships_with_the_key_0600_and_hidden(tmp_path: Path) -> None:
    root = copy_project(tmp_path / "repo")
    declared, report = lb_declared(root)
    files = {op.id: op for _, op in declared if op.id.startswith("file /etc/nginx/tls/")}
    key, cert = files["file /etc/nginx/tls/fabstack.key"], files["file /etc/nginx/tls/fabstack.crt"]
    assert key.mode == "0600" and key.secret and key.validate == "nginx -t -q"
    assert b"PRIVATE KEY" not in cert.content and b"PRIVATE KEY" in key.content
    assert not report.warnings  # a fresh certificate: nothing to say


def test_a_certificate_close_to_expiry_is_a_warning_in_the_recap(tmp_path: Path) -> None:
    root = copy_project(tmp_path / "repo")
    soon = tls.self_signed_pem("lb.example", days=5)
    (root / "soon.pem").write_text(soon)
    _, report = lb_declared(root, "nginx_tls_certificate=soon.pem", "nginx_tls_private_key=soon.pem")
    assert report.warnings and "expires in" in report.warnings[0], report.warnings
    shown = recap([report], io.StringIO())
    assert "WARNINGS" in shown and "nginx: the TLS certificate /etc/nginx/tls/fabstack.crt expires in" in shown


def test_a_cluster_certificate_is_issued_by_its_ca_for_its_addresses_and_the_same_each_time() -> None:
    import ipaddress

    from cryptography import x509

    from fabstack.engine.tls import ca_certificate, issued_pair, new_ca_pem

    ca_pem = new_ca_pem("fabstack-test")
    pair = issued_pair(ca_pem, "pdb1", ["10.217.0.11", "127.0.0.1"])
    assert pair == issued_pair(ca_pem, "pdb1", ["10.217.0.11", "127.0.0.1"])
    assert pair != issued_pair(ca_pem, "pdb2", ["10.217.0.12", "127.0.0.1"])
    assert pair != issued_pair(new_ca_pem("fabstack-test"), "pdb1", ["10.217.0.11", "127.0.0.1"])
    ca = x509.load_pem_x509_certificate(ca_certificate(ca_pem).encode())
    pair.leaf.verify_directly_issued_by(ca)
    sans = pair.leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.217.0.11"),
                                                        ipaddress.ip_address("127.0.0.1")]
    assert "PRIVATE KEY" not in ca_certificate(ca_pem)
