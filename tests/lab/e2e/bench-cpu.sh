# shellcheck shell=sh
#
# The CPU part of `tests/lab/lab.sh e2e-bench` (guest side, sourced by bench.sh): what the
# announcer's health checks cost at 1,000 VIPs, next to the peers that do the same job, in the
# same VM and boot, on the same IPVS table (namespace d3: 1,000 IPv6 TCP services [VIP]:80, two
# real servers each; 1,000 VIPs on lo):
#
#  1. `ipvs-herald run` with 1,000 VIP groups checked every 100 ms, one build after another
#     (the build under test, and /usr/bin/ipvs-herald-base when the host put one in:
#     before/after), once more with `[reader] source = "procfs"`, then (E2E_CPU_ROUNDS=2) both
#     builds again in the reverse order: utime and stime from /proc/<pid>/stat over
#     E2E_CPU_SECONDS, and the number of checks (ticks) in that window;
#  2. the same daemon under `strace -ff` for E2E_STRACE_SECONDS: per tick, the threads started,
#     the generic-netlink requests sent and the bytes received (each reader thread opens one
#     NETLINK_GENERIC socket and makes every request of one snapshot on it);
#  3. `ipvsadm -Ln` of the same table, E2E_IPVSADM_RUNS times back to back (what a script-based
#     checker runs): CPU per run, and its netlink calls under `strace -c`; once before the
#     daemons (ipvsadm_first) and once after them (ipvsadm), as the host's load moves;
#  4. ExaBGP's healthcheck: E2E_EXABGP_VIPS processes under one ExaBGP (one per VIP, the way
#     it is deployed), each at --interval/--fast-interval E2E_EXABGP_INTERVAL (10 checks/s
#     asked), each check `ipvsadm -Ln -t [VIP]:80 | awk` on the weights (the same pool rule as
#     ours); CPU of ExaBGP and every healthcheck with their reaped children, per check done.
#
# Ticks in the window: every tick starts two short-lived threads (the IPVS read and the local
# address list, each on a fresh thread; step 2 counts them), so the kernel's PID counter
# (/proc/sys/kernel/ns_last_pid) advances by 2 per tick; the script's own forks in the window
# are measured by a dry run of the same commands and subtracted.
#
# Results: $B/cpu.txt (one "name key value" per line) and summary lines in $B/bench.txt.
# Everything is bounded: every wait has a deadline, every loop a count.

E2E_CPU_SECONDS=${E2E_CPU_SECONDS:-30}
E2E_STRACE_SECONDS=${E2E_STRACE_SECONDS:-30}
E2E_IPVSADM_RUNS=${E2E_IPVSADM_RUNS:-10}
E2E_EXABGP_VIPS=${E2E_EXABGP_VIPS:-20}
E2E_EXABGP_INTERVAL=${E2E_EXABGP_INTERVAL:-0.1}
E2E_CPU_VIPS=1000

# res NAME KEY VALUE: one result line.
res() {
    echo "$1 $2 $3" >>"$B/cpu.txt"
}

# get NAME KEY: a result, or empty.
get() {
    awk -v n="$1" -v k="$2" '$1 == n && $2 == k {v = $3} END {print v}' "$B/cpu.txt"
}

# calc FMT EXPR: EXPR (an awk expression of numbers) printed with FMT; n/a when it cannot be
# computed (an empty value, or a division by zero: EXPR must guard it with "d > 0 ? x : -1").
calc() {
    case "$2" in *[!0-9.+*/\(\)\ \<\>=?:\&-]* | "") echo n/a; return ;; esac
    awk "BEGIN { v = $2; if (v < 0) print \"n/a\"; else printf \"$1\", v }"
}

lastpid() {
    cat /proc/sys/kernel/ns_last_pid
}

# stat_field PID N: field N of /proc/PID/stat (counted after the command name, which may hold
# spaces: field 3 is the first after ")").
stat_field() {
    sed 's/^.*) //' "/proc/$1/stat" | awk -v n="$2" '{print $(n - 2)}'
}

