#!/usr/bin/env bash
# Install everything havm's demo and tests need on Debian 12, as root:
# Debian packages (QEMU, kernel, busybox, iproute2, iptables, openipmi,
# fence-agents, resource-agents, Pacemaker's CLI tools) and a virtualenv in
# .venv with havm installed in it. Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  python3-venv python3-dev gcc pkg-config
  qemu-system-x86 qemu-utils linux-image-amd64 busybox-static cpio
  iproute2 iptables iputils-ping procps psmisc util-linux
  openipmi ipmitool fence-agents resource-agents pacemaker-cli-utils pacemaker-common
  e2fsprogs libvirt-dev libvirt-daemon libvirt-daemon-driver-qemu
  chromium  # the dashboard's Playwright tests drive Debian's browser (no browser downloads)
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: need root to install: ${missing[*]}" >&2; exit 1
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Debian's own Python: the one python3-venv and python3-dev above are for, built with
# PGO and LTO (a pyenv or /usr/local python3 earlier on PATH may be a plain build:
# measured ~20% slower at `havm simulate` on this project's machines). PYTHON overrides.
PY=${PYTHON:-/usr/bin/python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.havm-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/pip install -q --disable-pip-version-check -e '.[test,libvirt]'
  touch "$stamp"
fi
echo "setup: ok ($(.venv/bin/python --version), havm $(.venv/bin/havm --version | cut -d' ' -f2))"
