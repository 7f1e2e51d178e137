# shellcheck shell=bash
#
# Host-side helpers for tests/lab/lab.sh: fetching packages, building the initramfs, booting QEMU.
# Sourced, not executed. Every function fails loudly (non-zero exit, message on stderr) when
# something it needs is missing; nothing is skipped silently.

LAB_KERNEL_META=${LAB_KERNEL_META:-linux-image-cloud-amd64}
# Modules the guest loads (dependencies are resolved from each module's .modinfo `depends=`).
LAB_MODULES=${LAB_MODULES:-"ip_vs ip_vs_rr ip_vs_wrr ip_vs_lc ip_vs_wlc ip_vs_lblc ip_vs_lblcr ip_vs_dh ip_vs_sh ip_vs_sed ip_vs_nq ip_vs_mh ip_vs_fo ip_vs_ovf ip_vs_pe_sip veth dummy ipip virtio_pci virtio_blk virtio_net"}
# Modules a kernel package may not ship (ip_vs_twos: only Debian's 6.12; 5.10 has no such
# scheduler, Debian's 6.1 leaves CONFIG_IP_VS_TWOS unset): loaded when the kernel package has
# them, otherwise named in the guest's /lib/modules/absent (results: modules-absent.txt), so the
# tests assert their absence by name instead of skipping.
LAB_OPTIONAL_MODULES=${LAB_OPTIONAL_MODULES:-"ip_vs_twos"}
# Host tools the lab needs, as `command:debian-package`.
LAB_HOST_TOOLS="qemu-system-x86_64 busybox ipvsadm ip cpio dpkg-deb modinfo gzip tar timeout"

die() {
    echo "lab: error: $*" >&2
    exit 1
}

log() {
    echo "lab: $*" >&2
}

# Install missing host tools (idempotent) through tests/deps.sh, the suite's one table of
# commands and their Debian packages.
lab_install_host_tools() {
    bash "$REPO_DIR/tests/deps.sh" $LAB_HOST_TOOLS >&2 || die "tests/deps.sh could not install the lab's host tools ($LAB_HOST_TOOLS)"
}

# The Debian suite whose kernel LAB_KERNEL names; empty for 6.1, the host's own bookworm (the
# system's apt configuration resolves it).
lab_kernel_suite() {
    case "${LAB_KERNEL:-6.1}" in
    6.1) echo "" ;;
    5.10) echo bullseye ;;
    6.12) echo trixie ;;
    *) die "LAB_KERNEL=$LAB_KERNEL: unknown kernel (5.10, 6.1 or 6.12)" ;;
    esac
}

# apt-get/apt-cache with a private configuration for SUITE under target/lab/apt-SUITE: its own
# sources list, an empty sources.list.d, its own lists, package cache and an empty dpkg status,
# so that the system's apt sources and state are never touched. Usage: lab_apt SUITE CMD ARGS...
lab_apt() {
    local suite=$1 cmd=$2
    shift 2
    local d="$LAB_TARGET/lab/apt-$suite"
    mkdir -p "$d/parts" "$d/state/lists/partial" "$d/cache/archives/partial"
    if [ ! -e "$d/sources.list" ]; then
        echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $suite main" >"$d/sources.list"
    fi
    [ -e "$d/state/status" ] || : >"$d/state/status"
    "$cmd" -o Dir::Etc::SourceList="$d/sources.list" -o Dir::Etc::SourceParts="$d/parts" \
        -o Dir::State="$d/state" -o Dir::State::status="$d/state/status" -o Dir::Cache="$d/cache" \
        -o APT::Architecture=amd64 -o APT::Sandbox::User=root "$@"
}