# window PID SECONDS: measure PID for SECONDS; prints "utime stime pid_delta elapsed".
window() {
    _u0=$(stat_field "$1" 14)
    _s0=$(stat_field "$1" 15)
    _p0=$(lastpid)
    _t0=$(now)
    sleep "$2"
    _p1=$(lastpid)
    _t1=$(now)
    _u1=$(stat_field "$1" 14)
    _s1=$(stat_field "$1" 15)
    echo "$((_u1 - _u0)) $((_s1 - _s0)) $((_p1 - _p0)) $(awk -v a="$_t0" -v b="$_t1" 'BEGIN{printf "%.2f", b - a}')"
}

# The script's own forks in a window: the same commands around `sleep 1` in an idle VM.
window_overhead() {
    set -- $(window $$ 1)
    echo "$3"
}

# herald_config_d3 SOURCE: the 1,000-group configuration (SOURCE: netlink or procfs).
herald_config_d3() {
    mkdir -p "$E2E/d3"
    {
        printf '[log]\nlevel = "warn"\n[exporter]\nlisten = "127.0.0.1:9639"\n'
        printf '[reader]\ntimeout = "60s"\nsource = "%s"\nkernel_hz = 250\n' "$1"
        printf '[announcer]\nadmin_socket = "%s/d3/admin.sock"\nmaintenance_file = "%s/d3/maintenance"\n' "$E2E" "$E2E"
        printf '[announcer.bgp]\nrouter_id = "192.0.2.13"\nlocal_as = 65003\nlisten = "127.0.0.1:179"\n'
        i=0
        while [ $i -lt $E2E_CPU_VIPS ]; do
            i=$((i + 1))
            printf '[[announcer.vip_groups]]\nname = "v%s"\nprefixes = ["2001:db8:1::%x/128"]\ninterval = "100ms"\n' "$i" "$i"
        done
    } >"$E2E/d3/herald.toml"
}

# healthy_groups: VIP groups the d3 daemon reports healthy (a metrics scrape), or "n/a".
healthy_groups() {
    if ip netns exec d3 sh -c ". /lab/lib.sh; scrape 9639 $E2E/d3.metrics" >/dev/null 2>&1; then
        grep -c '^ipvs_herald_vip_group_healthy{.*} 1' "$E2E/d3.metrics"
    else
        echo n/a
    fi
}

# herald_cpu NAME BINARY SOURCE [STRACE]: one daemon with 1,000 groups; CPU over
# E2E_CPU_SECONDS after 15 s of warm-up; with STRACE, also the strace -ff window.
herald_cpu() {
    herald_config_d3 "$3"
    /sbin/ip netns exec d3 "$2" --config "$E2E/d3/herald.toml" run >"$B/herald-d3-$1.log" 2>&1 &
    _pid=$!
    echo $_pid >>/tmp/lab.pids
    sleep 15
    if ! kill -0 $_pid 2>/dev/null; then
        echo "cpu $1: ipvs-herald with 1,000 groups exited (see herald-d3-$1.log)" >>"$B/errors.txt"
        return 1
    fi
    set -- "$1" "$2" "$3" "${4:-}" $(window $_pid "$E2E_CPU_SECONDS")
    _ov=$(window_overhead)
    res "$1" utime_ticks "$5"
    res "$1" stime_ticks "$6"
    res "$1" seconds "$8"
    res "$1" pid_delta "$7"
    res "$1" pid_overhead "$_ov"
    res "$1" ticks "$(awk -v d="$7" -v o="$_ov" 'BEGIN{printf "%d", (d - o) / 2}')"
    res "$1" vmrss_kib "$(awk '/^VmRSS/ {print $2}' /proc/$_pid/status)"
    res "$1" vmhwm_kib "$(awk '/^VmHWM/ {print $2}' /proc/$_pid/status)"
    res "$1" healthy_groups "$(healthy_groups)"
    res "$1" read_timeouts "$(grep -c 'gave up reading' "$B/herald-d3-$1.log")"
    if [ -n "$4" ]; then
        mkdir -p "$B/strace-$1"
        strace -ff -qq -e trace=socket,clone,clone3,sendto,recvfrom,sendmsg,recvmsg,openat \
            -e raw=sendto,recvfrom,sendmsg,recvmsg -o "$B/strace-$1/t" -p $_pid 2>"$B/strace-$1.err" &
        _st=$!
        sleep "$E2E_STRACE_SECONDS"
        kill -INT $_st 2>/dev/null
        _i=0
        while kill -0 $_st 2>/dev/null && [ $_i -lt 100 ]; do
            usleep 100000
            _i=$((_i + 1))
        done
        strace_summary "$1"
    fi
    kill -TERM $_pid
    _i=0
    while kill -0 $_pid 2>/dev/null && [ $_i -lt 300 ]; do
        usleep 100000
        _i=$((_i + 1))
    done
    kill -KILL $_pid 2>/dev/null
}

