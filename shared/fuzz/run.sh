#!/bin/sh
# Build every fuzz target of herald-shared and run each for a bounded number of runs (CI).
# Usage: shared/fuzz/run.sh [RUNS]   (default 20000 runs per target)
# Needs cargo-fuzz (`cargo install cargo-fuzz`); nightly features are enabled with
# RUSTC_BOOTSTRAP=1 on the stable toolchain. Seeds come from shared/tests/data and
# shared/tests/vectors; new corpus entries stay under shared/fuzz/corpus (git-ignored).
# Built as announcer/fuzz/run.sh builds (debug assertions and overflow checks on, one target
# directory, target/fuzz): the dependencies both fuzz crates share are compiled once.
set -eu
RUNS="${1:-20000}"
HERE="$(cd "$(dirname "$0")" && pwd)"
cd "$HERE"
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is missing: run 'cargo install cargo-fuzz'" >&2
    exit 1
fi
export RUSTC_BOOTSTRAP=1
TARGET_DIR="$HERE/../../target/fuzz"
cargo fuzz build --target-dir "$TARGET_DIR"

seed() { # seed TARGET FILES...
    t="$1"; shift
    mkdir -p "corpus/$t"
    for f in "$@"; do [ -f "$f" ] && cp "$f" "corpus/$t/" || true; done
}
seed netlink_attrs ../tests/vectors/*.bin
# Hand-built .hex vectors are converted to bytes for the netlink seed corpus.
for h in ../tests/vectors/*.hex; do
    [ -f "$h" ] || continue
    sed 's/#.*//' "$h" | tr -s ' \n' '\n\n' | grep -v '^$' | while read -r b; do printf "\\$(printf '%03o' "0x$b")"; done \
        > "corpus/netlink_attrs/$(basename "$h" .hex).bin"
done
seed proc_ip_vs ../tests/data/ip_vs
seed proc_ip_vs_stats ../tests/data/ip_vs_stats
seed proc_ip_vs_conn ../tests/data/ip_vs_conn

status=0
for t in netlink_attrs proc_ip_vs proc_ip_vs_stats proc_ip_vs_conn; do
    echo "== $t: $RUNS runs"
    if ! cargo fuzz run --target-dir "$TARGET_DIR" "$t" "corpus/$t" -- -runs="$RUNS" -max_len=8192 -timeout=10; then
        echo "FAIL: $t (crash input under shared/fuzz/artifacts/$t)" >&2
        status=1
    fi
done
exit $status
