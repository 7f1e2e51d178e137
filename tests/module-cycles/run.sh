#!/usr/bin/env bash
# Tests of tests/module-cycles.py on small fixture crates: each must pass or fail as stated, and a
# failing one must name the modules and the file:line of the imports that close its cycle.
set -euo pipefail
cd "$(dirname "$0")"
check=../module-cycles.py
fail=0

# expect NAME WANT_RC [--use-only] -- PATTERN...: runs the checker on NAME/src/lib.rs and checks
# its exit status and that every PATTERN (a fixed string) is in its output.
expect() {
  local name=$1 want=$2 flags=()
  shift 2
  while [ "$1" != -- ]; do flags+=("$1"); shift; done
  shift
  local out rc=0
  out=$(python3 "$check" "${flags[@]}" "$name/src/lib.rs" 2>&1) || rc=$?
  if [ "$rc" != "$want" ]; then
    printf 'FAIL %s %s: exit %s, want %s\n%s\n' "$name" "${flags[*]}" "$rc" "$want" "$out"
    fail=1
    return
  fi
  local p
  for p in "$@"; do
    if ! grep -qF -- "$p" <<<"$out"; then
      printf 'FAIL %s %s: output lacks %q\n%s\n' "$name" "${flags[*]}" "$p" "$out"
      fail=1
      return
    fi
  done
  printf 'ok   %s %s (exit %s)\n' "$name" "${flags[*]}" "$rc"
}

expect acyclic 0 -- "6 modules, 7 import edges, 0 cycle(s)" "module-cycles: no cycles"
expect acyclic 0 --use-only -- "module-cycles: no cycles"
expect cycle 1 -- "cycle of 3 modules: crate::a, crate::b, crate::c" \
  "crate::a -> crate::b  tests/module-cycles/cycle/src/a.rs:1  use crate::b::B;" \
  "crate::b -> crate::c  tests/module-cycles/cycle/src/b.rs:3  use super::c::{ C, };" \
  "crate::c -> crate::a  tests/module-cycles/cycle/src/c.rs:5  pub use crate::a::A as AliasOfA;" \
  "crate::c -> crate::a  tests/module-cycles/cycle/src/c.rs:2  (path) pub fn c(a: crate::a::A) -> crate::a::A {"
expect cycle 1 --use-only -- "cycle of 3 modules"
expect pathcycle 1 -- "pair crate::x <-> crate::y" \
  "crate::x -> crate::y  tests/module-cycles/pathcycle/src/lib.rs:4  (path) crate::y::g()" \
  "crate::y -> crate::x  tests/module-cycles/pathcycle/src/lib.rs:8  use super::x;"
expect pathcycle 0 --use-only -- "module-cycles: no cycles"
expect nested 1 -- "pair crate::a::b <-> crate::c" \
  "crate::a::b -> crate::c  tests/module-cycles/nested/src/a/b.rs:1  use super::super::c::C;" \
  "crate::c -> crate::a::b  tests/module-cycles/nested/src/c.rs:1  use crate::{a::{b::{self}}, c as _};"
expect parentchild 1 -- "pair crate::p <-> crate::p::child" \
  "crate::p -> crate::p::child  tests/module-cycles/parentchild/src/p/mod.rs:2  pub use child::Thing;" \
  "crate::p::child -> crate::p  tests/module-cycles/parentchild/src/p/child.rs:1  use super::PError;"

# A missing module file is a parse error (exit 2), not a silent pass.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/src"
echo 'mod gone;' >"$tmp/src/lib.rs"
rc=0
python3 "$check" "$tmp/src/lib.rs" >/dev/null 2>&1 || rc=$?
if [ "$rc" = 2 ]; then echo "ok   missing module file (exit 2)"; else echo "FAIL missing module file: exit $rc, want 2"; fail=1; fi

exit "$fail"
