#!/usr/bin/env bash
#
# The ipvs-herald real-kernel lab: boots a Debian kernel with IPVS under QEMU (TCG) and runs
# scenarios inside it, collecting ipvsadm output and `ipvs-herald dump --json` side by side.
#
# Usage: tests/lab/lab.sh <command>
#   fetch        download the kernel package into target/lab/cache; install missing host tools
#   build        build target/lab/initramfs.cpio.gz (needs target/debug/ipvs-herald or LAB_HERALD_BIN)
#   run          fetch + build + one VM boot running every scenario; results in target/lab/results
#   interactive  boot with a NAT topology, traffic and `ipvs-herald run`; guest :9639 -> host 127.0.0.1:9639
#   bench        boot once and run the benchmarks (10k services, large connection table); prints figures
#   e2e          boot once: the announcer end to end (BIRD router, two directors, ECMP); results in
#                target/lab/e2e/results/e2e, checked by `cargo test --test lab_e2e`
#                (LAB_E2E_FREEZES=K: K frozen-director measurements with BFD and K without, default 1)
#   cluster      boot once: eight directors behind one BIRD router (eight-way ECMP), flow shares
#                through Prometheus and the shipped recording rules, one pool down and back, each
#                daemon's CPU and memory (needs target/release/ipvs-herald); results in
#                target/lab/cluster/results/cluster, checked by `cargo test --test lab_cluster`
#   e2e-bench    boot once: route convergence flips, health-check CPU with 1,000 VIPs vs ipvsadm and
#                ExaBGP healthcheck (needs target/release/ipvs-herald; LAB_E2E_BENCH=flips,exabgp,cpu
#                picks parts, LAB_E2E_BENCH_BASE=BIN adds a second build to the CPU part)
#   systemd      boot once with the host's systemd as PID 1: the shipped config/ipvs-herald.service
#                reads namespace lb ([reader] netns) without, then with the netns drop-in; results
#                in target/lab/systemd/results/systemd, checked by `cargo test --test lab_systemd`
#   serve        boot with traffic and `ipvs-herald run`; guest :9639 -> host 127.0.0.1:$LAB_HOST_PORT
#   exporter-bench  boot once: ipvs-herald vs node_exporter's ipvs collector, 1k and 10k services
#   vectors      copy the netlink replies captured by the last run into shared/tests/vectors (5.10,
#                6.12: with the procfs captures into shared/tests/data/kernel-<version>)
#   clean        remove target/lab (or target/lab/kernel-<version>) except the download caches
#
# Environment: LAB_KERNEL (5.10, 6.1 or 6.12: Debian bullseye's, bookworm's or trixie's cloud
# kernel, default 6.1; 5.10 and 6.12 write under target/lab/kernel-<version>), LAB_TARGET (cargo target dir, default <repo>/target), LAB_HERALD_BIN, LAB_TIMEOUT
# (seconds, default 900), LAB_BENCH (bench parts: services,conns), LAB_SMP (default 2), LAB_MEM_MB (default 1024), LAB_SCENARIOS (space
# separated scenario names to run instead of all), LAB_HOST_PORT (interactive, default 9639).
set -u

LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$LAB_DIR/../.." && pwd)
LAB_TARGET=${LAB_TARGET:-${CARGO_TARGET_DIR:-$REPO_DIR/target}}
# The kernel: Debian's linux-image-cloud-amd64 of bookworm (6.1, the default), bullseye (5.10)
# or trixie (6.12). Each non-default kernel has its own output and cache directories, so that
# results of different kernels never mix; 6.1 keeps the historical paths.
LAB_KERNEL=${LAB_KERNEL:-6.1}
case "$LAB_KERNEL" in
6.1) lab_sub="" ;;
5.10 | 6.12) lab_sub="/kernel-$LAB_KERNEL" ;;
*)
    echo "lab: error: LAB_KERNEL=$LAB_KERNEL: unknown kernel (5.10, 6.1 or 6.12)" >&2
    exit 64
    ;;
esac
LAB_OUT=${LAB_OUT:-$LAB_TARGET/lab$lab_sub}
LAB_CACHE=${LAB_CACHE:-$LAB_TARGET/lab/cache$lab_sub}
LAB_EXTRA_BINARIES=${LAB_EXTRA_BINARIES:-}
export LAB_DIR REPO_DIR LAB_TARGET LAB_OUT LAB_CACHE LAB_KERNEL

# shellcheck source=lib/host.sh
. "$LAB_DIR/lib/host.sh"

usage() {
    sed -n '3,34p' "$0" | sed 's/^# \{0,1\}//'
}

