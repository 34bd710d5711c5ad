"""The sandbox: podman containers running systemd and sshd that stand in for VMs, on their own network."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from fabstack.engine.bundled import ENGINE_ROOT, repo_or_bundled
from fabstack.engine.errors import FabstackError
from fabstack.engine.inventory import Inventory, known_hosts_path
from fabstack.engine.role import load_role
from fabstack.engine.yamlfile import load_mapping, load_vars_location
from fabstack.sandbox.podman import exists, podman
from fabstack.stack.runtimes import RUNTIMES
from fabstack.tiers.topology import topology_path

BASE_IMAGE = "localhost/debian:bookworm"
HOST_IMAGE = "localhost/fabstack-host:bookworm"
CONTAINERFILE = Path(__file__).parent / "images" / "host.Containerfile"
# The settings the sandbox reads of an env (its hosts' memory, its network, the demo apps' repositories).
SETTINGS = ("sandbox_memory", "sandbox_network", "sandbox_subnet", "sandbox_app_repositories")
# The host image carries what a team's golden VM image would: the packages every host's base roles install
# (rkhunter's file database, debsums, apt-show-versions' cache: the slowest part of a first converge) and the app
# runtimes' libraries (PHP, Laravel, Python's, Node). No service package: the deploy installs those. Named from the
# roles' and runtimes' own lists (settings, constants), so the image follows them.
BAKED_SETTINGS = (("common", "common_packages"), ("hardening", "hardening_packages"))
BAKED_RUNTIMES = ("laravel", "asgi", "node")
DEFAULT_NETWORK = "fabstack"
DEFAULT_SUBNET = "10.213.0.0/24"


@dataclass(frozen=True)
class SandboxHost:
    """One sandbox host: its inventory name, container name and fixed address."""

    name: str
    address: str
    port: int
    memory: str = ""

    @property
    def container(self) -> str:
        """The podman container that plays this host."""
        return f"fabstack-{self.name}"


def state_dir(root: Path) -> Path:
    """Where the sandbox keeps its generated SSH key (never committed)."""
    path = root / ".fabstack" / "sandbox"
    path.mkdir(parents=True, exist_ok=True)
    return path


def sandbox_hosts(inv: Inventory) -> list[SandboxHost]:
    """The inventory's hosts with the address and port each must answer on."""
    hosts = []
    for name in inv.hosts:
        values = inv.resolve(name).values
        address = values.get("ansible_host")
        if not address:
            raise FabstackError("a sandbox host needs a fixed ansible_host address", where=str(inv.path), host=name)
        memory = str(values.get("sandbox_memory", ""))
        hosts.append(SandboxHost(name, str(address), int(values.get("ansible_port", 22)), memory))
    return hosts


def _mirror() -> str:
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.is_file():
        for line in sources.read_text().splitlines():
            if line.startswith("URIs:"):
                return line.split()[1]
    legacy = Path("/etc/apt/sources.list")
    if legacy.is_file():
        for line in legacy.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[0] == "deb":
                return parts[1]
    raise FabstackError("no Debian mirror found in this machine's apt sources", key="sandbox")


def build_base_image() -> None:
    """Debootstrap a minimal bookworm from this machine's own mirror and import it as BASE_IMAGE."""
    with tempfile.TemporaryDirectory(prefix="fabstack-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        proc = subprocess.run(
            ["debootstrap", "--variant=minbase", "bookworm", str(rootfs), _mirror()],
            capture_output=True,
            check=False,
        )
        if proc.returncode != 0:
            raise FabstackError(f"debootstrap failed: {proc.stdout.decode()[-300:]}", key="sandbox")
        (rootfs / "etc/apt/sources.list").unlink(missing_ok=True)
        for name in ("debian.sources",):
            src = Path("/etc/apt/sources.list.d") / name
            if src.is_file():
                shutil.copy(src, rootfs / "etc/apt/sources.list.d" / name)
        (rootfs / "etc/dpkg/dpkg.cfg.d/01-slim").write_text(
            "path-exclude=/usr/share/man/*\npath-exclude=/usr/share/doc/*\n"
            "path-include=/usr/share/doc/*/copyright\npath-exclude=/usr/share/locale/*\n"
        )
        tar = subprocess.run(["tar", "-C", str(rootfs), "-c", "."], capture_output=True, check=True)
        podman("import", "-q", "-", BASE_IMAGE, input_bytes=tar.stdout)