# The concrete kernel package behind the cloud meta-package, e.g. linux-image-6.1.0-56-cloud-amd64
# (for LAB_KERNEL=5.10/6.12, from the private apt configuration of bullseye/trixie; its
# `apt-get update` runs once, then the lists are reused).
lab_kernel_package() {
    local pkg suite
    suite=$(lab_kernel_suite) || exit 1
    if [ -z "$suite" ]; then
        pkg=$(apt-cache depends "$LAB_KERNEL_META" 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}')
        [ -n "$pkg" ] || die "cannot resolve the kernel package behind $LAB_KERNEL_META (apt-cache depends printed no linux-image dependency; run apt-get update?)"
    else
        if ! ls "$LAB_TARGET/lab/apt-$suite/state/lists/"*_Packages* >/dev/null 2>&1; then
            log "apt-get update of $suite (private configuration under $LAB_TARGET/lab/apt-$suite)"
            lab_apt "$suite" apt-get -q update >&2 || die "apt-get update of $suite failed"
        fi
        pkg=$(lab_apt "$suite" apt-cache depends "$LAB_KERNEL_META" 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}')
        [ -n "$pkg" ] || die "cannot resolve the kernel package behind $LAB_KERNEL_META in $suite"
    fi
    echo "$pkg"
}

# Download the kernel deb into the cache and unpack it (idempotent).
lab_fetch() {
    lab_install_host_tools
    mkdir -p "$LAB_CACHE"
    local pkg deb
    pkg=$(lab_kernel_package)
    deb=$(ls "$LAB_CACHE"/"${pkg}"_*.deb 2>/dev/null | head -n1)
    if [ -z "$deb" ]; then
        log "downloading $pkg"
        if [ -n "$(lab_kernel_suite)" ]; then
            (cd "$LAB_CACHE" && lab_apt "$(lab_kernel_suite)" apt-get download "$pkg" >&2) ||
                die "apt-get download $pkg ($(lab_kernel_suite)) failed"
        else
            (cd "$LAB_CACHE" && apt-get download "$pkg" >&2) || {
                apt-get update >&2 || die "apt-get update failed"
                (cd "$LAB_CACHE" && apt-get download "$pkg" >&2) || die "apt-get download $pkg failed"
            }
        fi
        deb=$(ls "$LAB_CACHE"/"${pkg}"_*.deb 2>/dev/null | head -n1)
        [ -n "$deb" ] || die "apt-get download $pkg produced no .deb in $LAB_CACHE"
    fi
    local root="$LAB_CACHE/kernel-$pkg"
    if [ ! -e "$root/.unpacked" ]; then
        rm -rf "$root"
        mkdir -p "$root"
        dpkg-deb -x "$deb" "$root" || die "cannot unpack $deb"
        touch "$root/.unpacked"
    fi
    ln -sfn "kernel-$pkg" "$LAB_CACHE/kernel"
    lab_kernel_image >/dev/null
    log "kernel: $(lab_kernel_image)"
}

lab_kernel_image() {
    local img
    img=$(ls "$LAB_CACHE"/kernel/boot/vmlinuz-* 2>/dev/null | head -n1)
    [ -n "$img" ] || die "no kernel image under $LAB_CACHE/kernel/boot (run: lab.sh fetch)"
    echo "$img"
}

lab_modules_dir() {
    local d
    # trixie's packages install under /usr/lib/modules (merged /usr), older ones under /lib/modules.
    d=$(ls -d "$LAB_CACHE"/kernel/lib/modules/*/kernel "$LAB_CACHE"/kernel/usr/lib/modules/*/kernel 2>/dev/null | head -n1)
    [ -n "$d" ] || die "no modules under $LAB_CACHE/kernel/{usr/,}lib/modules (run: lab.sh fetch)"
    echo "$d"
}

# Path of module NAME (with - and _ equivalent) under the unpacked kernel; handles .ko, .ko.xz,
# .ko.zst, .ko.gz.
lab_module_path() {
    local name=$1 dir alt f
    dir=$(lab_modules_dir)
    alt=$(echo "$name" | tr '_' '-')
    for f in $(find "$dir" \( -name "$name.ko*" -o -name "$alt.ko*" \) 2>/dev/null); do
        echo "$f"
        return 0
    done
    return 1
}

# Whether NAME is built into the kernel image (modules.builtin lists kernel/.../NAME.ko); - and
# _ are equivalent.
lab_module_builtin() {
    local name=$1 dir
    dir=$(lab_modules_dir)
    tr '-' '_' <"$dir/../modules.builtin" | grep -q "/$(echo "$name" | tr '-' '_')\.ko\$"
}

