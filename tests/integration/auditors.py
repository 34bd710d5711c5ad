"""The scanners an auditor points at the sandbox: ssh-audit from this machine over the sandbox network, and lynis
(Debian's package on this machine, copied into a host and run there, as an auditor would bring it)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

# The one ssh-audit warning Debian 12's OpenSSH cannot avoid while fabstack's engine speaks Paramiko: curve25519
# key exchange, kept for Paramiko, which has no sntrup761 (roles/sshd/defaults/main.yml says why).
JUSTIFIED_SSH_WARNINGS = {
    ("kex", "curve25519-sha256"): "Paramiko (fabstack's client) has no sntrup761; Debian 12's OpenSSH 9.2 no mlkem768",
    ("kex", "curve25519-sha256@libssh.org"): "the same exchange under its older name",
}


@dataclass
class SshAudit:
    """What ssh-audit found on one host."""

    address: str
    failures: list[str] = field(default_factory=list)
    warnings: list[tuple[str, str, str]] = field(default_factory=list)  # (section, algorithm, note)
    notes: list[str] = field(default_factory=list)

    @property
    def unjustified_warnings(self) -> list[tuple[str, str, str]]:
        """Warnings not in JUSTIFIED_SSH_WARNINGS."""
        return [w for w in self.warnings if (w[0], w[1]) not in JUSTIFIED_SSH_WARNINGS]


def ssh_audit(address: str, binary: str = "ssh-audit", timeout: float = 120) -> SshAudit:
    """Run ssh-audit (with its connection-rate test) against one host and sort what it says."""
    out = subprocess.run([binary, "-j", "-t", "10", address], capture_output=True, text=True, timeout=timeout,
                         check=False)
    if not out.stdout.strip().startswith("{"):
        raise AssertionError(f"ssh-audit {address} answered no report: {out.stdout[:300]} {out.stderr[:300]}")
    report = json.loads(out.stdout)
    found = SshAudit(address, notes=list(report.get("additional_notes") or []))
    for section in ("kex", "key", "enc", "mac"):
        for entry in report.get(section, []):
            notes = entry.get("notes", {})
            found.failures += [f"{section} {entry['algorithm']}: {n}" for n in notes.get("fail", [])]
            found.warnings += [(section, entry["algorithm"], n) for n in notes.get("warn", [])]
    found.failures += [f"CVE {cve.get('name')}" for cve in report.get("cves", [])]
    found.failures += [f"note: {n}" for n in found.notes if "insufficient connection throttling" in n]
    return found


def lynis_folder() -> Path:
    """Debian's lynis of this machine laid out as a self-contained folder (program, include, db, plugins,
    profile) that runs from wherever it is copied."""
    if shutil.which("lynis") is None:
        raise AssertionError("lynis is not installed on this machine (scripts/setup.sh installs it)")
    folder = Path(tempfile.mkdtemp(prefix="fabstack-lynis-"))
    for source in ("/usr/share/lynis/include", "/usr/share/lynis/db", "/etc/lynis/plugins"):
        shutil.copytree(source, folder / Path(source).name)
    shutil.copy2(shutil.which("lynis") or "", folder / "lynis")
    shutil.copy2("/etc/lynis/default.prf", folder / "default.prf")
    return folder


def lynis_index(container: str, folder: Path, timeout: float = 300) -> tuple[int, list[str]]:
    """Copy lynis into a sandbox host, run a full audit there, remove it again; returns the hardening index and
    the warnings lynis reported."""
    remote = "/root/fabstack-lynis"
    subprocess.run(["podman", "exec", container, "rm", "-rf", remote], check=True)
    subprocess.run(["podman", "cp", str(folder), f"{container}:{remote}"], check=True)
    try:
        out = subprocess.run(
            ["podman", "exec", "-w", remote, container, "sh", "-c",
             f"chown -R root:root . && sh ./lynis audit system --quick --no-colors --logfile {remote}/lynis.log "
             f"--report-file {remote}/report.dat >/dev/null 2>&1; cat {remote}/report.dat"],
            capture_output=True, text=True, timeout=timeout, check=False).stdout
    finally:
        subprocess.run(["podman", "exec", container, "rm", "-rf", remote], check=False)
    match = re.search(r"^hardening_index=(\d+)$", out, re.M)
    if not match:
        raise AssertionError(f"lynis gave no hardening index in {container}: {out[-300:]}")
    warnings = re.findall(r"^warning\[\]=([^|]+\|[^|]+)", out, re.M)
    return int(match.group(1)), warnings


def lynis_fleet(containers: list[str]) -> dict[str, tuple[int, list[str]]]:
    """lynis on every host, two at a time (the machine has two cores)."""
    folder = lynis_folder()
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            return dict(zip(containers, pool.map(lambda c: lynis_index(c, folder), containers), strict=True))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
