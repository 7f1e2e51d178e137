#!/bin/sh
# Build and run every fuzz target for a bounded number of runs (default 200000 each).
# Usage: announcer/fuzz/run.sh [RUNS]
# Needs cargo-fuzz (`cargo install cargo-fuzz`); nightly features are enabled with
# RUSTC_BOOTSTRAP=1 on the stable toolchain.
set -eu
RUNS="${1:-200000}"
cd "$(dirname "$0")"
command -v cargo-fuzz >/dev/null 2>&1 || { echo "cargo-fuzz is not installed: cargo install cargo-fuzz" >&2; exit 1; }
export RUSTC_BOOTSTRAP=1
cargo fuzz build
for t in $(cargo fuzz list); do
    mkdir -p "corpus/$t"
    echo "== $t: $RUNS runs"
    cargo fuzz run "$t" "corpus/$t" -- -runs="$RUNS" -max_len=8192 -max_total_time=600
done
