#!/usr/bin/env bash
# The whole test suite: what the README's second command runs and what CI (.ci/run) calls.
#
# Stages, each loud on failure (set -e): install missing Debian packages, the fast stage
# (tests/fast.sh: module cycles, formatting, lints, unit tests, rustdoc, cargo-deny; no root
# needed), the Debian trixie root of the newer routers, unit and integration tests of every crate (with BGP interop against real BIRD 2 / FRR / GoBGP
# in network namespaces, and BIRD 3 / FRR 10 / GoBGP 3.36 from a Debian trixie root; OSPF end to end of `ipvs-herald run` with BIRD and FRR), fault tests and the soak of the binary (real BIRD in network
# namespaces), the Debian package (built, installed with dpkg, checked, purged), fuzz smoke runs
# of every decoder, and the QEMU lab with a real IPVS kernel (Debian's 6.1, then the scenarios
# again on 5.10 and 6.12; the e2e cluster, and eight directors behind one ECMP router).
# Needs root (network namespaces, apt-get). Nothing is skipped: a missing tool is an error.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

stage() { printf '\n===== %s (%s) =====\n' "$*" "$(date -u +%H:%M:%S)"; }

# Root is needed (network namespaces, QEMU lab, apt-get): as root it runs as it is; otherwise it
# asks sudo, so the README's command works both on a machine where you are root without sudo
# and on one where you are a user with sudo.
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    # sudo resets PATH (secure_path): pass the caller's toolchain on explicitly.
    exec sudo env "PATH=$PATH" "CARGO_HOME=${CARGO_HOME:-$HOME/.cargo}" \
      "RUSTUP_HOME=${RUSTUP_HOME:-$HOME/.rustup}" "CI=${CI:-}" "FUZZ_RUNS=${FUZZ_RUNS:-20000}" \
      "SOAK_SECONDS=${SOAK_SECONDS:-120}" "E2E_SLACK_S=${E2E_SLACK_S:-6}" bash "$0" "$@"
  fi
  echo "tests/all.sh: must run as root (network namespaces, QEMU lab, apt-get), and sudo is not installed" >&2
  exit 1
fi

# Under sudo, cargo runs as root in the caller's checkout and CARGO_HOME: at exit, whatever the
# run created or changed there as root goes back to the caller, so that their own cargo commands
# (the README's first one) keep working. Only in directories the caller owns, and only files
# created or changed since the run's start (ctime): a root-owned toolchain elsewhere is never touched.
if [ -n "${SUDO_UID:-}" ] && [ "$SUDO_UID" != 0 ]; then
  run_stamp=$(mktemp)
  give_back() {
    local d
    for d in "$PWD" "${CARGO_HOME:-}"; do
      [ -n "$d" ] && [ -d "$d" ] && [ "$(stat -c %u "$d")" = "$SUDO_UID" ] || continue
      find "$d" -xdev -uid 0 -cnewer "$run_stamp" \
        -exec chown -h "$SUDO_UID:${SUDO_GID:-$SUDO_UID}" {} + || true
    done
    rm -f "$run_stamp"
  }
  trap give_back EXIT
fi

# First, because the fast stage needs python3 and a minimal Debian image lacks it; about a
# second when everything is installed.
stage "Debian packages (tests/deps.sh)"
bash tests/deps.sh

stage "fast stage: module cycles, rustfmt, clippy, unit tests, rustdoc, cargo deny (tests/fast.sh)"
bash tests/fast.sh

stage "the Debian trixie root with BIRD 3, FRR 10, GoBGP 3.36 (tests/trixie-root.sh: built once, ~80 s, then reused)"
bash tests/trixie-root.sh

stage "unit and integration tests (BGP interop with BIRD/FRR/GoBGP, OSPF, OSPF end to end of ipvs-herald run with BIRD and FRR, promtool, Prometheus)"
cargo test --workspace --locked

stage "fault tests: the binary against a real BIRD in namespaces (panic, stuck read, wedge, IPVS gone, router restart, silent link loss, kill -9, drain across a restart; tests/README.md)"
cargo clippy --locked -p ipvs-herald --test faults --test soak -- -D warnings
cargo test --locked --test faults -- --nocapture

