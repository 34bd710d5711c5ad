#!/usr/bin/env bash
# Install what fabstack needs on a fresh Debian 12 machine, as root. Safe to run again: each step is
# skipped when its result is already there. Network use: Debian's mirror (apt) and PyPI (pip) only.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

debian_packages=(podman runc debootstrap uidmap openssh-client python3-venv python3-pip curl podman-docker wrk git composer lynis openssl e2fsprogs util-linux)
missing=()
for pkg in "${debian_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  apt-get update -q >/dev/null
  apt-get install -y -q "${missing[@]}" >/dev/null
fi

# The controller builds Node.js apps (npm ci): Debian's npm, unless an npm is already there (NodeSource's nodejs
# bundles its own, and Debian's npm would not install beside it).
if ! command -v npm >/dev/null; then
  echo "setup: installing Debian's npm"
  apt-get install -y -q npm >/dev/null
fi

# crun fails on this kind of machine (cgroups hybrid mode) and runc cannot raise rlimits without
# CAP_SYS_RESOURCE, so containers get explicit limits no higher than this shell's hard limit.
nofile=$(ulimit -Hn)
[[ $nofile == unlimited || $nofile -gt 1048576 ]] && nofile=1048576
conf=$(printf '[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=32768:32768"]\n[engine]\nruntime = "runc"\n' "$nofile" "$nofile")
if [[ "$(cat /etc/containers/containers.conf 2>/dev/null)" != "$conf" ]]; then
  mkdir -p /etc/containers
  printf '%s\n' "$conf" >/etc/containers/containers.conf
  echo "setup: wrote /etc/containers/containers.conf (runtime runc, nofile $nofile)"
fi

# Each sandbox host runs its own systemd, and systemd's .path units need inotify instances: past about 25
# containers the default (128 per user) runs out and the rest never finish booting (the 50-host benchmark).
inotify=$'fs.inotify.max_user_instances = 8192\nfs.inotify.max_user_watches = 1048576'
if [[ "$(cat /etc/sysctl.d/60-fabstack-sandbox.conf 2>/dev/null)" != "$inotify" ]]; then
  printf '%s\n' "$inotify" >/etc/sysctl.d/60-fabstack-sandbox.conf
  sysctl -q -p /etc/sysctl.d/60-fabstack-sandbox.conf
  echo "setup: raised the inotify limits for many sandbox hosts (/etc/sysctl.d/60-fabstack-sandbox.conf)"
fi

# The project's virtualenv, reinstalled only when pyproject.toml changes.
if [[ ! -x .venv/bin/python ]]; then
  /usr/bin/python3 -m venv .venv
fi
stamp=.venv/.fabstack-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  echo "setup: installing the Python dependencies into .venv"
  .venv/bin/pip install -q --upgrade pip >/dev/null
  # fabstack's dependencies (pyproject.toml's, tests' included), and this checkout itself on the venv's path through a
  # .pth file: the code you edit is the code that runs, with no editable-install build (nor its notices)
  .venv/bin/pip uninstall -q -y fabstack >/dev/null 2>&1 || true
  .venv/bin/python -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]
print("\n".join(p["dependencies"] + p["optional-dependencies"]["test"]))' >.venv/requirements.txt
  .venv/bin/pip install -q -r .venv/requirements.txt
  echo "$PWD" >"$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/fabstack-checkout.pth"
  echo "$want" >"$stamp"
fi
echo "setup: ready"