# Print NAME's dependencies first, then NAME (depth-first, each once). $LAB_SEEN holds visited.
# A module built into the kernel is not printed (nothing to load) but named in $LAB_BUILTIN.
lab_module_order() {
    local name=$1 path deps d
    case " $LAB_SEEN " in *" $name "*) return 0 ;; esac
    LAB_SEEN="$LAB_SEEN $name"
    if lab_module_builtin "$name"; then
        LAB_BUILTIN="$LAB_BUILTIN $name"
        return 0
    fi
    path=$(lab_module_path "$name") || die "module $name not found in the kernel package"
    deps=$(modinfo -F depends "$path") || die "modinfo cannot read $path"
    for d in $(echo "$deps" | tr ',' ' '); do
        lab_module_order "$d"
    done
    echo "$name"
}

# Copy a dynamic executable and every library ldd names into the initramfs root.
lab_copy_binary() {
    local bin=$1 root=$2 dest=${3:-/bin} lib
    [ -x "$bin" ] || die "binary $bin is missing or not executable"
    mkdir -p "$root$dest"
    cp -L "$bin" "$root$dest/"
    for lib in $(ldd "$bin" 2>/dev/null | awk '/=> \// {print $3} /^\t\/lib/ {print $1}'); do
        mkdir -p "$root$(dirname "$lib")"
        [ -e "$root$lib" ] || cp -L "$lib" "$root$lib"
    done
}

# The ipvs-herald binary to put in the guest: $LAB_HERALD_BIN, else target/debug/ipvs-herald.
lab_herald_bin() {
    local bin=${LAB_HERALD_BIN:-$LAB_TARGET/debug/ipvs-herald}
    [ -x "$bin" ] || die "ipvs-herald binary $bin not found (cargo build -p ipvs-herald, or set LAB_HERALD_BIN)"
    echo "$bin"
}

