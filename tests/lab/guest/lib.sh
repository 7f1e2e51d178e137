# shellcheck shell=sh
#
# Guest-side helpers (busybox sh) for the lab VM: topologies (LVS-NAT, LVS-DR, LVS-TUN real
# servers in network namespaces), bounded traffic generators, and `collect`, which records
# ipvsadm's view and `ipvs-herald dump --json --conns` at the same moment.
#
# The director is the VM's initial network namespace (where ipvsadm and ipvs-herald run).
# Lab addresses: clients 198.51.100.0/24, real servers 192.0.2.0/24 (DIP 192.0.2.1),
# VIPs 203.0.113.0/24, IPv6 2001:db8::/32.

R=${R:-/results}
DIP=192.0.2.1
CLIENT_NET=198.51.100
HERALD=${HERALD:-/usr/bin/ipvs-herald}
# Configuration for every dump in the scenarios: the emulated CPU is 10-50x slower than
# hardware, so reads get far more than the default 5 s.
HERALD_TOML=/tmp/lab-herald.toml

# busybox-static's sh runs its own applets before $PATH; iproute2's ip is needed (netns, veth).
ip() {
    /sbin/ip "$@"
}

# Run each scenario script under /lab/scenarios (or the comma-separated subset in $1), each in
# its own subshell with a time bound, with a full reset before and after.
run_scenarios() {
    list=$1
    printf '[reader]\ntimeout = "120s"\n' >"$HERALD_TOML"
    mkdir -p "$R/scenarios"
    herald_daemon_start 127.0.0.1:9640
    for f in /lab/scenarios/*.sh; do
        name=$(basename "$f" .sh)
        if [ "$list" != all ]; then
            case ",$list," in *",$name,"*) ;; *) continue ;; esac
        fi
        D="$R/scenarios/$name"
        mkdir -p "$D"
        lab_reset
        t0=$(cut -d' ' -f1 /proc/uptime)
        echo "lab: scenario $name (t=${t0}s)"
        if timeout "${SCENARIO_TIMEOUT:-240}" sh -c ". /lab/lib.sh; D='$D'; set -x; . '$f'" >"$D/setup.log" 2>&1; then
            echo ok >"$D/status"
        else
            echo "failed: exit status $? (see setup.log)" >"$D/status"
            echo "lab: scenario $name FAILED"
            tail -n 5 "$D/setup.log"
        fi
        echo "$t0 $(cut -d' ' -f1 /proc/uptime)" >"$D/time"
    done
    lab_reset
    herald_daemon_stop
}

# herald_daemon_start LISTEN: `ipvs-herald run` in the director namespace serving /metrics on
# LISTEN (127.0.0.1:9640 in run_scenarios: a scenario may start its own daemon on 9639) for the
# whole run (it reads IPVS at scrape time, so one daemon serves every scenario; lab_reset leaves
# it alone). Generous scrape bounds for the emulated CPU; the connection-table
# pass is bounded only by the scrape deadline so it is never truncated here.
HERALD_RUN_TOML=/tmp/lab-herald-run.toml
HERALD_METRICS_URL=http://127.0.0.1:9640/metrics
herald_daemon_start() {
    HERALD_METRICS_URL="http://127.0.0.1:${1##*:}/metrics"
    {
        cat "$HERALD_TOML"
        printf '[exporter]\nlisten = "%s"\n' "$1"
        printf '[exporter.limits]\ndefault_scrape_timeout = "150s"\nrequest_timeout = "200s"\n'
        printf '[exporter.conn_table]\nmax_duration = "0s"\n'
    } >"$HERALD_RUN_TOML"
    "$HERALD" --config "$HERALD_RUN_TOML" run >"$R/herald-run.log" 2>&1 &
    echo $! >/tmp/herald-run.pid
    n=0
    while [ $n -lt 60 ]; do
        timeout 5 wget -q -O /dev/null "http://127.0.0.1:${1##*:}/-/ready" 2>/dev/null && return 0
        kill -0 "$(cat /tmp/herald-run.pid)" 2>/dev/null || break
        sleep 1
        n=$((n + 1))
    done
    echo "herald_daemon_start: ipvs-herald run did not become ready; log:" >&2
    cat "$R/herald-run.log" >&2
    return 1
}

herald_daemon_stop() {
    [ -e /tmp/herald-run.pid ] || return 0
    kill "$(cat /tmp/herald-run.pid)" 2>/dev/null
    n=0
    while kill -0 "$(cat /tmp/herald-run.pid)" 2>/dev/null && [ $n -lt 30 ]; do
        sleep 1
        n=$((n + 1))
    done
    rm -f /tmp/herald-run.pid
}

# (busybox-static 1.35's `wget -T` segfaults, so time bounds come from `timeout`.)
# herald_scrape FILE: one GET of the run-wide daemon's /metrics (text format 0.0.4: busybox
# wget sends no Accept header) into FILE; the exit status goes to FILE.rc.
herald_scrape() {
    if [ -e /tmp/herald-run.pid ] && timeout 200 wget -q -O "$1" "$HERALD_METRICS_URL" 2>"$1.err"; then
        echo 0 >"$1.rc"
    else
        echo "${?}" >"$1.rc"
        [ -e /tmp/herald-run.pid ] || echo "no ipvs-herald run daemon" >>"$1.err"
    fi
}

# Back to a clean director: no services, no daemons, default timeouts, no namespaces or lab links.
lab_reset() {
    ipvsadm -C
    ipvsadm --stop-daemon master 2>/dev/null
    ipvsadm --stop-daemon backup 2>/dev/null
    ipvsadm --set 900 120 300
    if [ -e /tmp/lab.pids ]; then
        kill $(cat /tmp/lab.pids) 2>/dev/null
        rm -f /tmp/lab.pids
    fi
    for n in $(ip netns list | cut -d' ' -f1); do
        ip netns pids "$n" 2>/dev/null | xargs -r kill -9 2>/dev/null
        ip netns delete "$n"
    done
    for l in $(ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -E '^(d-|lab)'); do
        ip link delete "$l" 2>/dev/null
    done
    sysctl -qw net.ipv4.ip_forward=1
    sysctl -qw net.ipv6.conf.all.forwarding=1
}

# ns_new NAME: a network namespace with lo up.
ns_new() {
    ip netns add "$1" && ip -n "$1" link set lo up
}

# rs_add NAME RIP: a real-server namespace NAME joined to the director by veth d-NAME <-> e0.
# The director holds the DIP (/32) on every such veth; the real server routes DIP on-link and
# uses it as its default gateway (what LVS-NAT needs).
rs_add() {
    name=$1
    rip=$2
    ns_new "$name" || return 1
    ip link add "d-$name" type veth peer name e0 netns "$name" || return 1
    ip addr add "$DIP/32" dev "d-$name"
    ip link set "d-$name" up
    ip route add "$rip/32" dev "d-$name"
    sysctl -qw "net.ipv4.conf.d-$name.rp_filter=0"
    sysctl -qw "net.ipv4.conf.d-$name.accept_local=1"
    ip -n "$name" addr add "$rip/32" dev e0
    ip -n "$name" link set e0 up
    ip -n "$name" route add "$DIP/32" dev e0
    ip -n "$name" route add default via "$DIP" dev e0
}

# rs_dr NAME VIP: make real server NAME accept VIP for LVS-DR (VIP on lo, no ARP for it).
rs_dr() {
    ip netns exec "$1" sysctl -qw net.ipv4.conf.all.arp_ignore=1
    ip netns exec "$1" sysctl -qw net.ipv4.conf.all.arp_announce=2
    ip netns exec "$1" sysctl -qw net.ipv4.conf.e0.arp_ignore=1
    ip netns exec "$1" sysctl -qw net.ipv4.conf.e0.arp_announce=2
    ip -n "$1" addr add "$2/32" dev lo
}

# rs_tun NAME VIP: make real server NAME decapsulate IPIP for LVS-TUN (tunl0 holds the VIP).
rs_tun() {
    ip -n "$1" link set tunl0 up || return 1
    ip -n "$1" addr add "$2/32" dev tunl0
    ip netns exec "$1" sysctl -qw net.ipv4.conf.all.rp_filter=0
    ip netns exec "$1" sysctl -qw net.ipv4.conf.tunl0.rp_filter=0
    ip netns exec "$1" sysctl -qw net.ipv4.conf.all.arp_ignore=1
    ip netns exec "$1" sysctl -qw net.ipv4.conf.all.arp_announce=2
}

# client_add: client namespace "cl" (198.51.100.2) behind the director's d-cl (198.51.100.1).
client_add() {
    ns_new cl || return 1
    ip link add d-cl type veth peer name e0 netns cl || return 1
    ip addr add "$CLIENT_NET.1/24" dev d-cl
    ip link set d-cl up
    sysctl -qw net.ipv4.conf.all.rp_filter=0
    sysctl -qw net.ipv4.conf.all.accept_local=1
    sysctl -qw net.ipv4.conf.d-cl.rp_filter=0
    ip -n cl addr add "$CLIENT_NET.2/24" dev e0
    ip -n cl link set e0 up
    ip -n cl route add default via "$CLIENT_NET.1"
}

# vip_add VIP: the VIP is a local address of the director (on the client-facing link).
vip_add() {
    ip addr add "$1/32" dev d-cl
}

# http_start NAME [PORT]: busybox httpd in real server NAME, answering its own name.
http_start() {
    mkdir -p "/tmp/www-$1"
    echo "$1" >"/tmp/www-$1/index.html"
    ip netns exec "$1" httpd -f -p "${2:-80}" -h "/tmp/www-$1" &
    echo $! >>/tmp/lab.pids
}

# client_http VIP PORT COUNT: COUNT sequential HTTP/1.0 GETs from the client namespace, each
# bounded to 5 s. Prints how many answered 200; fails when none did. In a scenario ($D set),
# each answered request's body (the real server's name, see http_start) is appended to
# $D/answers-VIP-PORT, one line per request, so the test can check who answered, not only
# that someone did.
client_http() {
    out=/tmp/client-http.$$
    : >"$out"
    ok=$(ip netns exec cl sh -c '
        i=0; ok=0
        while [ $i -lt '"$3"' ]; do
            i=$((i+1))
            body=$(printf "GET / HTTP/1.0\r\n\r\n" | timeout 5 nc '"$1"' '"$2"' 2>/dev/null)
            case "$body" in
            *"200 OK"*) ok=$((ok+1)); printf "%s\n" "$body" | tail -n 1 >>'"$out"' ;;
            esac
        done
        echo $ok')
    echo "client_http $1:$2: $ok/$3 answered"
    if [ -n "${D:-}" ]; then
        cat "$out" >>"$D/answers-$1-$2"
    fi
    rm -f "$out"
    [ "${ok:-0}" -gt 0 ]
}

# client_http_all VIP PORT COUNT: client_http, failing the scenario unless every request was
# answered (a scheduler, forwarding method or return path that drops some requests fails).
client_http_all() {
    line=$(client_http "$@") || { echo "$line"; return 1; }
    echo "$line"
    case "$line" in
    *": $3/$3 answered") ;;
    *) echo "client_http_all $1:$2: not every request was answered" >&2; return 1 ;;
    esac
}

# client_udp VIP PORT COUNT: COUNT DNS queries (busybox nslookup, UDP, a new source port each)
# to VIP:PORT, each bounded to 2 s; no answer is expected.
client_udp() {
    ip netns exec cl sh -c '
        i=0
        while [ $i -lt '"$3"' ]; do
            i=$((i+1))
            timeout 2 nslookup lab$i.example '"$1"':'"$2"' >/dev/null 2>&1
        done
        true'
    echo "client_udp $1:$2: $3 queries sent"
}

# Wait until the estimator has folded every counter: the counter view (service/destination
# totals and /proc/net/ip_vs_stats totals, not rates) unchanged over 3 readings 1 s apart
# (the estimator runs every 2 s). Bounded to 40 s.
settle_stats() {
    P=$(lab_ns)
    prev=""
    same=0
    n=0
    while [ $n -lt 40 ]; do
        cur=$($P ipvsadm -Ln --exact --stats; $P head -n 3 /proc/net/ip_vs_stats)
        if [ "$cur" = "$prev" ]; then
            same=$((same + 1))
            [ $same -ge 3 ] && return 0
        else
            same=0
        fi
        prev=$cur
        sleep 1
        n=$((n + 1))
    done
    echo "settle_stats: counters still moving after 40 s" >&2
    return 1
}

# lab_ns: the command prefix that runs a command in namespace $LAB_NETNS when a scenario set
# it (the table under test lives there), else nothing (the director's namespace). A prefix,
# not a function: with `set -x`, a function's traced inner commands would land in the files
# its output is redirected to.
lab_ns() {
    if [ -n "${LAB_NETNS:-}" ]; then
        echo "/sbin/ip netns exec $LAB_NETNS"
    fi
}

# snap DIR: every ipvsadm view and /proc/net/ip_vs, except the rates (snap_rate).
snap() {
    mkdir -p "$1"
    P=$(lab_ns)
    $P ipvsadm -Ln >"$1/list.txt" 2>&1
    $P ipvsadm -Ln --exact --stats >"$1/stats.txt" 2>&1
    $P ipvsadm -Ln --thresholds >"$1/thresholds.txt" 2>&1
    $P ipvsadm -Ln --persistent-conn >"$1/pconn.txt" 2>&1
    $P ipvsadm -Ln --tun-info >"$1/tun.txt" 2>&1
    $P ipvsadm -Lnc >"$1/conns.txt" 2>&1
    $P ipvsadm -Ln --timeout >"$1/timeout.txt" 2>&1
    $P ipvsadm -Ln --daemon >"$1/daemon.txt" 2>&1
    $P cat /proc/net/ip_vs >"$1/proc_ip_vs.txt" 2>&1
}

# snap_rate DIR: the kernel's rate estimates, per service and destination and in the global
# stats (which hold the global counters too). They keep changing on the estimator's 2 s tick
# after the counters have settled (an exponential decay toward zero), so callers read them
# immediately around the reading under test: with the other views in the window too, a TCG
# guest took over 2 s and every attempt could straddle a tick (a CI run gave up after 20).
snap_rate() {
    mkdir -p "$1"
    P=$(lab_ns)
    $P ipvsadm -Ln --exact --rate >"$1/rate.txt" 2>&1
    $P cat /proc/net/ip_vs_stats >"$1/global.txt" 2>&1
}

# same_snap A B: equal, ignoring the connection table's expire column (it ticks every second).
same_snap() {
    for f in list stats rate thresholds pconn tun timeout daemon global proc_ip_vs; do
        cmp -s "$1/$f.txt" "$2/$f.txt" || return 1
    done
    [ "$(awk '{$2=""; print}' "$1/conns.txt" | sort)" = "$(awk '{$2=""; print}' "$2/conns.txt" | sort)" ]
}

# collect [DIR]: wait for counters to settle, then read ipvsadm, `ipvs-herald dump --json
# --conns` (netlink, then `--source procfs`), a scrape of the running daemon's /metrics
# (metrics.txt, when herald_daemon_start ran), and ipvsadm again, until both ipvsadm readings agree (so the dump saw that state).
collect() {
    out=${1:-$D}
    if ! settle_stats; then
        echo "counters did not settle" >"$out/unsettled"
    fi
    i=0
    while [ $i -lt 20 ]; do
        i=$((i + 1))
        rm -rf "$out/a" "$out/b"
        snap "$out/a"
        snap_rate "$out/a"
        # With LAB_NETNS the dumps read that namespace from here (`--netns`), as the daemon
        # does with `[reader] netns`; the running daemon's scrape is of this namespace, so
        # there is none.
        if "$HERALD" --config "$HERALD_TOML" dump --json --conns ${LAB_NETNS:+--netns "$LAB_NETNS"} >"$out/dump.json" 2>"$out/dump.err"; then
            echo 0 >"$out/dump.rc"
        else
            echo $? >"$out/dump.rc"
        fi
        if "$HERALD" --config "$HERALD_TOML" dump --json --conns --source procfs ${LAB_NETNS:+--netns "$LAB_NETNS"} >"$out/dump-procfs.json" 2>"$out/dump-procfs.err"; then
            echo 0 >"$out/dump-procfs.rc"
        else
            echo $? >"$out/dump-procfs.rc"
        fi
        [ -n "${LAB_NETNS:-}" ] || herald_scrape "$out/metrics.txt"
        snap_rate "$out/b"
        snap "$out/b"
        if same_snap "$out/a" "$out/b"; then
            mv "$out"/a/* "$out/"
            rm -rf "$out/a" "$out/b"
            echo "$i" >"$out/attempts"
            return 0
        fi
        sleep 0.3
    done
    mv "$out"/a/* "$out/"
    echo "inconsistent" >"$out/attempts"
    echo "collect: ipvsadm readings never agreed around the dump after $i attempts" >&2
    return 1
}

# run_scrape_once CONFIG PORT OUT LOG [USER]: `ipvs-herald run` with CONFIG (which listens on
# 127.0.0.1:PORT), as USER when given (busybox su: root needs no password, the capabilities
# stay with root), until it is ready (bounded to 60 s); one scrape of /metrics into OUT; then
# stopped. The daemon's output goes to LOG, and LOG is printed when it never became ready.
run_scrape_once() {
    if [ -n "${5:-}" ]; then
        su -s /bin/sh "$5" -c "exec $HERALD --config $1 run" >"$4" 2>&1 &
    else
        "$HERALD" --config "$1" run >"$4" 2>&1 &
    fi
    pid=$!
    echo $pid >>/tmp/lab.pids
    n=0
    until timeout 5 wget -q -O /dev/null "http://127.0.0.1:$2/-/ready" 2>/dev/null; do
        n=$((n + 1))
        [ $n -lt 60 ] && kill -0 $pid 2>/dev/null || { cat "$4"; return 1; }
        sleep 1
    done
    timeout 200 wget -q -O "$3" "http://127.0.0.1:$2/metrics" || return 1
    kill $pid
}

# capture_netlink: keep the raw netlink replies of one dump (the reader's hidden option).
capture_netlink() {
    mkdir -p "$D/netlink"
    if "$HERALD" --config "$HERALD_TOML" dump --capture-netlink "$D/netlink" >"$D/netlink.out" 2>"$D/netlink.err"; then
        echo 0 >"$D/netlink.rc"
    else
        echo $? >"$D/netlink.rc"
    fi
}

# interactive_setup: the NAT sample topology, bounded background traffic, and the daemon.
interactive_setup() {
    lab_reset
    client_add
    vip_add 203.0.113.10
    rs_add r1 192.0.2.11
    rs_add r2 192.0.2.12
    http_start r1
    http_start r2
    ipvsadm -A -t 203.0.113.10:80 -s wrr
    ipvsadm -a -t 203.0.113.10:80 -r 192.0.2.11:80 -m -w 2
    ipvsadm -a -t 203.0.113.10:80 -r 192.0.2.12:80 -m -w 1
    ipvsadm -A -u 203.0.113.10:53 -s rr
    ipvsadm -a -u 203.0.113.10:53 -r 192.0.2.11:53 -m
    ipvsadm -a -u 203.0.113.10:53 -r 192.0.2.12:53 -m
    # One request every 2 s for at most 2 hours.
    (n=0; while [ $n -lt 3600 ]; do n=$((n+1)); client_http 203.0.113.10 80 1 >/dev/null; client_udp 203.0.113.10 53 1 >/dev/null; sleep 2; done) &
    echo $! >>/tmp/lab.pids
    for i in /sys/class/net/eth*; do
        [ -e "$i" ] || continue
        dev=$(basename "$i")
        ip link set "$dev" up
        ip addr add 10.0.2.15/24 dev "$dev"
        ip route add default via 10.0.2.2 dev "$dev"
    done
    cfg=""
    [ -e /etc/ipvs-herald/ipvs-herald.toml ] && cfg="--config /etc/ipvs-herald/ipvs-herald.toml"
    # shellcheck disable=SC2086
    "$HERALD" $cfg run >/tmp/herald.log 2>&1 &
    echo $! >/tmp/herald.pid
    sleep 2
    if kill -0 "$(cat /tmp/herald.pid)" 2>/dev/null; then
        echo "lab: ipvs-herald run is up (log: /tmp/herald.log); host: curl http://127.0.0.1:9639/metrics"
    else
        echo "lab: ipvs-herald run exited: $(cat /tmp/herald.log)"
    fi
    ipvsadm -Ln --stats
}

# scrape PORT FILE: GET /metrics from the daemon in this namespace (busybox nc; its wget
# segfaults in the static build). Fails unless the answer is HTTP 200. The request side stays
# open until the answer is complete (the exporter drops the answer when the client half-closes
# first); nc returns when the server closes.
scrape() {
    rm -f /tmp/scrape.fifo
    mkfifo /tmp/scrape.fifo
    (printf 'GET /metrics HTTP/1.0\r\nHost: lab\r\n\r\n'; exec sleep 60) >/tmp/scrape.fifo &
    w=$!
    timeout 60 nc 127.0.0.1 "$1" </tmp/scrape.fifo >"$2" 2>/dev/null
    kill "$w" 2>/dev/null
    head -n 1 "$2" | grep -q ' 200 '
}

# collect_metrics [PORT]: like collect, but around a Prometheus scrape of `ipvs-herald run`
# (metrics.txt) instead of a dump.
collect_metrics() {
    port=${1:-9639}
    out=$D
    if ! settle_stats; then
        echo "counters did not settle" >"$out/unsettled"
    fi
    i=0
    while [ $i -lt 20 ]; do
        i=$((i + 1))
        rm -rf "$out/a" "$out/b"
        snap "$out/a"
        snap_rate "$out/a"
        if ! scrape "$port" "$out/metrics.http"; then
            echo "scrape of 127.0.0.1:$port failed: $(head -c 300 "$out/metrics.http")" >&2
            return 1
        fi
        snap_rate "$out/b"
        snap "$out/b"
        if same_snap "$out/a" "$out/b"; then
            mv "$out"/a/* "$out/"
            rm -rf "$out/a" "$out/b"
            echo "$i" >"$out/attempts"
            # Body only (after the blank line ending the HTTP header).
            awk 'body {print} /^\r?$/ {body=1}' "$out/metrics.http" >"$out/metrics.txt"
            return 0
        fi
        sleep 0.3
    done
    mv "$out"/a/* "$out/"
    echo "inconsistent" >"$out/attempts"
    echo "collect_metrics: ipvsadm readings never agreed around the scrape after $i attempts" >&2
    return 1
}
