"""testinfra checks of the sshd role, including a login attempt from another host."""

from typing import Any


def effective(host: Any) -> dict[str, str]:
    return dict(line.split(" ", 1) for line in host.check_output("sshd -T").splitlines() if " " in line)


def test_no_passwords_and_root_by_key_only(host: Any) -> None:
    config = effective(host)
    assert config["passwordauthentication"] == "no"
    assert config["kbdinteractiveauthentication"] == "no"
    assert config["permitrootlogin"] in ("without-password", "prohibit-password", "no")


def test_our_drop_in_is_read_first(host: Any) -> None:
    """sshd keeps the first value it reads: fabstack's drop-in must sort before any other (cloud-init's 50-)."""
    names = sorted(host.file("/etc/ssh/sshd_config.d").listdir())
    assert names and names[0] == "00-fabstack.conf", names
    includes = host.check_output("grep -i '^include' /etc/ssh/sshd_config").lower()
    assert "include /etc/ssh/sshd_config.d/*.conf" in includes


def test_only_modern_algorithms(host: Any, hostvars: dict[str, Any]) -> None:
    config = effective(host)
    assert config["ciphers"].split(",") == hostvars["sshd_ciphers"]
    assert not {"3des-cbc", "aes128-cbc", "hmac-sha1", "diffie-hellman-group1-sha1"} & set(
        config["ciphers"].split(",") + config["macs"].split(",") + config["kexalgorithms"].split(","))


def test_a_password_login_is_refused(host: Any, fleet: dict[str, Any]) -> None:
    me = host.backend.get_hostname()
    other = next((h for h in fleet if h != me), me)  # under --limit one host: its own sshd
    address = fleet[other]["vars"]["ansible_host"]
    # ssh's own exit status (255) would read as a broken connection to testinfra: report it in the output
    out = host.check_output("ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
                            "-o PreferredAuthentications=password,keyboard-interactive -o ConnectTimeout=5 "
                            f"deploy@{address} true 2>&1; echo exit=$?")
    assert "Permission denied (publickey)" in out and "exit=255" in out