# Everything runs inside main, and the script exits right after it: bash then has parsed the
# whole command before running it, so editing this file during a run cannot change that run.
main() {
    cmd=${1:-}
    [ $# -gt 0 ] && shift
    case "$cmd" in
    fetch) lab_fetch ;;
    build) lab_build ;;
    run)
        lab_fetch
        lab_build
        lab_boot run "herald.scenarios=$(echo "${LAB_SCENARIOS:-all}" | tr ' ' ',')"
        ;;
    interactive)
        lab_fetch
        lab_build
        lab_boot interactive
        ;;
    bench)
        LAB_OUT="$LAB_OUT/bench"
        # Benchmark the optimised build: a debug build under TCG measures the emulator, not us.
        LAB_HERALD_BIN=${LAB_HERALD_BIN:-$LAB_TARGET/release/ipvs-herald}
        [ -x "$LAB_HERALD_BIN" ] || die "no $LAB_HERALD_BIN: run cargo build --release -p ipvs-herald first"
        lab_fetch
        lab_bench_prepare
        lab_build
        LAB_TIMEOUT=${LAB_TIMEOUT:-1800} LAB_DISK_MB=${LAB_DISK_MB:-64} lab_boot bench "herald.bench=${LAB_BENCH:-services,conns}"
        cat "$LAB_OUT/results/bench.txt" || die "the guest produced no bench.txt"
        ;;
    e2e)
        LAB_OUT="$LAB_OUT/e2e"
        lab_fetch
        lab_e2e_prepare
        lab_e2e_prom_prepare
        lab_e2e_keepalived_prepare
        lab_build
        LAB_TIMEOUT=${LAB_TIMEOUT:-900} LAB_MEM_MB=${LAB_MEM_MB:-1536} lab_boot e2e "herald.e2e_freezes=${LAB_E2E_FREEZES:-1}"
        ;;
    cluster)
        LAB_OUT="$LAB_OUT/cluster"
        # The optimised build, as for bench: the boot reports each daemon's CPU and memory, and
        # eight debug builds under TCG starve the guest's clients.
        LAB_HERALD_BIN=${LAB_HERALD_BIN:-$LAB_TARGET/release/ipvs-herald}
        [ -x "$LAB_HERALD_BIN" ] || die "no $LAB_HERALD_BIN: run cargo build --release -p ipvs-herald first"
        lab_fetch
        lab_e2e_prepare
        lab_cluster_prepare
        lab_build
        LAB_TIMEOUT=${LAB_TIMEOUT:-900} LAB_MEM_MB=${LAB_MEM_MB:-1536} lab_boot cluster
        ;;
    e2e-bench)
        LAB_OUT="$LAB_OUT/e2e-bench"
        # The optimised build, as for bench: CPU figures of a debug build measure the debug build.
        LAB_HERALD_BIN=${LAB_HERALD_BIN:-$LAB_TARGET/release/ipvs-herald}
        [ -x "$LAB_HERALD_BIN" ] || die "no $LAB_HERALD_BIN: run cargo build --release -p ipvs-herald first"
        lab_fetch
        lab_e2e_prepare
        lab_e2e_bench_prepare
        # strace counts the daemon's netlink requests per tick; LAB_E2E_BENCH_BASE (optional)
        # is a second build measured in the same boot (before/after a change).
        bash "$REPO_DIR/tests/deps.sh" strace >&2 || die "tests/deps.sh strace failed"
        LAB_EXTRA_BINARIES="$LAB_EXTRA_BINARIES $(command -v strace)"
        if [ -n "${LAB_E2E_BENCH_BASE:-}" ]; then
            [ -x "$LAB_E2E_BENCH_BASE" ] || die "LAB_E2E_BENCH_BASE=$LAB_E2E_BENCH_BASE is not an executable"
            mkdir -p "$LAB_OUT"
            cp "$LAB_E2E_BENCH_BASE" "$LAB_OUT/ipvs-herald-base" && strip --strip-debug "$LAB_OUT/ipvs-herald-base" ||
                die "cannot copy $LAB_E2E_BENCH_BASE"
            LAB_EXTRA_BINARIES="$LAB_EXTRA_BINARIES $LAB_OUT/ipvs-herald-base"
        fi
        lab_build
        LAB_TIMEOUT=${LAB_TIMEOUT:-2700} LAB_MEM_MB=${LAB_MEM_MB:-3072} lab_boot e2e-bench "herald.e2e_bench=${LAB_E2E_BENCH:-flips,exabgp,cpu}"
        cat "$LAB_OUT/results/e2e-bench/bench.txt" || die "the guest produced no e2e-bench/bench.txt"
        ;;
    systemd)
        LAB_OUT="$LAB_OUT/systemd"
        lab_fetch
        lab_systemd_prepare
        lab_build
        LAB_TIMEOUT=${LAB_TIMEOUT:-600} LAB_DISK_MB=${LAB_DISK_MB:-16} lab_boot systemd systemd.unit=herald-lab.target
        ;;
    serve)
        # The guest serves /metrics with traffic flowing until herald.serve_seconds; the exporter
        # is forwarded to 127.0.0.1:$LAB_HOST_PORT (tests/lab_exporter.rs runs Prometheus on it).
        LAB_OUT="$LAB_OUT/serve"
        lab_fetch
        # hping3: the source-hash skew (1,500 UDP connections from one client, serve.sh).
        lab_bench_prepare
        lab_build
        LAB_DISK_MB=${LAB_DISK_MB:-16} lab_boot serve "herald.serve_seconds=${LAB_SERVE_SECONDS:-600}"
        ;;
    exporter-bench)
        LAB_OUT="$LAB_OUT/exporter-bench"
        # The optimised build, as for bench.
        LAB_HERALD_BIN=${LAB_HERALD_BIN:-$LAB_TARGET/release/ipvs-herald}
        [ -x "$LAB_HERALD_BIN" ] || die "no $LAB_HERALD_BIN: run cargo build --release -p ipvs-herald first"
        lab_fetch
        lab_exporter_bench_prepare
        lab_build
        LAB_TIMEOUT=${LAB_TIMEOUT:-2400} LAB_MEM_MB=${LAB_MEM_MB:-3072} LAB_DISK_MB=${LAB_DISK_MB:-64} lab_boot exporter-bench
        cat "$LAB_OUT/results/exporter-bench.txt" || die "the guest produced no exporter-bench.txt"
        lab_exporter_bench_summary "$LAB_OUT/results/exporter-bench.txt" | tee "$LAB_OUT/results/exporter-bench-summary.txt"
        ;;
    vectors) lab_vectors ;;
    clean) find "$LAB_OUT" -mindepth 1 -maxdepth 1 ! -name cache ! -name 'apt-*' -exec rm -rf {} + ;;
    -h | --help | help) usage ;;
    *)
        usage >&2
        exit 64
        ;;
    esac
}

main "$@"
exit $?