# Build the initramfs: busybox, modules in load order, ipvsadm, ip, ipvs-herald, guest scripts.
lab_build() {
    lab_install_host_tools
    [ -e "$LAB_CACHE/kernel/.unpacked" ] || lab_fetch
    local root="$LAB_OUT/initramfs" m path herald
    rm -rf "$root"
    mkdir -p "$root"/{bin,sbin,etc,proc,sys,dev,tmp,run,results,lib/modules,lab,var/www,usr/bin,usr/sbin}
    cp "$(command -v busybox)" "$root/bin/busybox"
    if ldd "$root/bin/busybox" >/dev/null 2>&1; then
        die "$(command -v busybox) is dynamically linked; install busybox-static"
    fi
    for m in $("$root/bin/busybox" --list); do
        [ -e "$root/bin/$m" ] || ln -s busybox "$root/bin/$m"
    done
    LAB_SEEN=""
    LAB_BUILTIN=""
    : >"$root/lib/modules/order"
    : >"$root/lib/modules/absent"
    for m in $LAB_MODULES; do
        lab_module_order "$m" >"$root/lib/modules/order.part" || die "cannot order module $m"
        cat "$root/lib/modules/order.part" >>"$root/lib/modules/order"
    done
    # Optional modules: loaded when this kernel ships them, otherwise named as absent.
    for m in $LAB_OPTIONAL_MODULES; do
        if lab_module_path "$m" >/dev/null || lab_module_builtin "$m"; then
            lab_module_order "$m" >"$root/lib/modules/order.part" || die "cannot order module $m"
            cat "$root/lib/modules/order.part" >>"$root/lib/modules/order"
        else
            echo "$m" >>"$root/lib/modules/absent"
        fi
    done
    rm -f "$root/lib/modules/order.part"
    # shellcheck disable=SC2086
    printf '%s\n' $LAB_BUILTIN >"$root/lib/modules/builtin"
    while read -r m; do
        path=$(lab_module_path "$m")
        case "$path" in
        *.ko) cp "$path" "$root/lib/modules/$m.ko" ;;
        *.ko.xz) xz -dc "$path" >"$root/lib/modules/$m.ko" ;;
        *.ko.zst) zstd -qdc "$path" >"$root/lib/modules/$m.ko" ;;
        *.ko.gz) gzip -dc "$path" >"$root/lib/modules/$m.ko" ;;
        *) die "unknown module format: $path" ;;
        esac
    done <"$root/lib/modules/order"
    lab_copy_binary "$(command -v ipvsadm)" "$root" /sbin
    lab_copy_binary "$(command -v ip)" "$root" /sbin
    rm -f "$root/bin/ip" "$root/bin/ipvsadm"
    herald=$(lab_herald_bin)
    lab_copy_binary "$herald" "$root" /usr/bin
    # Debug info is most of a debug build's size; the guest does not need it (faster boot).
    if command -v strip >/dev/null 2>&1; then
        strip --strip-debug "$root/usr/bin/$(basename "$herald")" || die "strip failed on the guest copy of $herald"
    fi
    for extra in $LAB_EXTRA_BINARIES; do
        lab_copy_binary "$extra" "$root" /usr/bin
    done
    for extra in ${LAB_EXTRA_SYSTEMD:-}; do
        lab_copy_binary "$extra" "$root" /lib/systemd
    done
    for tree in ${LAB_EXTRA_TREES:-}; do
        mkdir -p "$root$(dirname "$tree")"
        cp -a "$tree" "$root$tree" || die "cannot copy $tree into the initramfs"
    done
    # SRC=DEST pairs: a host file or directory SRC copied to DEST in the guest.
    for pair in ${LAB_EXTRA_COPY:-}; do
        mkdir -p "$root$(dirname "${pair#*=}")"
        cp -a "${pair%%=*}" "$root${pair#*=}" || die "cannot copy ${pair%%=*} into the initramfs"
    done
    for tree in ${LAB_EXTRA_PRUNE:-}; do
        rm -rf "${root:?}$tree"
    done
    if [ -n "${LAB_HERALD_CONFIG:-}" ]; then
        [ -r "$LAB_HERALD_CONFIG" ] || die "LAB_HERALD_CONFIG=$LAB_HERALD_CONFIG is not readable"
        mkdir -p "$root/etc/ipvs-herald"
        cp "$LAB_HERALD_CONFIG" "$root/etc/ipvs-herald/ipvs-herald.toml"
    fi
    cp "$LAB_DIR/guest/init" "$root/init"
    chmod +x "$root/init"
    cp "$LAB_DIR"/guest/*.sh "$root/lab/"
    if [ -d "$LAB_DIR/e2e" ]; then
        mkdir -p "$root/lab/e2e"
        cp "$LAB_DIR"/e2e/* "$root/lab/e2e/"
    fi
    mkdir -p "$root/lab/cluster"
    cp "$LAB_DIR"/cluster/*.sh "$root/lab/cluster/"
    mkdir -p "$root/lab/systemd"
    cp "$LAB_DIR"/systemd/* "$root/lab/systemd/"
    mkdir -p "$root/lab/scenarios" "$root/lab/exporter"
    cp "$LAB_DIR"/exporter/*.sh "$root/lab/exporter/"
    cp "$LAB_DIR"/scenarios/*.sh "$root/lab/scenarios/"
    echo "<html>lab</html>" >"$root/var/www/index.html"
    (cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$LAB_OUT/initramfs.cpio.gz" ||
        die "cannot write $LAB_OUT/initramfs.cpio.gz"
    log "initramfs: $LAB_OUT/initramfs.cpio.gz ($(du -h "$LAB_OUT/initramfs.cpio.gz" | cut -f1)), modules: $(wc -l <"$root/lib/modules/order"), built in:$LAB_BUILTIN, absent: $(tr '\n' ' ' <"$root/lib/modules/absent")"
}

# Boot the VM once. $1 = mode (run|interactive|bench), rest = extra kernel arguments.
# Results come back as a tar archive the guest writes raw onto a virtio disk.
lab_boot() {
    local mode=$1
    shift
    local kernel initrd disk console rc net
    kernel=$(lab_kernel_image)
    initrd="$LAB_OUT/initramfs.cpio.gz"
    [ -e "$initrd" ] || die "no initramfs (run: lab.sh build)"
    disk="$LAB_OUT/results.img"
    console="$LAB_OUT/console.log"
    rm -f "$disk"
    truncate -s "${LAB_DISK_MB:-256}M" "$disk"
    net="-nic none"
    # no_timer_check: on a starved host, TCG can miss the boot-time IO-APIC timer check and panic.
    local append="console=ttyS0 panic=-1 loglevel=4 no_timer_check herald.mode=$mode $*"
    if [ "$mode" = interactive ]; then
        net="-nic user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:${LAB_HOST_PORT:-9639}-:9639"
        log "interactive: guest exporter forwarded to http://127.0.0.1:${LAB_HOST_PORT:-9639}/metrics; type 'poweroff -f' to leave"
        # shellcheck disable=SC2086
        qemu-system-x86_64 -accel tcg -m "${LAB_MEM_MB:-1024}" -smp "${LAB_SMP:-2}" -nographic -no-reboot \
            -kernel "$kernel" -initrd "$initrd" -append "$append" \
            -drive "file=$disk,format=raw,if=virtio" $net
        return $?
    fi
    if [ "$mode" = serve ]; then
        # The guest's exporter reachable from the host for a Prometheus running there.
        net="-nic user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:${LAB_HOST_PORT:-9639}-:9639"
    fi
    log "booting VM (mode=$mode, timeout ${LAB_TIMEOUT:-900}s, console: $console)"
    # shellcheck disable=SC2086
    timeout --kill-after=10 "${LAB_TIMEOUT:-900}" \
        qemu-system-x86_64 -accel tcg -m "${LAB_MEM_MB:-1024}" -smp "${LAB_SMP:-2}" -display none -no-reboot \
        -serial "file:$console" -monitor none \
        -kernel "$kernel" -initrd "$initrd" -append "$append" \
        -drive "file=$disk,format=raw,if=virtio" $net
    rc=$?
    [ $rc -eq 124 ] && die "VM did not power off within ${LAB_TIMEOUT:-900}s (see $console)"
    [ $rc -eq 0 ] || die "qemu exited with status $rc (see $console)"
    rm -rf "$LAB_OUT/results"
    mkdir -p "$LAB_OUT/results"
    tar -xf "$disk" -C "$LAB_OUT/results" 2>/dev/null ||
        die "the guest wrote no readable results archive (see $console)"
    [ -e "$LAB_OUT/results/DONE" ] || die "the guest did not finish (no DONE marker; see $console)"
    log "results in $LAB_OUT/results"
}

# Host-side preparation for `lab.sh systemd`: the host's systemd (Debian 12's 252: PID 1,
# journald, systemctl, journalctl, their libraries), its unit directory (the targets and slices
# PID 1 expects; units whose binaries are not copied just fail), and the shipped unit and
# netns drop-in, unchanged, for tests/lab/systemd/boot.sh and test.sh to install.
lab_systemd_prepare() {
    bash "$REPO_DIR/tests/deps.sh" systemd-analyze >&2 || die "tests/deps.sh systemd-analyze (the systemd package) failed"
    local b
    for b in /lib/systemd/systemd /lib/systemd/systemd-journald; do
        [ -x "$b" ] || die "$b is missing (the systemd package)"
    done
    LAB_EXTRA_SYSTEMD="/lib/systemd/systemd /lib/systemd/systemd-journald"
    LAB_EXTRA_BINARIES="$LAB_EXTRA_BINARIES $(command -v systemctl) $(command -v journalctl)"
    LAB_EXTRA_TREES="${LAB_EXTRA_TREES:-} /lib/systemd/system"
    LAB_EXTRA_COPY="${LAB_EXTRA_COPY:-} $REPO_DIR/config/ipvs-herald.service=/lab/systemd/ipvs-herald.service $REPO_DIR/config/ipvs-herald-netns.conf=/lab/systemd/ipvs-herald-netns.conf"
}

# Host-side preparation for `lab.sh bench` and `serve`: hping3 (a SYN flood; many UDP source
# ports from one client) goes into the initramfs.
lab_bench_prepare() {
    bash "$REPO_DIR/tests/deps.sh" hping3 >&2 || die "tests/deps.sh hping3 failed"
    LAB_EXTRA_BINARIES="$LAB_EXTRA_BINARIES $(command -v hping3)"
}

# Copy the raw netlink replies captured by `dump --capture-netlink` in the last run into
# shared/tests/vectors (6.1) or shared/tests/data/kernel-<version>/netlink (LAB_KERNEL=5.10/6.12)
# as <command>-lab-<scenario>-<index>.bin, and write an .expected.json for each get_daemon reply
# from ipvsadm's own view of the daemons (an independent source). For 5.10/6.12 also the procfs
# captures of every scenario with a dump (except 11-many, 300 services), as
# shared/tests/data/kernel-6.1 holds them: <NN-scenario>/{ip_vs,ip_vs_stats,dump.json}, and the
# guest's uname -r as kernel-release.txt. The other expected values are written by
# shared/tests/vectors/oracle.py.
lab_vectors() {
    local res="$LAB_OUT/results/scenarios" dest="$REPO_DIR/shared/tests/vectors" n=0 d s f base cmd idx data=""
    [ -d "$res" ] || die "no results in $res (run: lab.sh run)"
    if [ "$LAB_KERNEL" != 6.1 ]; then
        data="$REPO_DIR/shared/tests/data/kernel-$LAB_KERNEL"
        dest="$data/netlink"
        # Replace the captures, keep the hand-written README.md.
        rm -rf "$data/netlink" "$data"/[0-9][0-9]-*
        mkdir -p "$data"
        cp "$LAB_OUT/results/kernel-release.txt" "$data/kernel-release.txt" || die "no kernel-release.txt in $LAB_OUT/results"
        for d in "$res"/*/; do
            s=$(basename "$d")
            [ "$s" != 11-many ] && [ -s "$d/dump.json" ] && [ -s "$d/proc_ip_vs.txt" ] || continue
            mkdir -p "$data/$s"
            cp "$d/proc_ip_vs.txt" "$data/$s/ip_vs"
            cp "$d/global.txt" "$data/$s/ip_vs_stats"
            cp "$d/dump.json" "$data/$s/dump.json"
        done
    fi
    mkdir -p "$dest"
    rm -f "$dest"/*-lab-*
    for d in "$res"/*/netlink; do
        [ -d "$d" ] || continue
        s=$(basename "$(dirname "$d")")
        s=${s#[0-9][0-9]-}
        for f in "$d"/*.bin; do
            [ -e "$f" ] || continue
            base=$(basename "$f" .bin)
            cmd=${base%-*}
            idx=${base##*-}
            cp "$f" "$dest/$cmd-lab-$s-$idx.bin"
            n=$((n + 1))
        done
        if [ -s "$(dirname "$d")/daemon.txt" ]; then
            idx=0
            while read -r line; do
                printf '%s\n' "$line" | sed -E 's/^(master|backup) sync daemon \(mcast=([^,]*), syncid=([0-9]+), maxlen=([0-9]+), group=([^,]*), port=([0-9]+), ttl=([0-9]+)\)$/{"role":"\1","interface":"\2","sync_id":\3,"max_len":\4,"mcast_group":"\5","mcast_port":\6,"mcast_ttl":\7}/' \
                    >"$dest/get_daemon-lab-$s-$(printf %04d $idx).expected.json"
                idx=$((idx + 1))
            done <"$(dirname "$d")/daemon.txt"
        fi
    done
    log "copied $n captured replies into $dest"
}

# Host-side preparation for `lab.sh e2e`: BIRD 2 (daemon and birdcl) goes into the initramfs,
# with iproute2's `bridge` (the freeze steps disable a director's bridge port) and the bridge
# module (the router's LAN).
lab_e2e_prepare() {
    bash "$REPO_DIR/tests/deps.sh" bird birdcl >&2 || die "tests/deps.sh bird birdcl failed"
    command -v bridge >/dev/null || die "no bridge command (iproute2)"
    LAB_EXTRA_BINARIES="$LAB_EXTRA_BINARIES $(command -v bird) $(command -v birdcl) $(command -v bridge)"
    LAB_MODULES="$LAB_MODULES bridge"
}

# Host-side preparation of the e2e's keepalived (lab.sh e2e only): Debian's keepalived binary
# and its libraries go into the initramfs; the guest runs only its checker process, without
# systemd, D-Bus or syslog (tests/lab/e2e/topology.sh, keepalived_start).
lab_e2e_keepalived_prepare() {
    bash "$REPO_DIR/tests/deps.sh" keepalived >&2 || die "tests/deps.sh keepalived failed"
    local ka
    ka=$(command -v keepalived || echo /usr/sbin/keepalived)
    [ -x "$ka" ] || die "keepalived is not at $ka after tests/deps.sh keepalived"
    LAB_EXTRA_BINARIES="$LAB_EXTRA_BINARIES $ka"
}

# Host-side preparation of the e2e's Prometheus (lab.sh e2e only): the Debian prometheus binary
# goes into the initramfs, with /lab/e2e-prom holding a copy of the announcer alert rules whose
# every `for:` is shortened to 2s (so an alert is seen pending/firing within one pool-down) and
# every PromQL expression of the announcer dashboard and rules (dashboards/extract-promql.py):
# queries.jsonl (the extractor's lines plus "idx" and "eval", the expression sent) and
# queries.tsv (idx, kind, URL-encoded "eval") for the guest's wget.
lab_e2e_prom_prepare() {
    bash "$REPO_DIR/tests/deps.sh" prometheus yaml >&2 || die "tests/deps.sh prometheus yaml failed"
    local pd="$LAB_OUT/e2e-prom" rules="$REPO_DIR/dashboards/announcer/ipvs-herald-announcer.rules.yml"
    rm -rf "$pd"
    mkdir -p "$pd"
    [ -r "$rules" ] || die "no $rules"
    sed -E 's/^([[:space:]]*)for:[[:space:]].*$/\1for: 2s/' "$rules" >"$pd/rules.yml"
    grep -q 'for: 2s' "$pd/rules.yml" || die "no for: to shorten in $rules"
    python3 "$REPO_DIR/dashboards/extract-promql.py" "$REPO_DIR/dashboards/announcer" >"$pd/extracted.jsonl" ||
        die "dashboards/extract-promql.py failed"
    python3 - "$pd" <<'EOF' || die "cannot prepare the PromQL query list"
import json, re, sys, urllib.parse
d = sys.argv[1]
rows = [json.loads(l) for l in open(d + "/extracted.jsonl") if l.strip()]
if not rows:
    sys.exit("no expressions extracted")
with open(d + "/queries.jsonl", "w") as j, open(d + "/queries.tsv", "w") as t:
    for i, r in enumerate(rows):
        e = r["promql"].strip()
        m = re.fullmatch(r"label_values\((.*),\s*[A-Za-z_][A-Za-z0-9_]*\)", e, re.S)
        if m:
            # A Grafana variable query: the series it takes label values from ("All" = .*).
            e = re.sub(r'=~"\$\{?[A-Za-z0-9_]+\}?"', '=~".*"', m.group(1).strip())
        r["idx"] = i
        r["eval"] = e
        j.write(json.dumps(r) + "\n")
        t.write("%d\t%s\t%s\n" % (i, r.get("kind", "query"), urllib.parse.quote(e, safe="")))
EOF
    LAB_EXTRA_BINARIES="$LAB_EXTRA_BINARIES $(command -v prometheus)"
    LAB_EXTRA_COPY="${LAB_EXTRA_COPY:-} $pd=/lab/e2e-prom"
}

# Host-side preparation for `lab.sh cluster` (after lab_e2e_prepare: BIRD and the bridge):
# Prometheus with the shipped rules file copied unchanged to /lab/cluster-prom/rules.yml, and
# curl (the clients' requests, each from a chosen source address: busybox nc cannot bind one).
lab_cluster_prepare() {
    bash "$REPO_DIR/tests/deps.sh" prometheus curl >&2 || die "tests/deps.sh prometheus curl failed"
    local pd="$LAB_OUT/cluster-prom" rules="$REPO_DIR/dashboards/rules/ipvs-herald.rules.yml"
    [ -r "$rules" ] || die "no $rules"
    rm -rf "$pd"
    mkdir -p "$pd"
    cp "$rules" "$pd/rules.yml"
    LAB_EXTRA_BINARIES="$LAB_EXTRA_BINARIES $(command -v prometheus) $(command -v curl)"
    LAB_EXTRA_COPY="${LAB_EXTRA_COPY:-} $pd=/lab/cluster-prom"
}

# Host-side preparation for `lab.sh e2e-bench`: python3 and ExaBGP (its healthcheck is the
# comparison) go into the initramfs, without the parts of the standard library they do not use.
lab_e2e_bench_prepare() {
    bash "$REPO_DIR/tests/deps.sh" exabgp python3 >&2 || die "tests/deps.sh exabgp python3 failed"
    [ -d /usr/lib/python3/dist-packages/exabgp ] || die "exabgp is installed but /usr/lib/python3/dist-packages/exabgp is missing"
    local py
    py=$(readlink -f /usr/bin/python3)
    LAB_EXTRA_BINARIES="$LAB_EXTRA_BINARIES $py"
    LAB_EXTRA_TREES="${LAB_EXTRA_TREES:-} /usr/lib/$(basename "$py") /usr/lib/python3/dist-packages/exabgp"
    LAB_EXTRA_PRUNE="${LAB_EXTRA_PRUNE:-} /usr/lib/$(basename "$py")/test /usr/lib/$(basename "$py")/idlelib /usr/lib/$(basename "$py")/tkinter /usr/lib/$(basename "$py")/ensurepip /usr/lib/$(basename "$py")/lib2to3 /usr/lib/$(basename "$py")/pydoc_data /usr/lib/$(basename "$py")/config-3.11-x86_64-linux-gnu"
}

# Host-side preparation for `lab.sh exporter-bench`: node_exporter (its ipvs collector is the
# comparison) and curl (timed scrapes) go into the initramfs.
lab_exporter_bench_prepare() {
    bash "$REPO_DIR/tests/deps.sh" prometheus-node-exporter curl >&2 ||
        die "tests/deps.sh prometheus-node-exporter curl failed"
    LAB_EXTRA_BINARIES="$LAB_EXTRA_BINARIES $(command -v prometheus-node-exporter) $(command -v curl)"
}

# Summarise exporter-bench.txt: per table size and exporter, median scrape seconds, CPU seconds
# per scrape, peak RSS, bytes and series per scrape; then ipvs-herald / node_exporter ratios.
lab_exporter_bench_summary() {
    awk '
    function median(list,   n, a, i, j, t) {
        n = split(list, a, " ")
        for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
        return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    $2 ~ /^scrape_seconds_/ { times[$1] = times[$1] " " $3; labels[$1] = 1 }
    $2 == "series" { series[$1] = $3 }
    $2 == "bytes" { bytes[$1] = $3 }
    $2 == "cpu_ticks_total" { cpu[$1] = $3 }
    $2 == "scrapes" { n[$1] = $3 }
    $2 == "vmhwm_kib" { hwm[$1] = $3 }
    END {
        printf "%-12s %10s %12s %10s %12s %10s\n", "exporter", "median_s", "cpu_s/scrape", "peak_MiB", "bytes", "series"
        for (size = 1000; size <= 10000; size *= 10) {
            for (k = 0; k < 2; k++) {
                l = (k == 0 ? "node_" : "herald_") size
                if (!(l in labels)) { printf "%-12s missing\n", l; continue }
                med[l] = median(times[l])
                cps[l] = cpu[l] / 100 / n[l]
                printf "%-12s %10.3f %12.3f %10.1f %12d %10d\n", l, med[l], cps[l], hwm[l] / 1024, bytes[l], series[l]
            }
            h = "herald_" size; o = "node_" size
            if ((h in labels) && (o in labels) && med[h] > 0 && cps[h] > 0)
                printf "ratio %5d services: node/herald latency %.2fx, node/herald CPU %.2fx, herald/node series %.2fx, herald/node bytes %.2fx, herald/node peak RSS %.2fx\n", size, med[o] / med[h], cps[o] / cps[h], series[h] / series[o], bytes[h] / bytes[o], hwm[h] / hwm[o]
        }
    }' "$1"
}
