#!/usr/bin/env bash
# Installs the Debian packages the test suite needs, only when a command is missing (idempotent),
# then checks that every command is really there, failing loudly otherwise.
#
# `tests/deps.sh` covers the whole suite (tests/all.sh); `tests/deps.sh NAME…` only the tools
# named (commands of the table below, or `yaml` for the python3 module): what each test asks
# for through herald_test_support::ensure, so this table is the one place that maps a tool to
# its package.
set -euo pipefail

# command -> package
declare -A need=(
  [qemu-system-x86_64]=qemu-system-x86
  [busybox]=busybox-static
  [ipvsadm]=ipvsadm
  [ip]=iproute2
  [cpio]=cpio
  [bird]=bird2
  [birdc]=bird2
  [birdcl]=bird2
  [vtysh]=frr
  [bgpd]=frr
  [zebra]=frr
  [ospfd]=frr
  [ospf6d]=frr
  [gobgpd]=gobgpd
  [gobgp]=gobgpd
  [exabgp]=exabgp
  # the lab e2e's health checker of the real servers (tests/lab/e2e): in the guest's initramfs.
  # On the host its unit stays inactive: it needs /etc/keepalived/keepalived.conf, not shipped.
  [keepalived]=keepalived
  [promtool]=prometheus
  [prometheus]=prometheus
  [prometheus-node-exporter]=prometheus-node-exporter
  [openssl]=openssl
  [curl]=curl
  [python3]=python3
  [kmod]=kmod
  # the QEMU lab's host side (tests/lab/lib/host.sh): initramfs, kernel modules, the guest's disk
  [modinfo]=kmod
  [dpkg-deb]=dpkg
  [gzip]=gzip
  [tar]=tar
  [timeout]=coreutils
  # the lab's benchmarks only (tests/lab/lab.sh bench, e2e-bench): in the guest's initramfs
  [hping3]=hping3
  [strace]=strace
  # tests/bench/bfd-jitter.sh: timestamps of BFD packets at the router
  [tcpdump]=tcpdump
  # tests/trixie-root.sh: the Debian trixie root the newer routers (BIRD 3, FRR 10, GoBGP 3.36) run from
  [debootstrap]=debootstrap
  [unshare]=util-linux
  [nft]=nftables
  # tests/package.sh: the man pages, the unit, the packaged binary's sections (cargo-deb's
  # strip and objcopy are binutils too)
  [man]=man-db
  [systemd-analyze]=systemd
  [readelf]=binutils
  # tests/top.rs: drives `ipvs-herald top` in a detached pane (send-keys, capture-pane)
  [tmux]=tmux
  # tests/status_page.rs: the status page loaded in a headless browser
  [chromium]=chromium
)
# Where the packages put commands that are not on every PATH (FRR's daemons, sbin for a user).
have() {
  command -v "$1" >/dev/null 2>&1 || [ -x "/usr/lib/frr/$1" ] || [ -x "/usr/sbin/$1" ] ||
    [ -x "/usr/bin/$1" ]
}
yaml() { python3 -c 'import yaml' >/dev/null 2>&1; }

# What to check: every command and the yaml module, or the names given.
want_yaml=1
cmds=("${!need[@]}")
if [ "$#" -gt 0 ]; then
  want_yaml=0
  cmds=()
  for name in "$@"; do
    if [ "$name" = yaml ]; then
      want_yaml=1
      cmds+=(python3)
    elif [ -n "${need[$name]:-}" ]; then
      cmds+=("$name")
    else
      echo "tests/deps.sh: no package is known for '$name': add it to the table" >&2
      exit 1
    fi
  done
fi

missing=()
for cmd in "${cmds[@]}"; do
  have "$cmd" || missing+=("${need[$cmd]}")
done
# Python modules the dashboard tooling imports (python3 itself first, when it is missing too).
if [ "$want_yaml" = 1 ] && ! yaml; then
  missing+=(python3-yaml)
fi
if [ "${#missing[@]}" -gt 0 ]; then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
for cmd in "${cmds[@]}"; do
  if ! have "$cmd"; then
    echo "tests/deps.sh: $cmd (package ${need[$cmd]}) is still missing after apt-get install" >&2
    exit 1
  fi
done
if [ "$want_yaml" = 1 ] && ! yaml; then
  echo "tests/deps.sh: python3 module yaml (package python3-yaml) is still missing" >&2
  exit 1
fi
if [ "$#" -gt 0 ]; then
  echo "present: $*"
else
  echo "all test dependencies present"
fi