stage "soak: two directors, ECMP router, traffic, seeded random faults, invariant checker (SOAK_SECONDS=${SOAK_SECONDS:-120})"
SOAK_SECONDS="${SOAK_SECONDS:-120}" cargo test --locked --test soak -- --nocapture
stage "Debian package: release build, dpkg -i, the installed binary, config, man pages, completions, systemd-analyze verify, dpkg -r/-P (tests/package.sh)"
bash tests/package.sh

stage "fuzz smoke runs (every decoder)"
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
bash shared/fuzz/run.sh "${FUZZ_RUNS:-20000}"
bash announcer/fuzz/run.sh "${FUZZ_RUNS:-20000}"

stage "QEMU lab: real IPVS kernel, dump vs ipvsadm (tests/README.md)"
cargo clippy --locked -p ipvs-herald --test lab --test lab_e2e --test lab_exporter --test lab_cluster --test lab_systemd -- -D warnings
cargo test --locked --test lab

stage "QEMU lab: exporter scrapes vs ipvsadm in every scenario (same VM run), real Prometheus over every dashboard and rule query"
IPVS_HERALD_LAB_RESULTS="$PWD/target/lab/results/scenarios" cargo test --locked --test lab_exporter

stage "QEMU lab: the shipped systemd unit under systemd 252 as PID 1, [reader] netns without and with the netns drop-in"
cargo test --locked --test lab_systemd

# The same scenarios and scrape checks on the two other kernels of the matrix (tests/README.md,
# "Matrix"): one boot each; the real-Prometheus `serve` boot stays on 6.1 (named, not skipped
# silently: it has its own 6.1 stage above). The two boots run side by side with one virtual
# CPU each (a guest's scenarios are sequential shell: one emulated CPU each costs them little,
# and together they take one boot's time instead of two); the Rust checks then read their
# results. target/debug/ipvs-herald is the binary the 6.1 stage's `--test lab` built.
stage "QEMU lab on Debian's 5.10 and 6.12 kernels, side by side: every scenario (tests/lab/lab.sh run)"
mkdir -p target/lab
pids=()
for kernel in 5.10 6.12; do
  LAB_KERNEL=$kernel LAB_SMP=1 LAB_HERALD_BIN="$PWD/target/debug/ipvs-herald" \
    bash tests/lab/lab.sh run >"target/lab/run-$kernel.log" 2>&1 &
  pids+=($!)
done
lab_failed=0
for i in 0 1; do
  kernel=$([ $i = 0 ] && echo 5.10 || echo 6.12)
  if ! wait "${pids[$i]}"; then
    echo "tests/lab/lab.sh run on $kernel failed; its log (target/lab/run-$kernel.log) ends with:" >&2
    tail -n 30 "target/lab/run-$kernel.log" >&2
    lab_failed=1
  fi
done
[ "$lab_failed" = 0 ]
for kernel in 5.10 6.12; do
  stage "QEMU lab on Debian's $kernel kernel: dump and exporter scrape vs ipvsadm in every scenario, what the kernel lacks asserted absent"
  results="$PWD/target/lab/kernel-$kernel/results/scenarios"
  IPVS_HERALD_LAB_KERNEL=$kernel IPVS_HERALD_LAB_RESULTS="$results" cargo test --locked --test lab
  IPVS_HERALD_LAB_KERNEL=$kernel IPVS_HERALD_LAB_RESULTS="$results" \
    cargo test --locked --test lab_exporter -- --skip real_prometheus_evaluates_every_dashboard_and_rule_query
done

stage "QEMU lab: all-active ECMP cluster end to end (BIRD router, two directors; tests/lab/e2e/README.md)"
# Upper bounds on convergence get 6 s of slack (default 4) because the guest CPU is emulated (TCG).
E2E_SLACK_S="${E2E_SLACK_S:-6}" cargo test --locked --test lab_e2e

stage "QEMU lab: eight directors, eight-way ECMP, flow shares through Prometheus and the shipped rules, one pool down (tests/lab/cluster/README.md)"
# The release build of the package stage (the test checks it is fresh: cargo build --release).
E2E_SLACK_S="${E2E_SLACK_S:-6}" cargo test --locked --test lab_cluster -- --nocapture

stage "all passed"