def baked_packages() -> list[str]:
    """The Debian packages the host image has installed: the defaults of BAKED_SETTINGS, PHP's extensions for its
    default version, the demo FastAPI app's libraries, and the packages of BAKED_RUNTIMES."""
    roles = ENGINE_ROOT / "roles"
    found = {package for role, key in BAKED_SETTINGS for package in load_role(roles, role).defaults[key]}
    php = load_role(roles, "php").defaults
    found |= {f"php{php['php_version']}-{extension}" for extension in php["php_extensions"]}
    found |= set(load_role(roles, "fastapi_app").module.PACKAGES)
    found |= {package for name in BAKED_RUNTIMES for package in RUNTIMES[name].packages}
    return sorted(found)


def _containerfile_digest() -> str:
    baked = " ".join(baked_packages()).encode()
    return hashlib.sha256(CONTAINERFILE.read_bytes() + b"\0" + baked).hexdigest()[:16]


def build_images(force: bool = False) -> bool:
    """Build the base and host images unless they exist and match the Containerfile. Returns True if built."""
    digest = _containerfile_digest()
    if not force and exists("image", HOST_IMAGE):
        label = podman("image", "inspect", "--format", '{{index .Labels "fabstack.containerfile"}}', HOST_IMAGE)
        if label.strip() == digest:
            return False
    if force or not exists("image", BASE_IMAGE):
        build_base_image()
    podman(
        "build", "-q", "--label", f"fabstack.containerfile={digest}", "-t", HOST_IMAGE,
        "--build-arg", f"BAKED_PACKAGES={' '.join(baked_packages())}",
        "-f", str(CONTAINERFILE), str(CONTAINERFILE.parent),
    )
    podman("image", "prune", "-f", check=False)
    return True


DOCKER_SOCKET = Path("/run/podman/podman.sock")


def ensure_docker_api() -> str:
    """podman's Docker-compatible API on a unix socket (for molecule's docker driver); returns DOCKER_HOST."""
    def answering() -> bool:
        try:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(2)
                sock.connect(str(DOCKER_SOCKET))
                sock.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
                return b"OK" in sock.recv(1024)
        except OSError:
            return False

    if not answering():
        DOCKER_SOCKET.parent.mkdir(parents=True, exist_ok=True)
        # started from / and left running: from the repo's folder, it would fail every container start (runc:
        # "write child: broken pipe") once that folder is removed, e.g. a CI checkout
        subprocess.Popen(["podman", "system", "service", "--time=0", f"unix://{DOCKER_SOCKET}"], cwd="/",
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 20
        while not answering():
            if time.monotonic() > deadline:
                raise FabstackError("podman's Docker API did not come up", key="sandbox")
            time.sleep(0.2)
    return f"unix://{DOCKER_SOCKET}"


def molecule_environment(root: Path) -> dict[str, str]:
    """Make molecule's docker driver usable here (host image, sandbox key, podman's Docker API) and return the
    environment molecule needs: ``DOCKER_HOST`` and this venv's bin first on ``PATH`` (for ansible-config)."""
    build_images()
    ensure_ssh_key(root)
    seed_app_repositories(root)
    venv_bin = str(Path(sys.executable).parent)
    return dict(os.environ, DOCKER_HOST=ensure_docker_api(), PATH=f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}")


def ensure_ssh_key(root: Path) -> Path:
    """The sandbox's own key pair (created once); returns the private key's path."""
    key = state_dir(root) / "id_ed25519"
    if not key.exists():
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "fabstack-sandbox", "-f", str(key)], check=True
        )
    return key


