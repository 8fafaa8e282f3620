#!/usr/bin/env bash
# Install what meshward needs to build and test, from Debian's archive only.
# Idempotent: does nothing when every package is already installed.
# Run as root (or with sudo available).
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config git
  libssl-dev openssl
  libjansson-dev libyaml-dev libev-dev libsqlite3-dev
  libcmocka-dev
  clang libclang-rt-14-dev clang-format
  softhsm2 libp11-kit-dev opensc
  curl libhttp-parser-dev
  iptables iproute2 python3 xxd jq sqlite3 procps util-linux
  ca-certificates
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  [ "${1:-}" = "--quiet" ] || echo "deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

echo "deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "deps: not root and no sudo; install as root: ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
