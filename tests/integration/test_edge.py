"""The edge and the hosts as a scanner sees them, from this machine over the sandbox network: HTTPS at the load
balancer with the headers clients really get, no internal address leaked, old TLS refused, sshd to ssh-audit's bar
and every host to lynis's."""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import socket
import ssl
from pathlib import Path

import pytest

from fabstack.cli import commands
from fabstack.engine import tls
from fabstack.engine.inventory import load_inventory
from fabstack.tiers.env import load_env
from tests.conftest import REPO
from tests.integration.auditors import lynis_fleet, ssh_audit
from tests.integration.chaos import LB, sandbox_tls
from tests.integration.conftest import bring_up_others_ahead, in_host

# Private (RFC 1918) addresses: the fleet's own, which no client may learn.
PRIVATE = re.compile(r"\b(?:10|172\.(?:1[6-9]|2\d|3[01])|192\.168)\.\d{1,3}\.\d{1,3}\.\d{1,3}\b")
# This machine as the sandbox hosts see it (the podman network's gateway).
CONTROLLER = "10.213.0.1"
HEADERS = {"x-content-type-options": "nosniff", "x-frame-options": "SAMEORIGIN",
           "referrer-policy": "strict-origin-when-cross-origin", "strict-transport-security": "max-age=31536000"}


def get(path: str, https: bool = True) -> tuple[int, dict[str, str], str]:
    """One request to the LB from this machine: status, headers (lower-case names) and body."""
    conn = (http.client.HTTPSConnection(LB, 443, timeout=15, context=sandbox_tls()) if https
            else http.client.HTTPConnection(LB, 80, timeout=15))
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read().decode(errors="replace")
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body
    finally:
        conn.close()


def served_certificate() -> str:
    """The SHA-256 fingerprint of the certificate the LB presents."""
    pem = ssl.get_server_certificate((LB, 443), timeout=15)
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()


@pytest.mark.parametrize("path,status", [("/", 200), ("/api/", 200), ("/web/fabstack-no-such.css", 404),
                                         ("/fabstack-no-such-page", 404), ("/school/", 200)])
def test_https_responses_carry_the_security_headers_and_no_internal_address(deployed: list, path: str,
                                                                           status: int) -> None:
    code, headers, body = get(path)
    assert code == status, (path, code, body[:300])
    for name, value in HEADERS.items():
        assert headers.get(name, "").startswith(value), (path, name, headers)
    shown = json.dumps(headers) + body
    assert "x-upstream" not in headers and not PRIVATE.search(shown), (path, shown[:600])


def test_a_static_file_through_the_lb_has_the_headers_and_a_long_cache(deployed: list) -> None:
    status, _, page = get("/web/")
    asset = re.search(r'(/web/_next/static/[^"]+\.(?:js|css))', page)
    assert status == 200 and asset, page[:400]
    code, headers, _ = get(asset.group(1))
    assert code == 200 and "immutable" in headers.get("cache-control", ""), headers
    for name, value in HEADERS.items():
        assert headers.get(name, "").startswith(value), (asset.group(1), name, headers)


def test_plain_http_is_redirected_except_the_health_check_and_acme(deployed: list) -> None:
    code, headers, _ = get("/api/?x=1", https=False)
    assert code == 301 and headers["location"] == f"https://{LB}/api/?x=1", headers
    code, _, body = get("/healthz", https=False)
    assert code == 200 and body == "ok\n"
    token = "fabstack-test-token"
    folder = "/var/www/acme/.well-known/acme-challenge"
    in_host("lb1", f"mkdir -p {folder} && echo proof > {folder}/{token}")
    try:
        code, _, body = get(f"/.well-known/acme-challenge/{token}", https=False)
        assert code == 200 and body == "proof\n"
    finally:
        in_host("lb1", f"rm -f {folder}/{token}")


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1])
def test_old_tls_versions_are_refused(deployed: list, version: ssl.TLSVersion) -> None:
    context = sandbox_tls()
    context.set_ciphers("DEFAULT@SECLEVEL=0")  # this client would speak it: the refusal is the server's
    context.minimum_version = context.maximum_version = version
    with pytest.raises(ssl.SSLError, match="PROTOCOL_VERSION|protocol version|UNSUPPORTED_PROTOCOL"):
        conn = http.client.HTTPSConnection(LB, 443, timeout=15, context=context)
        try:
            conn.request("GET", "/")
        finally:
            conn.close()


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_tls_1_2_and_1_3_are_spoken_with_http2_offered(deployed: list, version: ssl.TLSVersion) -> None:
    context = sandbox_tls()
    context.minimum_version = context.maximum_version = version
    context.set_alpn_protocols(["h2", "http/1.1"])
    with socket.create_connection((LB, 443), timeout=15) as raw, context.wrap_socket(raw) as conn:
        assert conn.version() == {ssl.TLSVersion.TLSv1_2: "TLSv1.2", ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]
        assert conn.selected_alpn_protocol() == "h2"


