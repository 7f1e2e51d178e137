#!/usr/bin/env bash
# The fast stage: what any contributor runs before pushing, without root, network namespaces,
# BIRD/FRR/GoBGP or QEMU, in minutes (tests/README.md, "Fast stage", has the times). It is also
# the first test stage of tests/all.sh (after tests/deps.sh).
#
# Checks, each loud on failure (set -e): the module-cycle check (tested on its fixtures first),
# formatting, clippy with warnings denied on every target (unwrap/expect denied outside tests),
# the unit tests of every crate (library and binary targets, and doctests: none of them needs
# root), the documentation with rustdoc warnings denied, and cargo-deny's licences, bans and
# sources (not advisories: the advisory database cannot be fetched from every machine).
# Needs: a Rust toolchain with rustfmt and clippy, python3, and cargo-deny (installed with
# `cargo install --locked cargo-deny` when missing: a one-time build of about 7 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

start=$(date +%s)
stage_start=$start
stage() {
  local now
  now=$(date +%s)
  if [ -n "${stage_name:-}" ]; then
    printf -- '----- %s: %d s\n' "$stage_name" "$((now - stage_start))"
  fi
  stage_name="$*"
  stage_start=$now
  printf '\n===== fast: %s (%s) =====\n' "$*" "$(date -u +%H:%M:%S)"
}

for tool in python3 cargo rustfmt; do
  command -v "$tool" >/dev/null 2>&1 || { echo "tests/fast.sh: $tool is missing" >&2; exit 1; }
done

stage "module cycles: the checker's own fixtures, then every crate (tests/module-cycles.py)"
bash tests/module-cycles/run.sh
python3 tests/module-cycles.py

stage "rustfmt"
cargo fmt --all -- --check

stage "clippy (every target, warnings denied)"
cargo clippy --workspace --all-targets --locked -- -D warnings
# The stage-only test binaries (`test = false` in Cargo.toml) are outside --all-targets; a
# break there would otherwise surface only in their own, late stage.
cargo clippy -p ipvs-herald --locked --test faults --test soak --test lab --test lab_e2e \
    --test lab_exporter --test lab_cluster --test lab_systemd -- -D warnings

stage "unit tests (library and binary targets, doctests; no root)"
cargo test --workspace --locked --lib --bins
python3 shared/tests/vectors/oracle.py --check  # vector expectations = the independent decoder's
cargo test --workspace --locked --doc

stage "rustdoc (warnings denied)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked

stage "cargo deny: licenses, bans, sources (deny.toml)"
if ! cargo deny --version >/dev/null 2>&1; then
  echo "cargo-deny is missing: installing it (cargo install --locked cargo-deny, once)"
  cargo install --locked cargo-deny
fi
cargo deny --locked check licenses bans sources

printf -- '----- %s: %d s\n' "$stage_name" "$(($(date +%s) - stage_start))"
printf 'tests/fast.sh: all checks passed in %d s\n' "$(($(date +%s) - start))"
