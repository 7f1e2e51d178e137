#!/usr/bin/env bash
# The Debian package end to end, on this machine: build it (packaging/deb.sh), check that its
# release binary holds no test helper (tests/no-test-helpers.sh), install it with dpkg -i, run
# what it installed (--version, check-config of the packaged configuration, the man pages
# through man, the completions, systemd-analyze verify of the unit), remove it (dpkg -r:
# conffile kept), purge it (dpkg -P), and check that none of its files is left.
#
# Needs root (dpkg). Fails loudly on every step. Leaves the machine as it found it: a file the
# package would overwrite that is not the package's (a hand-installed /usr/sbin/ipvs-herald, an
# edited /etc/ipvs-herald/ipvs-herald.toml) is saved first and put back at the end, on failure
# too. An ipvs-herald package that is already installed is replaced and, at the end, gone (its
# configuration is put back); a running ipvs-herald.service is never touched: the script refuses.
set -euo pipefail
cd "$(dirname "$0")/.."
unset IPVS_HERALD_CONFIG IPVS_HERALD_LOG

pkg=ipvs-herald
conf=/etc/ipvs-herald/ipvs-herald.toml
unit=/usr/lib/systemd/system/ipvs-herald.service

step() { printf '\n--- package: %s (%s)\n' "$*" "$(date -u +%H:%M:%S)"; }
fail() {
  echo "tests/package.sh: FAIL: $*" >&2
  exit 1
}

trap 'echo "tests/package.sh: FAIL: line $LINENO: $BASH_COMMAND" >&2' ERR

[ "$(id -u)" = 0 ] || fail "must run as root (dpkg -i)"
for cmd in dpkg dpkg-deb dpkg-query man systemd-analyze gzip python3 readelf nm; do
  command -v "$cmd" >/dev/null || fail "$cmd is missing (tests/deps.sh installs it)"
done
if [ -d /run/systemd/system ] && systemctl is-active --quiet ipvs-herald.service; then
  fail "ipvs-herald.service is running on this machine; this test would stop it. Stop it first."
fi

step "build (packaging/deb.sh: release build, man pages, completions, cargo deb)"
start=$(date +%s)
deb=$(bash packaging/deb.sh | tail -n 1)
[ -f "$deb" ] || fail "packaging/deb.sh printed '$deb', which is not a file"
echo "built $deb in $(($(date +%s) - start)) s"
version=$(dpkg-deb -f "$deb" Version)
[ "${version%-*}" = "$(sed -n '0,/^version = /s/^version = "\(.*\)"$/\1/p' Cargo.toml)" ] ||
  fail "package version $version does not match Cargo.toml"

step "no test helper in the release binary (tests/no-test-helpers.sh: cargo tree, build features, nm)"
# The same release build packaging/deb.sh just made (cargo finds it fresh): no `testing` feature,
# no herald-test-support, no symbol of a test-helper module in the binary or its libraries.
bash tests/no-test-helpers.sh --release

# Every regular file and symlink the package ships, as absolute paths.
mapfile -t files < <(dpkg-deb --fsys-tarfile "$deb" | tar -t | sed -n 's|^\./|/|; /[^/]$/p')
[ "${#files[@]}" -gt 20 ] || fail "the package holds only ${#files[@]} files"

# Save what we would overwrite or purge and is not ours to delete: files at the package's paths
# that no installed ipvs-herald package owns, and anything under /etc/ipvs-herald.
backup=$(mktemp -d /tmp/ipvs-herald-package-backup.XXXXXX)
previous=$(dpkg-query -W -f='${db:Status-Status} ${Version}' "$pkg" 2>/dev/null || true)
case "$previous" in
  installed*) echo "NOTE: $pkg ${previous#installed } is installed; it is replaced now and removed at the end" ;;