def ensure_network(name: str, subnet: str) -> None:
    """Create the sandbox's podman network with its fixed subnet, once."""
    if not exists("network", name):
        podman("network", "create", "--subnet", subnet, name)


def _running(container: str) -> bool:
    if not exists("container", container):
        return False
    return podman("inspect", "--format", "{{.State.Running}}", container).strip() == "true"


def network_sysctls() -> dict[str, str]:
    """The kernel's network settings the roles ask for (common's accept queue, hardening's CIS profile): a container
    cannot set them from inside, so the sandbox gives them to each host when it starts it, as a hypervisor would."""
    roles = ENGINE_ROOT / "roles"
    common = load_mapping(roles / "common" / "defaults" / "main.yml")
    hardening = load_mapping(roles / "hardening" / "defaults" / "main.yml")
    wanted = {"net.core.somaxconn": common["common_somaxconn"], **hardening["hardening_sysctls"]}
    # Not forwarding: turning it off makes the kernel reset accept_redirects to 1, and runc applies the settings in
    # no fixed order. A container's network is forwarded by podman anyway; the role reports it as skipped.
    return {key: str(value) for key, value in wanted.items()
            if key.startswith("net.") and key not in ("net.ipv4.conf.all.forwarding", "net.ipv4.ip_forward")}


def start_host(host: SandboxHost, network: str, pubkey: Path) -> bool:
    """Start one host container (systemd as PID 1); a stopped one is started again, one from another image, key or
    kernel settings is replaced. Returns True when a new container was made."""
    sysctls = [arg for key, value in sorted(network_sysctls().items()) for arg in ("--sysctl", f"{key}={value}")]
    key_id = hashlib.sha256(pubkey.read_bytes() + host.memory.encode() + b"NET_ADMIN" +
                            " ".join(sysctls).encode()).hexdigest()[:16]
    if exists("container", host.container):
        current = podman("inspect", "--format", '{{.Image}} {{index .Config.Labels "fabstack.key"}}',
                         host.container).split()
        image_id = podman("image", "inspect", "--format", "{{.Id}}", HOST_IMAGE).strip()
        if current == [image_id, key_id]:
            if not _running(host.container):
                podman("start", host.container)  # a stopped or killed host comes back with its state
            return False
    podman("rm", "-f", "-t", "0", host.container, check=False)
    podman(
        "run", "-d", "--name", host.container, "--hostname", host.name, "--network", network,
        "--label", f"fabstack.key={key_id}", *(["--memory", host.memory] if host.memory else []),
        "--ip", host.address, "--systemd=always", "--cap-add", "NET_RAW", "--cap-add", "NET_ADMIN",
        *sysctls, "--shm-size", "256m",
        "-v", f"{pubkey}:/home/deploy/.ssh/authorized_keys:ro,Z",
        HOST_IMAGE, "/sbin/init",
    )
    return True


def wait_for_ssh_key(host: SandboxHost, timeout: float = 60) -> str:
    """Wait until the host's sshd has generated its key and answers; return the ed25519 public key."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc = subprocess.run(
            ["podman", "exec", host.container, "sh", "-c",
             "systemctl is-active -q ssh && cat /etc/ssh/ssh_host_ed25519_key.pub"],
            capture_output=True, check=False, timeout=timeout,
        )
        if proc.returncode == 0 and proc.stdout.startswith(b"ssh-ed25519"):
            return " ".join(proc.stdout.decode().split()[:2])
        time.sleep(0.3)
    raise FabstackError("sshd did not come up in the container", key="sandbox", host=host.name)


def known_hosts_line(host: SandboxHost, key: str) -> str:
    """A known_hosts entry for the host's address (``[addr]:port`` when the port is not 22)."""
    name = host.address if host.port == 22 else f"[{host.address}]:{host.port}"
    return f"{name} {key}\n"


GIT_IDENTITY = {"GIT_AUTHOR_NAME": "fabstack sandbox", "GIT_AUTHOR_EMAIL": "sandbox@fabstack.invalid",
                "GIT_COMMITTER_NAME": "fabstack sandbox", "GIT_COMMITTER_EMAIL": "sandbox@fabstack.invalid"}