@pytest.mark.parametrize("prefix", ["/", "/api/", "/school/"])
def test_apps_see_https_and_the_clients_real_address(deployed: list, prefix: str) -> None:
    code, _, body = get(f"{prefix}client")
    assert code == 200, body[:300]
    seen = json.loads(body)
    assert seen == {"scheme": "https", "address": CONTROLLER}, (prefix, seen)


def test_a_mismatched_certificate_is_refused_before_any_host_and_the_old_one_keeps_serving(
        deployed: list, tmp_path: Path) -> None:
    before = served_certificate()
    (tmp_path / "cert.pem").write_text(tls.self_signed_pem("one.example"))
    (tmp_path / "key.pem").write_text(tls.self_signed_pem("two.example"))  # another pair's key
    reports = commands.deploy(REPO, "sandbox", overrides=[f"nginx_tls_certificate={tmp_path / 'cert.pem'}",
                                                         f"nginx_tls_private_key={tmp_path / 'key.pem'}"])
    errors = {r.host: r.error or " ".join(e.message for e in r.events if e.status == "failed") for r in reports}
    assert "key nginx_tls_certificate" in errors["lb1"] and "key mismatch" in errors["lb1"], errors
    assert all(r.failed and r.count("changed") == 0 for r in reports), errors  # refused before any host changed
    assert served_certificate() == before
    assert get("/")[0] == 200


def fleet_addresses() -> dict[str, str]:
    """Every sandbox host's name and address."""
    inventory = load_inventory(REPO, "sandbox")
    return {name: str(inventory.resolve(name).values["ansible_host"]) for name in inventory.hosts}


def test_ssh_audit_finds_no_failure_and_only_the_justified_warning_on_any_host(deployed: list) -> None:
    local = REPO / ".venv" / "bin" / "ssh-audit"
    binary = str(local) if local.exists() else "ssh-audit"
    for name, address in fleet_addresses().items():
        found = ssh_audit(address, binary)
        print(f"ssh-audit {name}: {len(found.failures)} failures, warnings: "
              f"{sorted({w[1] for w in found.warnings})}")
        assert not found.failures, (name, found.failures)
        assert not found.unjustified_warnings, (name, found.unjustified_warnings)


def one_host_of_each_kind() -> list[str]:
    """The first host of each set of roles site.yml gives (app2 carries app1's roles, and is left out): lynis is
    CPU-bound, 35 s of it per host, and two hosts with the same roles are configured alike."""
    project = load_env(REPO, "sandbox")
    kinds: dict[tuple[str, ...], str] = {}
    for name in project.inventory.hosts:
        kinds.setdefault(tuple(role.name for role in project.roles_for(name)), name)
    return list(kinds.values())


def test_lynis_hardening_index_is_at_least_80_on_every_kind_of_host(deployed: list,
                                                                    request: pytest.FixtureRequest) -> None:
    bring_up_others_ahead(request.session)  # their deploys overlap lynis, which only takes CPU
    hosts = one_host_of_each_kind()
    results = lynis_fleet([f"fabstack-{name}" for name in hosts])
    for container, (index, warnings) in results.items():
        print(f"lynis {container}: hardening index {index}, warnings {warnings}")
    assert all(index >= 80 for index, _ in results.values()), {c: i for c, (i, _) in results.items()}


def test_the_fleet_still_serves_after_hardening(deployed: list) -> None:
    # Nothing the hardening role or sshd's settings do may stop a service: no unit has failed on any host.
    for name in fleet_addresses():
        failed = in_host(name, "systemctl list-units --state=failed --plain --no-legend").stdout.strip()
        assert not failed, (name, failed)