# strace_summary NAME: per-thread files of strace -ff; a thread that opened a NETLINK_GENERIC
# socket made one snapshot (or part of one at the window's edges: only threads with the
# GET_SERVICE..GET_DAEMON sequence complete, i.e. at least E2E_CPU_VIPS requests, count).
strace_summary() {
    for f in "$B/strace-$1"/t.*; do
        [ -e "$f" ] || continue
        awk '
            /socket\(AF_NETLINK.*NETLINK_GENERIC/ { genl = 1 }
            /socket\(AF_NETLINK.*NETLINK_ROUTE/ { route = 1 }
            /^sendto\(|^sendmsg\(/ { if ($NF + 0 > 0) { req++; sent += $NF } }
            /^recvfrom\(|^recvmsg\(/ { if ($NF + 0 > 0) { recv++; bytes += $NF } }
            /^openat\(/ { opens++ }
            /^clone/ { clones++ }
            END { printf "%s %d %d %d %d %d %d %d\n", (genl ? "genl" : (route ? "route" : "other")), req, sent, recv, bytes, opens, clones, NR }
        ' "$f"
    done >"$B/strace-$1.threads"
    awk -v n="$E2E_CPU_VIPS" '
        $1 == "genl" && $2 >= n { snaps++; req += $2; sent += $3; recv += $4; bytes += $5; opens += $6 }
        $1 == "genl" && $2 < n { partial++ }
        $1 == "route" { rthreads++; rreq += $2; rbytes += $5 }
        { threads++; clones += $7 }
        END {
            printf "snapshots %d\npartial_snapshots %d\nthreads %d\nroute_threads %d\n", snaps, partial, threads, rthreads
            if (snaps > 0) {
                printf "genl_requests_per_snapshot %.1f\ngenl_bytes_sent_per_snapshot %.0f\ngenl_recvs_per_snapshot %.1f\ngenl_bytes_received_per_snapshot %.0f\nopenat_per_snapshot %.1f\n", req / snaps, sent / snaps, recv / snaps, bytes / snaps, opens / snaps
            }
            if (rthreads > 0) printf "route_requests_per_list %.1f\nroute_bytes_per_list %.0f\n", rreq / rthreads, rbytes / rthreads
            # Threads started (clone) in the window, per whole snapshot.
            if (snaps > 0) printf "threads_per_snapshot %.2f\n", clones / (snaps + partial)
        }' "$B/strace-$1.threads" | while read -r k v; do res "$1" "$k" "$v"; done
}

# ipvsadm_cpu NAME: ipvsadm -Ln of the whole table, back to back; CPU from busybox time. Run
# twice (NAME ipvsadm_first before the daemons, ipvsadm after them) because the host's load can
# change between phases: the two show how much.
ipvsadm_cpu() {
    ip netns exec d3 ipvsadm -Ln | grep -c '^TCP' >"$B/$1-services.txt"
    res "$1" services "$(cat "$B/$1-services.txt")"
    # The loop runs in d3 (ip netns exec execs the shell there); time's child is that shell,
    # whose reaped children are the ipvsadm runs.
    /sbin/ip netns exec d3 time -f '%U %S %e' -o "$B/$1-time.txt" \
        sh -c "i=0; while [ \$i -lt $E2E_IPVSADM_RUNS ]; do ipvsadm -Ln >/dev/null; i=\$((i + 1)); done" \
        2>>"$B/errors.txt"
    read -r _u _s _e <"$B/$1-time.txt"
    res "$1" runs "$E2E_IPVSADM_RUNS"
    res "$1" user_s "$_u"
    res "$1" sys_s "$_s"
    res "$1" elapsed_s "$_e"
    ip netns exec d3 strace -f -c -o "$B/$1-strace-c.txt" ipvsadm -Ln >/dev/null 2>&1
    res "$1" sendmsg_per_run "$(awk '$NF == "sendmsg" || $NF == "sendto" {n += $4} END {print n + 0}' "$B/$1-strace-c.txt")"
    res "$1" recvmsg_per_run "$(awk '$NF == "recvmsg" || $NF == "recvfrom" {n += $4} END {print n + 0}' "$B/$1-strace-c.txt")"
}

# ExaBGP with E2E_EXABGP_VIPS healthcheck processes in d3.
exabgp_cpu() {
    mkdir -p "$E2E/hc"
    : >"$E2E/hc/count"
    n=$E2E_EXABGP_VIPS
    procs=""
    : >"$E2E/exabgp-cpu.conf"
    i=0
    while [ $i -lt "$n" ]; do
        i=$((i + 1))
        h=$(printf %x "$i")
        # One append (a shell builtin) counts the check; then the same pool rule as ours.
        cat >"$E2E/hc/check-$i.sh" <<EOF
#!/bin/sh
echo >>$E2E/hc/count
ipvsadm -Ln -t [2001:db8:1::$h]:80 | awk '\$1 == "->" && \$4 > 0 {ok = 1} END {exit !ok}'
EOF
        chmod +x "$E2E/hc/check-$i.sh"
        cat >>"$E2E/exabgp-cpu.conf" <<EOF
process hc$i {
    run $PY -m exabgp healthcheck --no-syslog --withdraw-on-down --no-ip-setup --interval $E2E_EXABGP_INTERVAL --fast-interval $E2E_EXABGP_INTERVAL --ip 2001:db8:1::$h/128 --next-hop 2001:db8:2::fe --cmd $E2E/hc/check-$i.sh;
    encoder text;
}
EOF
        procs="$procs hc$i"
    done
    procs=$(echo "$procs" | sed 's/^ //; s/ /, /g')
    cat >>"$E2E/exabgp-cpu.conf" <<EOF
neighbor ::2 {
    router-id 192.0.2.13;
    local-address ::1;
    local-as 65003;
    peer-as 65000;
    passive true;
    family { ipv6 unicast; }
    api { processes [ $procs ]; }
}
EOF
    [ -e /etc/passwd ] || echo 'root:x:0:0:root:/root:/bin/sh' >/etc/passwd
    [ -e /etc/group ] || echo 'root:x:0:' >/etc/group
    /sbin/ip netns exec d3 env exabgp_daemon_user=root exabgp_daemon_drop=false \
        exabgp_log_destination=stdout exabgp_log_level=WARNING exabgp_api_pipename=cpu \
        "$PY" -m exabgp "$E2E/exabgp-cpu.conf" >"$B/exabgp-cpu.log" 2>&1 &
    xpid=$!
    echo $xpid >>/tmp/lab.pids
    # Started when every healthcheck has run a few checks (bounded: E2E_EXABGP_START_S).
    t0=$(now)
    started=0
    while awk -v a="$(now)" -v b="$t0" -v m="${E2E_EXABGP_START_S:-600}" 'BEGIN{exit !(a - b < m)}'; do
        if ! kill -0 $xpid 2>/dev/null; then
            echo "exabgp cpu: ExaBGP exited (see exabgp-cpu.log)" >>"$B/errors.txt"
            return 1
        fi
        if [ "$(wc -l <"$E2E/hc/count")" -ge $((n * 3)) ]; then
            started=1
            break
        fi
        sleep 2
    done
    res exabgp startup_s "$(since "$t0")"
    if [ $started -eq 0 ]; then
        echo "exabgp cpu: fewer than 3 checks per VIP after ${E2E_EXABGP_START_S:-600} s" >>"$B/errors.txt"
        kill $xpid 2>/dev/null
        return 1
    fi
    sleep 5
    kids=$(awk -v p=$xpid '{sub(/^.*\) /, ""); if ($2 == p) print FILENAME}' /proc/[0-9]*/stat 2>/dev/null | cut -d/ -f3)
    res exabgp healthcheck_processes "$(echo "$kids" | wc -w)"
    # CPU, check count, check timeouts and time read back to back at both ends of the window.
    a0=$(tree_cpu $xpid $kids)
    c0=$(wc -l <"$E2E/hc/count")
    o0=$(grep -c 'Timeout (' "$B/exabgp-cpu.log")
    t0=$(now)
    sleep "$E2E_CPU_SECONDS"
    a1=$(tree_cpu $xpid $kids)
    c1=$(wc -l <"$E2E/hc/count")
    o1=$(grep -c 'Timeout (' "$B/exabgp-cpu.log")
    res exabgp seconds "$(since "$t0")"
    res exabgp checks "$((c1 - c0))"
    res exabgp timeouts "$((o1 - o0))"
    set -- $a0 $a1
    res exabgp utime_ticks "$(($5 - $1))"
    res exabgp stime_ticks "$(($6 - $2))"
    res exabgp main_ticks "$(($7 - $3))"
    res exabgp rss_kib "$8"
    kill $xpid 2>/dev/null
    sleep 3
    for k in $kids; do kill "$k" 2>/dev/null; done
}

# tree_cpu PID...: "user sys main-process rss": user and sys ticks of every PID with its
# reaped children (utime+cutime, stime+cstime), the first PID's own total, and the summed RSS;
# one awk over every stat file, so that both ends of a window are read within a moment.
tree_cpu() {
    _first=$1
    _files=""
    for p in "$@"; do
        [ -r "/proc/$p/stat" ] && _files="$_files /proc/$p/stat"
    done
    # shellcheck disable=SC2086
    awk -v first="/proc/$_first/stat" '{
        f = FILENAME; sub(/^.*\) /, "")
        u += $12 + $14; s += $13 + $15; r += $22 * 4
        if (f == first) m = $12 + $13 + $14 + $15
    } END { print u + 0, s + 0, m + 0, r + 0 }' $_files
}

# cpu_report: the summary lines of bench.txt. CPU is in clock ticks of 10 ms (USER_HZ 100).
cpu_report() {
    for name in herald herald_2 herald_base herald_base_2 herald_procfs; do
        t=$(get $name ticks)
        [ -n "$t" ] || continue
        u=$(get $name utime_ticks)
        s=$(get $name stime_ticks)
        sec=$(get $name seconds)
        echo "$name: $t ticks (checks of all 1,000 groups) in $sec s = $(calc %.2f "$sec > 0 ? $t / $sec : -1") ticks/s (10 asked); CPU $(calc %.1f "$sec > 0 ? ($u + $s) / $sec : -1")% of one vCPU (user $u, sys $s ticks; sys $(calc %.0f "$u + $s > 0 ? 100 * $s / ($u + $s) : -1")%); $(calc %.1f "$t > 0 ? 10 * ($u + $s) / $t : -1") ms CPU per tick = $(calc %.1f "$t > 0 ? 10000 * ($u + $s) / ($t * $E2E_CPU_VIPS) : -1") us per VIP check; RSS $(get $name vmrss_kib) KiB; healthy groups at the end: $(get $name healthy_groups); read timeouts: $(get $name read_timeouts)"
        sn=$(get $name snapshots)
        if [ -n "$sn" ]; then
            echo "  strace -ff ($E2E_STRACE_SECONDS s, $sn whole snapshots): $(get $name genl_requests_per_snapshot) generic-netlink requests, $(get $name genl_recvs_per_snapshot) receives, $(get $name genl_bytes_received_per_snapshot) bytes received and $(get $name genl_bytes_sent_per_snapshot) sent per snapshot; local addresses: $(get $name route_requests_per_list) rtnetlink requests, $(get $name route_bytes_per_list) bytes received per list"
        fi
    done
    for ia in ipvsadm_first ipvsadm; do
        [ -n "$(get $ia runs)" ] || continue
        r=$(get $ia runs)
        ic=$(calc %.2f "$(get $ia user_s) + $(get $ia sys_s)")
        echo "$ia: ipvsadm -Ln ($(get $ia services) services), $r runs back to back: $(get $ia elapsed_s) s, user $(get $ia user_s) s, sys $(get $ia sys_s) s = $(calc %.0f "1000 * $ic / $r") ms CPU per run; netlink per run (strace -c): $(get $ia sendmsg_per_run) sends, $(get $ia recvmsg_per_run) receives"
        for name in herald herald_2 herald_base herald_base_2 herald_procfs; do
            t=$(get $name ticks)
            [ -n "$t" ] || continue
            c=$(($(get $name utime_ticks) + $(get $name stime_ticks)))
            echo "  ratio CPU per ipvsadm -Ln run ($ia) / CPU per $name tick (each reads all 1,000 services): $(calc %.1f "$c > 0 ? (100 * $ic / $r) / ($c / $t) : -1")"
        done
    done
    if [ -n "$(get exabgp checks)" ]; then
        xu=$(get exabgp utime_ticks)
        xs=$(get exabgp stime_ticks)
        ch=$(get exabgp checks)
        xsec=$(get exabgp seconds)
        echo "exabgp healthcheck: $(get exabgp healthcheck_processes) processes (--interval/--fast-interval $E2E_EXABGP_INTERVAL s) under one ExaBGP; $ch checks in $xsec s = $(calc %.1f "$xsec > 0 ? $ch / $xsec : -1") checks/s ($(calc %.0f "$E2E_EXABGP_VIPS / $E2E_EXABGP_INTERVAL") asked); $(get exabgp timeouts) check timeouts in the window; CPU user $xu, sys $xs ticks (ExaBGP itself $(get exabgp main_ticks)) = $(calc %.1f "$xsec > 0 ? ($xu + $xs) / $xsec : -1")% of one vCPU, $(calc %.1f "$ch > 0 ? 10 * ($xu + $xs) / $ch : -1") ms per VIP check (sys $(calc %.0f "$xu + $xs > 0 ? 100 * $xs / ($xu + $xs) : -1")%); RSS of ExaBGP and its healthchecks $(get exabgp rss_kib) KiB; start-up $(get exabgp startup_s) s"
        for name in herald herald_2 herald_base herald_base_2 herald_procfs; do
            t=$(get $name ticks)
            [ -n "$t" ] || continue
            c=$(($(get $name utime_ticks) + $(get $name stime_ticks)))
            echo "  ratio CPU per VIP check, exabgp healthcheck / $name: $(calc %.0f "$ch > 0 && $c > 0 ? (($xu + $xs) / $ch) / ($c / ($t * $E2E_CPU_VIPS)) : -1")"
        done
    fi
}

run_cpu_bench() {
    mkdir -p "$E2E"
    : >"$B/cpu.txt"
    if ! cpu_setup >"$B/cpu-setup.log" 2>&1; then
        echo "cpu: setup failed (see cpu-setup.log)" >>"$B/errors.txt"
        return 1
    fi
    if [ ! -r /proc/sys/kernel/ns_last_pid ]; then
        echo "cpu: /proc/sys/kernel/ns_last_pid is missing: cannot count ticks" >>"$B/errors.txt"
    fi
    ipvsadm_cpu ipvsadm_first
    herald_cpu herald "$HERALD" netlink strace
    if [ -x /usr/bin/ipvs-herald-base ]; then
        herald_cpu herald_base /usr/bin/ipvs-herald-base netlink strace
    fi
    herald_cpu herald_procfs "$HERALD" procfs
    ipvsadm_cpu ipvsadm
    # A second round in the reverse order (without strace): the host's load moves between
    # phases, and under TCG it shows in the guest's CPU accounting.
    if [ "${E2E_CPU_ROUNDS:-2}" -ge 2 ]; then
        if [ -x /usr/bin/ipvs-herald-base ]; then
            herald_cpu herald_base_2 /usr/bin/ipvs-herald-base netlink
        fi
        herald_cpu herald_2 "$HERALD" netlink
    fi
    if [ -n "$PY" ] && [ -x "$PY" ]; then
        exabgp_cpu
    else
        echo "exabgp cpu: no /usr/bin/python3* in the initramfs" >>"$B/errors.txt"
    fi
    cpu_report >>"$B/bench.txt"
}