def git(*args: str, cwd: Path) -> str:
    """A git command in ``cwd`` with the sandbox's identity; its output."""
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False,
                          env=dict(os.environ, **GIT_IDENTITY))
    if done.returncode != 0:
        raise FabstackError(f"git {args[0]}: {done.stderr.strip()[-200:]}", key=str(cwd))
    return done.stdout.strip()


def seed_repository(folder: Path, bare: Path, message: str = "Initial import") -> str:
    """A bare repository at ``bare`` whose ``main`` holds ``folder``'s files (one commit); returns the commit."""
    bare.mkdir(parents=True, exist_ok=True)
    git("init", "--quiet", "--bare", "--initial-branch=main", str(bare), cwd=bare.parent)
    with tempfile.TemporaryDirectory(prefix="fabstack-seed-") as scratch:
        work = Path(scratch) / "work"
        shutil.copytree(folder, work, ignore=shutil.ignore_patterns("__pycache__", "vendor", ".venv", "node_modules"))
        git("init", "--quiet", "--initial-branch=main", cwd=work)
        git("add", "-A", cwd=work)
        git("commit", "--quiet", "-m", message, cwd=work)
        git("push", "--quiet", str(bare), "main", cwd=work)
        return git("rev-parse", "HEAD", cwd=work)


def seed_app_repositories(root: Path) -> None:
    """The demo apps' git repositories (``sandbox_app_repositories`` of group_vars/all: bare repo -> folder), made
    when missing, so that releases take the path a team's own repository takes."""
    values = load_vars_location(root / "group_vars", "all")[0]
    for bare, folder in dict(values.get("sandbox_app_repositories") or {}).items():
        target = root / str(bare)
        if not (target / "HEAD").is_file():
            seed_repository(repo_or_bundled(root, str(folder)), target)


def up(inv: Inventory) -> list[SandboxHost]:
    """Build images if needed, start every inventory host and record their host keys beside the inventory."""
    values = inv.resolve(next(iter(inv.hosts))).values
    seed_app_repositories(inv.root)
    network = str(values.get("sandbox_network", DEFAULT_NETWORK))
    subnet = str(values.get("sandbox_subnet", DEFAULT_SUBNET))
    hosts = sandbox_hosts(inv)
    build_images()
    key = ensure_ssh_key(inv.root)
    ensure_network(network, subnet)
    if any([start_host(host, network, key.with_suffix(".pub")) for host in hosts]):
        topology_path(inv.path).unlink(missing_ok=True)  # new hosts start from the inventory's own topology
    lines = [known_hosts_line(host, wait_for_ssh_key(host)) for host in hosts]
    known_hosts_path(inv).write_text("".join(lines))
    return hosts


def down(inv: Inventory) -> None:
    """Remove every sandbox host container and the sandbox network."""
    values = inv.resolve(next(iter(inv.hosts))).values
    for host in sandbox_hosts(inv):
        podman("rm", "-f", "-t", "0", host.container, check=False)
    podman("network", "rm", str(values.get("sandbox_network", DEFAULT_NETWORK)), check=False)
    known_hosts_path(inv).unlink(missing_ok=True)
    topology_path(inv.path).unlink(missing_ok=True)  # fresh hosts start from the inventory's own topology


def status(inv: Inventory) -> list[tuple[str, str, str]]:
    """(host, address, state) for each sandbox host; state is the container's and systemd's."""
    rows = []
    for host in sandbox_hosts(inv):
        if not exists("container", host.container):
            rows.append((host.name, host.address, "absent"))
            continue
        if not _running(host.container):
            rows.append((host.name, host.address, "stopped"))
            continue
        proc = subprocess.run(
            ["podman", "exec", host.container, "systemctl", "is-system-running"], capture_output=True, check=False,
            timeout=60,
        )
        rows.append((host.name, host.address, f"running (systemd {proc.stdout.decode().strip() or 'unknown'})"))
    return rows
