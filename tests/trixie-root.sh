#!/usr/bin/env bash
# Builds (once) the minimal Debian trixie root the newer routers run from in the BGP interop
# tests: BIRD 3 (`bird3`), FRR 10 (`frr`) and GoBGP 3.36 (`gobgpd`), next to the host's Debian 12
# BIRD 2 / FRR 8.4 / GoBGP 3.10. The tests (announcer/tests/support/routers.rs, `Flavour::Trixie`)
# start each daemon as `ip netns exec NS unshare -m chroot ROOT …` with the test's directory
# bind-mounted at the same path inside the root.
#
#   tests/trixie-root.sh            build the root if it is missing or stale, then print versions
#   tests/trixie-root.sh --refresh  also `apt-get update && apt-get upgrade` inside it (point release)
#
# The root lives in target/trixie-root (IPVS_HERALD_TRIXIE_ROOT overrides it; the tests read the
# same variable). It is cached: a root whose stamp matches the recipe below is reused without
# network access. A stale or half-built root is rebuilt from scratch in a sibling directory and
# only moved into place once complete, so an interrupted build never leaves a root the tests would
# take for a good one. The host's apt sources are never touched: debootstrap gets the suite and
# the mirror on its command line. Any failure is fatal and says what failed.
set -euo pipefail
cd "$(dirname "$0")/.."

suite=trixie
mirror=http://deb.debian.org/debian
packages=(bird3 frr gobgpd)
# Changing the recipe (suite, mirror, packages, this number) invalidates cached roots.
recipe="v1 suite=$suite mirror=$mirror packages=${packages[*]}"

root="${IPVS_HERALD_TRIXIE_ROOT:-$PWD/target/trixie-root}"
stamp="$root/.herald-trixie-root"
refresh=0
case "${1:-}" in
  "") ;;
  --refresh) refresh=1 ;;
  *)
    echo "usage: tests/trixie-root.sh [--refresh]" >&2
    exit 2
    ;;
esac

fail() {
  echo "tests/trixie-root.sh: $*" >&2
  exit 1
}
[ "$(id -u)" = 0 ] || fail "must run as root (debootstrap, chroot)"
bash tests/deps.sh debootstrap unshare >/dev/null

# Runs a command inside the root in a private mount namespace with /proc, /dev and /sys, so
# the mounts vanish with the command even when it fails or is killed.
in_root() {
  local r="$1"
  shift
  unshare --mount --propagation private -- sh -euc '
    r="$1"; shift
    mount -t proc proc "$r/proc"
    mount --rbind /dev "$r/dev"
    mount --rbind /sys "$r/sys"
    exec chroot "$r" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
      LANG=C.UTF-8 "$@"
  ' in_root "$r" "$@"
}

build() {
  local new="$root.new"
  local started=$SECONDS
  rm -rf --one-file-system "$new"
  mkdir -p "$(dirname "$root")"
  echo "building the $suite root in $new (debootstrap --variant=minbase from $mirror)"
  debootstrap --variant=minbase "$suite" "$new" "$mirror" >"$new.log" 2>&1 ||
    fail "debootstrap $suite failed; log: $new.log ($(tail -n 3 "$new.log" | tr '\n' ' '))"
  # Nothing installed in the root may start a service (there is no init in it anyway).
  printf '#!/bin/sh\nexit 101\n' >"$new/usr/sbin/policy-rc.d"
  chmod 755 "$new/usr/sbin/policy-rc.d"
  in_root "$new" apt-get -q update >>"$new.log" 2>&1 ||
    fail "apt-get update inside the root failed; log: $new.log"
  in_root "$new" apt-get -q -y --no-install-recommends install "${packages[@]}" >>"$new.log" 2>&1 ||
    fail "apt-get install ${packages[*]} inside the root failed; log: $new.log"
  in_root "$new" apt-get clean
  echo "$recipe" >"$new/.herald-trixie-root"
  rm -rf --one-file-system "$root"
  mv "$new" "$root"
  mv "$new.log" "$root.log"
  echo "built $root in $((SECONDS - started)) s (log: $root.log)"
}

if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$recipe" ]; then
  build
elif [ "$refresh" = 1 ]; then
  echo "refreshing $root (apt-get update && upgrade)"
  in_root "$root" apt-get -q update >"$root.log" 2>&1 || fail "apt-get update failed; log: $root.log"
  in_root "$root" apt-get -q -y upgrade >>"$root.log" 2>&1 || fail "apt-get upgrade failed; log: $root.log"
  in_root "$root" apt-get clean
else
  echo "reusing $root (stamp matches; --refresh upgrades it)"
fi

# What is inside, from the packages and from the binaries themselves (a binary that does not
# start in the root fails here, not in the middle of a test).
in_root "$root" dpkg-query -W -f '${Package} ${Version}\n' "${packages[@]}" ||
  fail "packages missing from $root: remove it and run again"
# birdc has no --version: it only has to be there.
in_root "$root" test -x /usr/sbin/birdc || fail "/usr/sbin/birdc missing from $root"
for cmd in "/usr/sbin/bird --version" \
  "/usr/lib/frr/zebra --version" "/usr/lib/frr/bgpd --version" "/usr/bin/vtysh -h" \
  "/usr/bin/gobgpd --version" "/usr/bin/gobgp --version"; do
  # shellcheck disable=SC2086 # the command and its flag are two words on purpose
  out=$(in_root "$root" $cmd 2>&1) || fail "\`$cmd\` does not run in $root: $out"
  printf '%-30s %s\n' "${cmd%% -*}:" "$(printf '%s\n' "$out" | grep -m1 -iE 'version')"
done
