#!/usr/bin/env bash
# Installs the Debian packages the test suite needs, only when a command is missing (idempotent),
# then checks that every command is really there, failing loudly otherwise.
set -euo pipefail

# command -> package
declare -A need=(
  [qemu-system-x86_64]=qemu-system-x86
  [busybox]=busybox-static
  [ipvsadm]=ipvsadm
  [ip]=iproute2
  [cpio]=cpio
  [bird]=bird2
  [vtysh]=frr
  [gobgpd]=gobgpd
  [exabgp]=exabgp
  [promtool]=prometheus
  [prometheus-node-exporter]=prometheus-node-exporter
  [openssl]=openssl
  [curl]=curl
  [python3]=python3
  [kmod]=kmod
  [nft]=nftables
  # tests/package.sh: the man pages, the unit, the packaged binary's sections (cargo-deb's
  # strip and objcopy are binutils too)
  [man]=man-db
  [systemd-analyze]=systemd
  [readelf]=binutils
)
missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/lib/frr/$cmd" ] || [ -x "/usr/sbin/$cmd" ] ||
    [ -x "/usr/bin/$cmd" ] || missing+=("${need[$cmd]}")
done
# Python modules the dashboard tooling imports.
python3 -c 'import yaml' >/dev/null 2>&1 || missing+=(python3-yaml)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
for cmd in "${!need[@]}"; do
  if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$cmd" ] && [ ! -x "/usr/bin/$cmd" ]; then
    echo "tests/deps.sh: $cmd (package ${need[$cmd]}) is still missing after apt-get install" >&2
    exit 1
  fi
done
if ! python3 -c 'import yaml' >/dev/null 2>&1; then
  echo "tests/deps.sh: python3 module yaml (package python3-yaml) is still missing" >&2
  exit 1
fi
echo "all test dependencies present"