esac
for f in "${files[@]}"; do
  [ -e "$f" ] || [ -L "$f" ] || continue
  owner=$(dpkg-query -S "$f" 2>/dev/null | cut -d: -f1 || true)
  if [ "$owner" != "$pkg" ] || [[ "$f" == /etc/* ]]; then
    mkdir -p "$backup$(dirname "$f")"
    cp -a "$f" "$backup$f"
    echo "saved $f (restored at the end)"
  fi
done
if [ -d /etc/ipvs-herald ]; then
  mkdir -p "$backup/etc"
  cp -a /etc/ipvs-herald "$backup/etc/"
fi

# The mode and owner of every directory the package puts files in, and of their parents: the
# restore below must leave them as they were.
mapfile -t dirs < <(for f in "${files[@]}"; do
  d=$(dirname "$f")
  while [ "$d" != / ]; do
    echo "$d"
    d=$(dirname "$d")
  done
done | sort -u)
dirs=(/ "${dirs[@]}")
dir_modes() {
  local d
  for d in "${dirs[@]}"; do
    [ -d "$d" ] && stat -c '%a %U:%G %n' "$d"
  done
  return 0
}
modes_before=$(dir_modes)

cleanup() {
  local rc=$?
  local state rel
  state=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || echo not-installed)
  if [ "$state" != not-installed ]; then
    dpkg -P "$pkg" >/dev/null 2>&1 || echo "tests/package.sh: could not purge $pkg" >&2
  fi
  # File by file: copying the backup tree onto / would give / the backup directory's mode.
  while IFS= read -r -d '' rel; do
    mkdir -p "$(dirname "${rel#.}")"
    cp -a "$backup/$rel" "${rel#.}"
    echo "restored ${rel#.}"
  done < <(cd "$backup" && find . -mindepth 1 ! -type d -print0)
  if [ -d "$backup/etc/ipvs-herald" ]; then
    mkdir -p /etc/ipvs-herald
    chmod --reference="$backup/etc/ipvs-herald" /etc/ipvs-herald
    chown --reference="$backup/etc/ipvs-herald" /etc/ipvs-herald
  fi
  rm -rf "$backup"
  # Compared where the directory is still there (the package's own go with the purge).
  local still
  still=$(while read -r mode owner d; do
    if [ -d "$d" ]; then echo "$mode $owner $d"; fi
  done <<<"$modes_before")
  if [ "$(dir_modes)" != "$still" ]; then
    echo "tests/package.sh: FAIL: directory modes changed:" >&2
    diff <(echo "$still") <(dir_modes) >&2 || true
    rc=1
  fi
  case "$previous" in
    installed*) echo "NOTE: $pkg ${previous#installed } was installed before this test and is now removed (its configuration is kept); reinstall it" ;;
  esac
  exit "$rc"
}
trap cleanup EXIT

step "dpkg -i"
if [[ "$previous" != not-installed* ]] && [ -n "$previous" ]; then
  # A clean install is what is checked: dpkg -i over the same version would keep an edited
  # conffile (saved above) whatever --force-conf* says.
  dpkg -P "$pkg" </dev/null
fi
# --force-confnew: install the packaged configuration even over a file from an earlier install
# (saved above), so that what is checked is what ships; no prompt, whatever the terminal.
# --path-include: a minimised image's dpkg.cfg.d may exclude /usr/share/man and /usr/share/doc;
# command-line options come after those files, so everything is installed.
dpkg -i --force-confnew --path-include='/*' "$deb" </dev/null
[ "$(dpkg-query -W -f='${db:Status-Status} ${Version}' "$pkg")" = "installed $version" ] ||
  fail "dpkg does not list $pkg $version as installed"
mapfile -t listed < <(dpkg -L "$pkg")
for f in "${files[@]}"; do
  { [ -e "$f" ] || [ -L "$f" ]; } || fail "$f is in the package but not on disk"
done
echo "${#files[@]} files installed"

step "the binary"
[ -x /usr/sbin/ipvs-herald ] || fail "/usr/sbin/ipvs-herald is not an executable"
out=$(/usr/sbin/ipvs-herald --version)
[ "$out" = "ipvs-herald ${version%-*}" ] || fail "--version says '$out'"
echo "$out"
# Debug symbols belong in the -dbgsym .ddeb, not in the 7 MB binary.
# (grep reads a here-string: grep -q closing a pipe early fails the pipeline under pipefail.)
if grep -qE '\.debug_(info|line) ' <<<"$(readelf -S --wide /usr/sbin/ipvs-herald)"; then
  fail "/usr/sbin/ipvs-herald carries debug sections"
fi

step "the configuration: conffile, the documented defaults, check-config"
grep -q "^ $conf " <<<"$(dpkg-query -W -f='${Conffiles}\n' "$pkg")" || fail "$conf is not a conffile"
cmp "$conf" config/ipvs-herald.toml || fail "$conf differs from config/ipvs-herald.toml"
out=$(/usr/sbin/ipvs-herald --config "$conf" check-config) || fail "check-config of $conf failed"
grep -q '^Config {' <<<"$out" || fail "check-config printed no configuration: $out"
# The same command must refuse a bad file with 64, or the check above proves nothing.
bad=$(mktemp /tmp/ipvs-herald-bad.XXXXXX.toml)
printf '[log]\nlevel = "info"\nno_such_key = 1\n' >"$bad"
rc=0
/usr/sbin/ipvs-herald --config "$bad" check-config >/dev/null 2>&1 || rc=$?
rm -f "$bad"
[ "$rc" = 64 ] || fail "check-config of a file with an unknown key exited $rc, not 64"
echo "check-config: $conf valid (exit 0), an unknown key refused (exit 64)"

step "the man pages (man -l, man -w)"
page=/usr/share/man/man8/ipvs-herald.8.gz
[ "$(man -w ipvs-herald)" = "$page" ] || fail "man -w ipvs-herald: $(man -w ipvs-herald 2>&1)"
text=$(MANWIDTH=120 man -l "$page" 2>"$backup.manerr")
if [ -s "$backup.manerr" ]; then
  cat "$backup.manerr" >&2
  fail "man -l $page printed warnings"
fi
# groff's own warnings (bad requests, escapes) are off by default: ask for them.
MANWIDTH=120 man --warnings -l "$page" >/dev/null 2>"$backup.manerr"
[ -s "$backup.manerr" ] && { cat "$backup.manerr" >&2; fail "groff warns about $page"; }
rm -f "$backup.manerr"
for heading in NAME SYNOPSIS DESCRIPTION OPTIONS COMMANDS SIGNALS FAULTS "EXIT STATUS" FILES ENVIRONMENT "SEE ALSO"; do
  grep -q "^$heading\$" <<<"$text" || fail "the man page has no $heading section"
done
# Every command --help lists (but clap's own `help`) has an entry and a page of its own.
mapfile -t commands < <(/usr/sbin/ipvs-herald --help | sed -n '/^Commands:/,/^$/p' |
  sed -n 's/^  \([a-z][a-z-]*\) .*/\1/p' | grep -vx help)
[ "${#commands[@]}" -ge 8 ] || fail "--help lists only ${#commands[@]} commands: ${commands[*]}"
for c in "${commands[@]}"; do
  grep -q "^ *ipvs-herald $c\$" <<<"$text" || fail "the man page has no entry for '$c'"
  sub=$(man -w "ipvs-herald-$c") || fail "no man page ipvs-herald-$c(8)"
  # (a justified synopsis line may stretch the spaces)
  grep -qE "^ *ipvs-herald +$c( |\$)" <<<"$(MANWIDTH=120 man -l "$sub")" || fail "$sub has no synopsis"
done
status=$(sed -n '/^EXIT STATUS$/,/^[A-Z]/p' <<<"$text")
for s in 0 75 1 64 SIGABRT; do
  grep -q "^ *$s " <<<"$status" || fail "EXIT STATUS does not list $s: $status"
done
echo "man: ${#commands[@]} commands (${commands[*]}), each with its page; EXIT STATUS lists 0, 75, 1, 64, SIGABRT"

step "shell completions"
bash_c=/usr/share/bash-completion/completions/ipvs-herald
zsh_c=/usr/share/zsh/vendor-completions/_ipvs-herald
fish_c=/usr/share/fish/vendor_completions.d/ipvs-herald.fish
for f in "$bash_c" "$zsh_c" "$fish_c"; do
  [ -s "$f" ] || fail "$f is missing or empty"
  for c in "${commands[@]}"; do
    grep -q -- "$c" "$f" || fail "$f does not complete '$c'"
  done
done
bash -n "$bash_c" || fail "$bash_c is not valid bash"
bash -c "source $bash_c && complete -p ipvs-herald" >/dev/null ||
  fail "sourcing $bash_c registers no completion for ipvs-herald"
[[ "$(head -n 1 "$zsh_c")" == "#compdef ipvs-herald" ]] || fail "$zsh_c has no #compdef line"
echo "bash, zsh and fish completions present and complete every command; bash parses and registers"

step "systemd unit (systemd-analyze verify)"
[ -f "$unit" ] || fail "$unit is missing"
[ /lib/systemd/system/ipvs-herald.service -ef "$unit" ] ||
  fail "/lib/systemd/system/ipvs-herald.service is not $unit (no merged /usr?)"
grep -q "^ExecStart=/usr/sbin/ipvs-herald --config $conf run\$" "$unit" ||
  fail "$unit does not run /usr/sbin/ipvs-herald with $conf"
# Checks the syntax, that the Exec binaries exist and are executable, and that the man pages of
# Documentation= (ipvs-herald(8), ipvsadm(8)) are installed.
systemd-analyze verify "$unit"
echo "systemd-analyze verify: clean"
# The documented drop-in for another network namespace, installed as its header says: the unit
# with it must verify, and systemd must have nothing to say about the drop-in (an unknown or
# misspelt key is only a warning to verify, so its output is read). Whether setns is then
# allowed needs a running systemd: `cargo test --test lab_systemd` boots one (tests/README.md).
dropin=/usr/share/doc/ipvs-herald/examples/ipvs-herald-netns.conf
[ -s "$dropin" ] || fail "$dropin is missing"
dropin_dir=/etc/systemd/system/ipvs-herald.service.d
[ ! -e "$dropin_dir/netns.conf" ] || fail "$dropin_dir/netns.conf exists already; this test would overwrite it"
mkdir -p "$dropin_dir"
cp "$dropin" "$dropin_dir/netns.conf"
verify_out=$(systemd-analyze verify "$unit" 2>&1) && verify_rc=0 || verify_rc=$?
rm -f "$dropin_dir/netns.conf"
rmdir "$dropin_dir" 2>/dev/null || true
[ "$verify_rc" = 0 ] || fail "the unit with the netns drop-in does not verify: $verify_out"
if grep -q 'netns.conf' <<<"$verify_out"; then
  fail "systemd-analyze verify warns about the netns drop-in: $verify_out"
fi
echo "systemd-analyze verify with the netns drop-in: clean"

step "docs"
for f in /usr/share/doc/ipvs-herald/README.md /usr/share/doc/ipvs-herald/copyright \
  /usr/share/doc/ipvs-herald/status-json.md /usr/share/doc/ipvs-herald/dump-json.md \
  /usr/share/doc/ipvs-herald/examples/all-active.toml; do
  [ -s "$f" ] || fail "$f is missing"
done
for f in /usr/share/doc/ipvs-herald/examples/*.toml; do
  /usr/sbin/ipvs-herald --config "$f" check-config >/dev/null || fail "example $f does not pass check-config"
done
echo "README, copyright, examples present; every example passes check-config"

step "dpkg -r (the conffile stays)"
dpkg -r "$pkg" </dev/null
[ ! -e /usr/sbin/ipvs-herald ] || fail "/usr/sbin/ipvs-herald is still there after dpkg -r"
[ -f "$conf" ] || fail "dpkg -r removed the conffile $conf (only a purge may)"
for f in "${files[@]}"; do
  [ "$f" = "$conf" ] && continue
  { [ ! -e "$f" ] && [ ! -L "$f" ]; } || fail "$f is still there after dpkg -r"
done

step "dpkg -P (nothing is left)"
dpkg -P "$pkg" </dev/null
state=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || echo not-installed)
[ "$state" = not-installed ] || fail "dpkg still knows $pkg after the purge: $state"
for f in "${files[@]}" "${listed[@]}" /etc/systemd/system/ipvs-herald.service \
  /var/lib/systemd/deb-systemd-helper-masked/ipvs-herald.service \
  /var/lib/systemd/deb-systemd-helper-enabled/ipvs-herald.service.dsh-also; do
  [[ "$f" == */ ]] && continue
  if [ -d "$f" ] && [ ! -L "$f" ]; then
    # A directory may stay for what else is in it (/usr/share/man/man8, or an operator's
    # /etc/ipvs-herald/maintenance saved above); the package's own stay only with such files.
    case "$f" in
      /etc/ipvs-herald | /usr/share/doc/ipvs-herald*)
        while IFS= read -r left; do
          [ -e "$backup$left" ] || fail "$left is left after the purge"
        done < <(find "$f" ! -type d)
        [ -n "$(ls -A "$f")" ] || fail "the empty directory $f is left after the purge"
        ;;
    esac
    continue
  fi
  { [ ! -e "$f" ] && [ ! -L "$f" ]; } || fail "$f is left after the purge"
done
echo "purged: no file of the package, no /etc/ipvs-herald, no unit mask left"

step "passed ($(($(date +%s) - start)) s)"
