#!/usr/bin/env bash
# Builds the Debian package target/debian/ipvs-herald_<version>-1_<arch>.deb (and its debug
# symbols, ipvs-herald-dbgsym_<version>-1_<arch>.ddeb) and prints the path of the .deb as the
# last line of stdout.
#
# Steps: a release build of the binary; the man pages and the bash, zsh and fish completions
# rendered by that binary (`ipvs-herald generate`, from the same clap definitions as --help) into
# <target>/release/generated/; then `cargo deb --no-build`, which packs what
# [package.metadata.deb] in Cargo.toml lists. Installs cargo-deb first when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo deb --version >/dev/null 2>&1; then
  cargo install cargo-deb --locked
fi

cargo build --locked --release -p ipvs-herald

# The real target directory (CARGO_TARGET_DIR or build.target-dir may move it); cargo-deb maps
# the `target/release/` of the asset list onto the same directory.
target_dir=$(cargo metadata --locked --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
bin="$target_dir/release/ipvs-herald"
generated="$target_dir/release/generated"
rm -rf "$generated"
"$bin" generate man "$generated/man" >/dev/null
# Debian policy: man pages gzipped, without name or timestamp (as dh_compress does).
gzip -9n "$generated"/man/*.8
for shell in bash zsh fish; do
  "$bin" generate completions "$shell" "$generated/completions" >/dev/null
done

out=$(cargo deb -p ipvs-herald --locked --no-build)
printf '%s\n' "$out" | grep -v '\.deb$' || true
printf '%s\n' "$out" | grep '\.deb$'
