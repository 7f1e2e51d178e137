#!/usr/bin/env bash
# No test helper is compiled into the ipvs-herald binary: no workspace library is built with
# its `testing` feature (the exporter's fixture and exposition oracles, the announcer's BGP test
# utilities), herald-test-support is not in the build, and neither the libraries linked into the
# binary nor the binary hold a symbol of those modules. Three views of one fact: the resolved
# graph (cargo tree), what cargo really built (its artifact messages) and what it produced (nm).
#
# Arguments go to `cargo build` and `cargo tree`: tests/package.sh passes `--release`; with
# `--features herald-exporter/testing` the check must fail (that is how it was tried).
set -euo pipefail
cd "$(dirname "$0")/.."

fail() {
  echo "tests/no-test-helpers.sh: FAIL: $*" >&2
  exit 1
}
# Every finding is reported before the script fails.
problems=0
problem() {
  echo "tests/no-test-helpers.sh: FAIL: $*" >&2
  problems=$((problems + 1))
}
# Module paths of the test helpers, as they appear in demangled symbols.
helpers='herald_exporter::fixture::|herald_exporter::exposition::oracle::|herald_announcer::bgp::testutil::|herald_test_support::'

tree_args=()
for a in "$@"; do
  # cargo tree has no profile: the graph is the same for every profile.
  [ "$a" = --release ] || tree_args+=("$a")
done
# Every package of the binary's normal build with the features it is built with.
tree=$(cargo tree --locked -p ipvs-herald -e normal --prefix none -f '{p} features=[{f}]' "${tree_args[@]}")
if found=$(grep -E 'features=\[([^]]*,)?testing[],]|^herald-test-support ' <<<"$tree"); then
  problem "the binary's dependency graph has test helpers: $(sort -u <<<"$found" | tr '\n' ' ')"
fi

# What cargo built for the binary: the features of every workspace library and the files.
mapfile -t built < <(cargo build --locked -p ipvs-herald --message-format=json "$@" |
  python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") != "compiler-artifact" or not m["package_id"].startswith("path+file:"):
        continue
    name = m["target"]["name"]
    if "testing" in m["features"] or name == "herald_test_support":
        print("TESTING " + name + " " + ",".join(m["features"]))
    for f in m["filenames"]:
        if f.endswith(".rlib") or (m.get("executable") and f == m["executable"]):
            print("FILE " + f)
')
[ "${#built[@]}" -gt 0 ] || fail "cargo build reported no workspace artifact"
files=()
for b in "${built[@]}"; do
  case "$b" in
    TESTING\ *) problem "built with test helpers: ${b#TESTING }" ;;
    FILE\ *) files+=("${b#FILE }") ;;
  esac
done
grep -q '/ipvs-herald$' <<<"$(printf '%s\n' "${files[@]}")" || fail "cargo built no ipvs-herald binary"

for f in "${files[@]}"; do
  # An rlib also holds its metadata, which nm does not read: its objects are listed all the same.
  syms=$(nm -C --defined-only "$f" 2>/dev/null || true)
  [ -n "$syms" ] || fail "nm finds no symbol in $f"
  if found=$(grep -E "$helpers" <<<"$syms"); then
    problem "$f holds $(wc -l <<<"$found") test-helper symbols, e.g. $(head -n 2 <<<"$found")"
  fi
done
[ "$problems" = 0 ] || exit 1
echo "no test helper: no testing feature and no herald-test-support in the graph or the build; ${#files[@]} artifacts without their symbols"
