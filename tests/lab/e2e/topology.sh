# shellcheck shell=sh
#
# The all-active ECMP cluster of the e2e lab (busybox sh, sourced after /lab/lib.sh):
#
#   cl (198.51.100.2) ── rt (198.51.100.1 | br0 192.0.2.1, BIRD 2, ECMP kernel routes)
#                            br0 ── d1 192.0.2.11  director: IPVS (mh, DR, sloppy_tcp) + ipvs-herald run
#                                ── d2 192.0.2.12  director: IPVS (mh, DR, sloppy_tcp) + ipvs-herald run
#                                ── r1 192.0.2.21  real server: busybox httpd, VIPs on lo
#                                ── r2 192.0.2.22  real server: busybox httpd, VIPs on lo
#
# Both directors carry the same VIPs (203.0.113.10 group "web", 203.0.113.11 group "api") on lo
# and the same IPVS table (Maglev hashing over the same real servers, LVS-DR): a flow that moves
# from one director to the other when a path appears or disappears is scheduled to the same real
# server (net.ipv4.vs.sloppy_tcp=1 lets the other director take it mid-stream), so a withdrawal
# itself breaks no request. The router hashes flows over both next hops by L4 ports
# (fib_multipath_hash_policy=1).
#
# IPv6: the LAN also carries 2001:db8:2::/64 (rt ::1, dN ::1N, rN ::2N) and the client link
# 2001:db8:1::/64; VIP 2001:db8:10::10 (group "web6") is served like web by both directors and
# announced over the same IPv4 BGP sessions (MP-BGP IPv6 unicast, next hop 2001:db8:2::1N).
# Director 1 alone has group "mgd": VIP 203.0.113.12 with vip_address = "manage" (ipvs-herald
# adds it to the dummy interface herald0 before announcing and removes it after withdrawing;
# it is on lo of the real servers for LVS-DR, but not on the director's lo).
# Prometheus (from the Debian package) runs in rt and scrapes both directors every 2 s.
# Groups "kat" (203.0.113.13) and "kah" (203.0.113.14) are keepalived's: it owns their virtual
# servers on port 8080 of both directors and health-checks a second httpd on r1 and r2 (e2e.sh
# starts it in its own step).
# The groups web6, mgd, kat and kah, the IPv6 family on the sessions and Prometheus are only there with
# E2E_EXTRAS=1 (e2e.sh sets it; the benchmark, bench.sh, keeps the two-group directors it measured).

E2E=${E2E:-/tmp/e2e}
E2E_OUT=${E2E_OUT:-$R/e2e}
VIP_WEB=203.0.113.10
VIP_API=203.0.113.11
VIP_MGD=203.0.113.12
VIP_WEB6=2001:db8:10::10
# keepalived's virtual servers (E2E_EXTRAS=1): group "kat" (TCP_CHECK, inhibit_on_failure) and
# group "kah" (HTTP_GET, removal), both to a second busybox httpd on port KA_PORT of r1 and r2.
VIP_KAT=203.0.113.13
VIP_KAH=203.0.113.14
KA_PORT=8080
RT_LAN6=2001:db8:2::1
CLIENT6=2001:db8:1::2
RT_LAN=192.0.2.1
CLIENT=198.51.100.2
# Timers of every VIP group (the Rust test reads them back from timers.txt).
E2E_INTERVAL_MS=${E2E_INTERVAL_MS:-100}
E2E_RISE=${E2E_RISE:-3}
E2E_FALL=${E2E_FALL:-3}
E2E_HOLD_DOWN_S=${E2E_HOLD_DOWN_S:-3}
E2E_HOLD_TIME=${E2E_HOLD_TIME:-9}
E2E_SHUTDOWN_DRAIN_S=${E2E_SHUTDOWN_DRAIN_S:-2}
E2E_EXTRAS=${E2E_EXTRAS:-0}
# E2E_EXTRAS=1: director 1's session to the router has BFD at 100 ms x 3 for its freeze steps
# (the issue's figure: detection in 300 ms; E2E_D1_BFD), director 2's has graceful restart and
# no BFD (the freeze steps compare
# BFD with the hold timer; the restart step keeps director 2's routes). One session cannot have
# both with BIRD 2 as the router: `bfd on` flushes our routes when the daemon stops for a
# restart, and `bfd graceful` would keep a frozen director's path for the restart time (README,
# "Restarting without moving traffic").
E2E_BFD_MS=${E2E_BFD_MS:-100}
E2E_BFD_MULT=${E2E_BFD_MULT:-3}
E2E_GR_RESTART_S=${E2E_GR_RESTART_S:-30}
E2E_BFD="bfd = { desired_min_tx = \"${E2E_BFD_MS}ms\", required_min_rx = \"${E2E_BFD_MS}ms\", detect_multiplier = $E2E_BFD_MULT }"
E2E_GR="graceful_restart = { restart_time = $E2E_GR_RESTART_S }"
# 1 while director 1 has BFD (e2e.sh's d1_bfd, for its freeze steps only).
E2E_D1_BFD=${E2E_D1_BFD:-0}
# keepalived's checker timers in the lab (the e2e README compares them with recommended ones).
E2E_KA_DELAY_LOOP=${E2E_KA_DELAY_LOOP:-1}
E2E_KA_CONNECT_TIMEOUT=${E2E_KA_CONNECT_TIMEOUT:-1}
E2E_KA_RETRY=${E2E_KA_RETRY:-1}
E2E_KA_DELAY_BEFORE_RETRY=${E2E_KA_DELAY_BEFORE_RETRY:-1}

# Seconds since boot with centisecond resolution, without a fork.
now() {
    read -r _up _ </proc/uptime
    echo "$_up"
}

# ev NAME [DETAILS]: one line of the event log the Rust test reads.
ev() {
    echo "$(now) $*" >>"$E2E_OUT/events.txt"
    echo "e2e: $(now) $*"
}

# netns_sysctl NS KEY=VALUE...
netns_sysctl() {
    _ns=$1
    shift
    for _kv in "$@"; do
        ip netns exec "$_ns" sysctl -qw "$_kv" || echo "e2e: sysctl $_kv failed in $_ns" >&2
    done
}

# lan_join NS ADDR [ADDR6]: veth from the router's bridge to NS, which gets ADDR/24 (and
# ADDR6/64) and default routes.
lan_join() {
    ns_new "$1" || return 1
    ip -n rt link add "p-$1" type veth peer name e0 netns "$1" || return 1
    ip -n rt link set "p-$1" master br0 up || return 1
    ip -n "$1" addr add "$2/24" dev e0
    ip -n "$1" link set e0 up
    ip -n "$1" route add default via "$RT_LAN"
    if [ -n "${3:-}" ]; then
        ip -n "$1" addr add "$3/64" dev e0 nodad
        ip -n "$1" -6 route add default via "$RT_LAN6"
    fi
    netns_sysctl "$1" net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
        net.ipv4.conf.e0.rp_filter=0
}

# vip_lo NS: the VIPs on lo, no ARP answers for them (directors and real servers alike).
vip_lo() {
    ip -n "$1" addr add "$VIP_WEB/32" dev lo
    ip -n "$1" addr add "$VIP_API/32" dev lo
    ip -n "$1" addr add "$VIP_WEB6/128" dev lo nodad
    netns_sysctl "$1" net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
        net.ipv4.conf.e0.arp_ignore=1 net.ipv4.conf.e0.arp_announce=2
}

# ipvs_tables NS: the director's IPVS table (identical on both directors).
ipvs_tables() {
    netns_sysctl "$1" net.ipv4.vs.sloppy_tcp=1
    for v in $VIP_WEB $VIP_API; do
        ip netns exec "$1" ipvsadm -A -t "$v:80" -s mh -b mh-port || return 1
        ip netns exec "$1" ipvsadm -a -t "$v:80" -r 192.0.2.21:80 -g -w 1 || return 1
        ip netns exec "$1" ipvsadm -a -t "$v:80" -r 192.0.2.22:80 -g -w 1 || return 1
    done
    ip netns exec "$1" ipvsadm -A -t "[$VIP_WEB6]:80" -s mh -b mh-port || return 1
    ip netns exec "$1" ipvsadm -a -t "[$VIP_WEB6]:80" -r "[2001:db8:2::21]:80" -g -w 1 || return 1
    ip netns exec "$1" ipvsadm -a -t "[$VIP_WEB6]:80" -r "[2001:db8:2::22]:80" -g -w 1 || return 1
    if [ "$1" = d1 ]; then
        ip netns exec "$1" ipvsadm -A -t "$VIP_MGD:80" -s mh -b mh-port || return 1
        ip netns exec "$1" ipvsadm -a -t "$VIP_MGD:80" -r 192.0.2.21:80 -g -w 1 || return 1
        ip netns exec "$1" ipvsadm -a -t "$VIP_MGD:80" -r 192.0.2.22:80 -g -w 1 || return 1
    fi
}

# pool_weight NS VIP WEIGHT: every real server of VIP's (IPv4) service on NS to WEIGHT, in one
# ipvsadm run (ipvsadm -R with -e lines), so the pool changes at one instant.
pool_weight() {
    printf -- '-e -t %s:80 -r 192.0.2.21:80 -g -w %s\n-e -t %s:80 -r 192.0.2.22:80 -g -w %s\n' \
        "$2" "$3" "$2" "$3" | ip netns exec "$1" ipvsadm -R
}

# herald_config N AS: /tmp/e2e/dN/herald.toml for director dN (192.0.2.1N).
herald_config() {
    d=$E2E/d$1
    mkdir -p "$d"
    cat >"$d/herald.toml" <<EOF
[log]
level = "info"

[exporter]
# Every address: Prometheus in the router's namespace scrapes 192.0.2.1N:9639.
listen = "0.0.0.0:9639"

[reader]
timeout = "10s"

[announcer]
backend = "bgp"
admin_socket = "$d/admin.sock"
maintenance_file = "$d/maintenance"
# One per director: the namespaces share the VM's file system.
state_file = "$d/state.json"
drain_time = "2s"
shutdown_drain_time = "${E2E_SHUTDOWN_DRAIN_S}s"
shutdown_timeout = "10s"

[announcer.bgp]
router_id = "192.0.2.1$1"
local_as = $2
listen = "192.0.2.1$1:179"

[[announcer.bgp.peers]]
name = "rt"
address = "$RT_LAN"
remote_as = 65000
local_address = "192.0.2.1$1"
hold_time = $E2E_HOLD_TIME
connect_retry = { min = 0.3, max = 2.0 }
$([ "$E2E_EXTRAS" = 1 ] && printf 'families = ["ipv4", "ipv6"]\nnext_hop_v6 = "2001:db8:2::1%s"' "$1")
$([ "$E2E_EXTRAS" = 1 ] && [ "$1" = 1 ] && [ "$E2E_D1_BFD" = 1 ] && echo "$E2E_BFD")
$([ "$E2E_EXTRAS" = 1 ] && [ "$1" = 2 ] && echo "$E2E_GR")

[[announcer.vip_groups]]
name = "web"
prefixes = ["$VIP_WEB/32"]
interval = "${E2E_INTERVAL_MS}ms"
rise = $E2E_RISE
fall = $E2E_FALL
hold_down = "${E2E_HOLD_DOWN_S}s"

[[announcer.vip_groups]]
name = "api"
prefixes = ["$VIP_API/32"]
interval = "${E2E_INTERVAL_MS}ms"
rise = $E2E_RISE
fall = $E2E_FALL
hold_down = "${E2E_HOLD_DOWN_S}s"
${E2E_API_UP:-}
EOF
    [ "$E2E_EXTRAS" = 1 ] || return 0
    cat >>"$d/herald.toml" <<EOF

[[announcer.vip_groups]]
name = "web6"
prefixes = ["$VIP_WEB6/128"]
interval = "${E2E_INTERVAL_MS}ms"
rise = $E2E_RISE
fall = $E2E_FALL
hold_down = "${E2E_HOLD_DOWN_S}s"
EOF
    if [ "$1" = 1 ]; then
        cat >>"$d/herald.toml" <<EOF

[[announcer.vip_groups]]
name = "mgd"
prefixes = ["$VIP_MGD/32"]
interval = "${E2E_INTERVAL_MS}ms"
rise = $E2E_RISE
fall = $E2E_FALL
hold_down = "1s"
vip_address = "manage"
manage_interface = "herald0"
address_linger = "1s"
EOF
    fi
    # keepalived's two virtual servers, one group each. down_count = 2 of 2 real servers: losing
    # one (weight 0 with inhibit_on_failure, or removed) takes the group below its threshold.
    for _g in "kat $VIP_KAT" "kah $VIP_KAH"; do
        cat >>"$d/herald.toml" <<EOF

[[announcer.vip_groups]]
name = "${_g% *}"
prefixes = ["${_g#* }/32"]
interval = "${E2E_INTERVAL_MS}ms"
rise = $E2E_RISE
fall = $E2E_FALL
hold_down = "${E2E_HOLD_DOWN_S}s"
pool = { down_count = 2 }
EOF
    done
}

# ka_real_server CHECK IP: one real_server block of keepalived.conf. CHECK is "tcp" (TCP_CHECK
# with inhibit_on_failure: weight 0 on failure, the destination stays) or "http" (HTTP_GET of
# /index.html, status 200; without inhibit_on_failure the destination is removed on failure).
ka_real_server() {
    echo "    real_server $2 $KA_PORT {"
    echo "        weight 1"
    if [ "$1" = tcp ]; then
        echo "        inhibit_on_failure"
        echo "        TCP_CHECK {"
    else
        echo "        HTTP_GET {"
        echo "            url {"
        echo "                path /index.html"
        echo "                status_code 200"
        echo "            }"
    fi
    echo "            connect_timeout $E2E_KA_CONNECT_TIMEOUT"
    echo "            retry $E2E_KA_RETRY"
    echo "            delay_before_retry $E2E_KA_DELAY_BEFORE_RETRY"
    echo "        }"
    echo "    }"
}

# keepalived_config N: /tmp/e2e/dN/keepalived.conf, the checker side only (no VRRP): keepalived
# owns the virtual servers of VIP_KAT (TCP_CHECK) and VIP_KAH (HTTP_GET), mh with mh-port and
# LVS-DR like the rest of the table, and health-checks r1 and r2 on KA_PORT.
keepalived_config() {
    mkdir -p "$E2E/d$1"
    {
        printf 'global_defs {\n    router_id d%s\n}\n' "$1"
        for _vs in "$VIP_KAT tcp" "$VIP_KAH http"; do
            _vip=${_vs% *}
            _chk=${_vs#* }
            echo "virtual_server $_vip $KA_PORT {"
            echo "    delay_loop $E2E_KA_DELAY_LOOP"
            echo "    lvs_sched mh"
            echo "    mh-port"
            echo "    lvs_method DR"
            echo "    protocol TCP"
            ka_real_server "$_chk" 192.0.2.21
            ka_real_server "$_chk" 192.0.2.22
            echo "}"
        done
    } >"$E2E/d$1/keepalived.conf"
}

# keepalived_start N: keepalived's checker process only (-C) in director dN, in the foreground
# (-n, so $! is its parent), logging to stdout (-l -D; -G: no syslog); pid files of its own.
keepalived_start() {
    # /sbin/ip, not lib.sh's ip(): $! must be keepalived (see herald_start).
    /sbin/ip netns exec "d$1" keepalived -C -n -l -D -G -f "$E2E/d$1/keepalived.conf" \
        -p "$E2E/d$1/keepalived.pid" -c "$E2E/d$1/keepalived-checkers.pid" \
        >>"$E2E/d$1/keepalived.log" 2>&1 &
    echo $! >"$E2E/d$1/keepalived.ppid"
    echo $! >>/tmp/lab.pids
}

# ka_httpd N: real server rN's second busybox httpd, on KA_PORT (the one keepalived checks and
# the e2e kills); its pid in /tmp/e2e/rN-ka.pid.
ka_httpd() {
    /sbin/ip netns exec "r$1" httpd -f -p "$KA_PORT" -h "$E2E/www-r$1" &
    echo $! >"$E2E/r$1-ka.pid"
    echo $! >>/tmp/lab.pids
}

# herald_start N: `ipvs-herald run` in director dN; its pid in /tmp/e2e/dN/pid.
herald_start() {
    d=$E2E/d$1
    # /sbin/ip, not the ip() function of lib.sh: a function would run in a subshell and $! would
    # be that shell, not the daemon (kill -9 must hit the daemon).
    /sbin/ip netns exec "d$1" "$HERALD" --config "$d/herald.toml" run >>"$d/herald.log" 2>&1 &
    echo $! >"$d/pid"
    echo $! >>/tmp/lab.pids
}

# bird_config: the router. eBGP to both directors (passive: the directors connect), the
# GRACEFUL_SHUTDOWN community honoured (RFC 8326: local-pref 0), paths merged into one
# multipath kernel route.
bird_config() {
    E2E_BIRD_BFD=""
    E2E_BIRD_D1=""
    E2E_BIRD_D2=""
    if [ "$E2E_EXTRAS" = 1 ]; then
        # d1 (while E2E_D1_BFD=1): BFD (a BFD Down closes the session and flushes, `bfd on`);
        # d2: graceful-restart helper (BIRD's default, `aware`, written out).
        E2E_BIRD_BFD="protocol bfd { debug { states, events }; interface \"br0\" { min rx interval $E2E_BFD_MS ms; min tx interval $E2E_BFD_MS ms; idle tx interval 1 s; multiplier $E2E_BFD_MULT; }; }"
        [ "$E2E_D1_BFD" = 1 ] && E2E_BIRD_D1="bfd on; "
        E2E_BIRD_D2="graceful restart aware; "
    fi
    cat >"$E2E/bird.conf" <<EOF
router id $RT_LAN;
log "$E2E/bird.log" all;
timeformat protocol iso long ms;
timeformat route iso long ms;
timeformat log iso long ms;
protocol device { scan time 10; }
$E2E_BIRD_BFD
protocol kernel k4 {
    ipv4 { import none; export all; };
    merge paths on;
}
protocol kernel k6 {
    ipv6 { import none; export all; };
    merge paths on;
}
filter from_director {
    if (65535, 0) ~ bgp_community then bgp_local_pref = 0;
    accept;
}
template bgp director {
    local $RT_LAN as 65000;
    passive on;
    hold time $E2E_HOLD_TIME;
    keepalive time 1;
    # After a session ended in an error (a BFD Down, an expired hold timer: every freeze step),
    # BIRD's default refuses the neighbour for 60 s, then 120 s, ... (dampening); the freezes
    # would then measure that, not the failover.
    error wait time 1, 2;
    debug { states, events, routes };
    ipv4 { import filter from_director; export none; };
    ipv6 { import filter from_director; export none; };
}
protocol bgp d1 from director { neighbor 192.0.2.11 as 65001; $E2E_BIRD_D1}
protocol bgp d2 from director { neighbor 192.0.2.12 as 65002; $E2E_BIRD_D2}
EOF
}

birdc() {
    ip netns exec rt birdcl -s "$E2E/bird.ctl" "$@"
}

# e2e_topology: every namespace, BIRD, IPVS tables and httpd; no ipvs-herald yet.
e2e_topology() {
    mkdir -p "$E2E" "$E2E_OUT"
    ns_new rt || return 1
    ip -n rt link add br0 type bridge || return 1
    ip -n rt link set br0 up
    ip -n rt addr add "$RT_LAN/24" dev br0
    netns_sysctl rt net.ipv4.ip_forward=1 net.ipv4.fib_multipath_hash_policy=1 \
        net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
        net.ipv6.conf.all.forwarding=1 net.ipv6.fib_multipath_hash_policy=1
    ip -n rt addr add "$RT_LAN6/64" dev br0 nodad
    ns_new cl || return 1
    ip -n rt link add p-cl type veth peer name e0 netns cl || return 1
    ip -n rt addr add 198.51.100.1/24 dev p-cl
    ip -n rt link set p-cl up
    ip -n cl addr add "$CLIENT/24" dev e0
    ip -n cl link set e0 up
    ip -n cl route add default via 198.51.100.1
    ip -n rt addr add 2001:db8:1::1/64 dev p-cl nodad
    ip -n cl addr add "$CLIENT6/64" dev e0 nodad
    ip -n cl -6 route add default via 2001:db8:1::1
    for n in 1 2; do
        lan_join "d$n" "192.0.2.1$n" "2001:db8:2::1$n" || return 1
        vip_lo "d$n"
        ipvs_tables "d$n" || return 1
        lan_join "r$n" "192.0.2.2$n" "2001:db8:2::2$n" || return 1
        vip_lo "r$n"
        ip -n "r$n" addr add "$VIP_MGD/32" dev lo
        mkdir -p "$E2E/www-r$n"
        echo "r$n" >"$E2E/www-r$n/index.html"
        ip netns exec "r$n" httpd -f -p 80 -h "$E2E/www-r$n" &
        echo $! >>/tmp/lab.pids
        if [ "$E2E_EXTRAS" = 1 ]; then
            for _v in $VIP_KAT $VIP_KAH; do
                ip -n "d$n" addr add "$_v/32" dev lo
                ip -n "r$n" addr add "$_v/32" dev lo
            done
            ka_httpd "$n"
        fi
    done
    if [ "$E2E_EXTRAS" = 1 ]; then
        # Started by e2e.sh's keepalived step only: until then kat and kah have no IPVS service
        # and stay withdrawn, and the other steps run with the load they always had.
        keepalived_config 1
        keepalived_config 2
    fi
    herald_config 1 65001
    herald_config 2 65002
    bird_config
    ip netns exec rt bird -f -c "$E2E/bird.conf" -s "$E2E/bird.ctl" -P "$E2E/bird.pid" >"$E2E/bird.out" 2>&1 &
    echo $! >>/tmp/lab.pids
    [ "$E2E_EXTRAS" = 1 ] && prom_start
    printf 'interval_ms %s\nrise %s\nfall %s\nhold_down_s %s\nhold_time_s %s\nshutdown_drain_s %s\n' \
        "$E2E_INTERVAL_MS" "$E2E_RISE" "$E2E_FALL" "$E2E_HOLD_DOWN_S" "$E2E_HOLD_TIME" \
        "$E2E_SHUTDOWN_DRAIN_S" >"$E2E_OUT/timers.txt"
    printf 'bfd_ms %s\nbfd_mult %s\ngr_restart_s %s\n' "$E2E_BFD_MS" "$E2E_BFD_MULT" \
        "$E2E_GR_RESTART_S" >>"$E2E_OUT/timers.txt"
    printf 'ka_delay_loop_s %s\nka_connect_timeout_s %s\nka_retry %s\nka_delay_before_retry_s %s\n' \
        "$E2E_KA_DELAY_LOOP" "$E2E_KA_CONNECT_TIMEOUT" "$E2E_KA_RETRY" \
        "$E2E_KA_DELAY_BEFORE_RETRY" >>"$E2E_OUT/timers.txt"
}

# before T: true while /proc/uptime is below T (seconds since boot).
before() {
    awk -v a="$(now)" -v b="$1" 'BEGIN{exit !(a<b)}'
}

# deadline S: /proc/uptime S seconds from now.
deadline() {
    awk -v a="$(now)" -v b="$1" 'BEGIN{print a+b}'
}

# nh_count VIP: next hops of the router's kernel route to VIP (0 when there is none).
nh_count() {
    case "$1" in
    *:*) _out=$(ip -n rt -6 route show "$1/128" 2>/dev/null) ;;
    *) _out=$(ip -n rt route show "$1/32" 2>/dev/null) ;;
    esac
    if [ -z "$_out" ]; then
        echo 0
        return
    fi
    _n=$(echo "$_out" | grep -c 'nexthop via')
    [ "$_n" -eq 0 ] && _n=1
    echo "$_n"
}

# wait_nh VIP N TIMEOUT_S LABEL: poll the router until VIP has N next hops; logs the event
# "route LABEL VIP N" at the first observation, or "timeout LABEL ..." after TIMEOUT_S.
wait_nh() {
    _t0=$(now)
    _end=$(awk -v a="$_t0" -v b="$3" 'BEGIN{print a+b}')
    while :; do
        if [ "$(nh_count "$1")" = "$2" ]; then
            ev route "$4" "$1" "$2"
            return 0
        fi
        if awk -v a="$(now)" -v b="$_end" 'BEGIN{exit !(a>b)}'; then
            ev timeout "$4" "$1" "want=$2" "have=$(nh_count "$1")"
            ip -n rt route show >>"$E2E_OUT/timeouts.txt" 2>&1
            return 1
        fi
        usleep 20000
    done
}

# client_start MAX_REQUESTS MAX_SECONDS: sequential HTTP/1.0 GETs from cl, in turn to the web,
# api and web6 (IPv6) VIPs, each bounded to 3 s, until $E2E/stop-client exists or either bound is reached.
# One line per request in requests.txt: start end vip ok|fail body (ok only with the real
# server's name as the body).
client_start() {
    rm -f "$E2E/stop-client"
    ip netns exec cl sh -c '
        n=0
        read -r t0 _ </proc/uptime
        end=${t0%.*}; end=$((end + '"$2"'))
        while [ $n -lt '"$1"' ] && [ ! -e '"$E2E"'/stop-client ]; do
            read -r ts _ </proc/uptime
            [ "${ts%.*}" -ge "$end" ] && break
            n=$((n + 1))
            case $((n % 3)) in
            0) vip='"$VIP_WEB"' ;;
            1) vip='"$VIP_API"' ;;
            *) vip='"$VIP_WEB6"' ;;
            esac
            resp=$(printf "GET / HTTP/1.0\r\n\r\n" | timeout 3 nc $vip 80 2>/dev/null)
            read -r te _ </proc/uptime
            case "$resp" in
            *"200 OK"*) body=$(echo "$resp" | tail -n 1 | tr -d "\r") ;;
            *) body= ;;
            esac
            # A 200 without its body (headers, then the connection cut) is a failed request.
            if [ -n "$body" ]; then echo "$ts $te $vip ok $body"; else echo "$ts $te $vip fail -"; fi
        done' >>"$E2E_OUT/requests.txt" 2>>"$E2E_OUT/client.err" &
    echo $! >"$E2E/client.pid"
    echo $! >>/tmp/lab.pids
}

client_stop() {
    touch "$E2E/stop-client"
    _i=0
    while kill -0 "$(cat "$E2E/client.pid")" 2>/dev/null && [ $_i -lt 100 ]; do
        usleep 100000
        _i=$((_i + 1))
    done
}

# conns NS VIP: the Conns counter of VIP's service on director NS.
conns() {
    case "$2" in
    *:*) _svc="[$2]:80" ;;
    *) _svc="$2:80" ;;
    esac
    ip netns exec "$1" ipvsadm -Ln --stats --exact -t "$_svc" | awk '$1 == "TCP" {print $3; exit}'
}

# bird_proto PROTO: BIRD's protocol PROTO as "state since-date since-time info".
bird_proto() {
    birdc show protocols "$1" | awk -v p="$1" '$1 == p {print $4, $5, $6, $7}'
}

# prom_start: Prometheus in the router's namespace, scraping both directors' /metrics every 2 s
# and evaluating the lab copy of the announcer rules (every `for:` shortened to 2s, see
# lab_e2e_prom_prepare) every second. Its API answers on 127.0.0.1:9090 inside rt. The eight-
# director cluster (tests/lab/cluster) sets PROM_TARGETS (the YAML list's items) and PROM_RULES.
prom_start() {
    _prom_targets='"192.0.2.11:9639", "192.0.2.12:9639"'
    [ -n "${PROM_TARGETS:-}" ] && _prom_targets=$PROM_TARGETS
    mkdir -p "$E2E/prom"
    cat >"$E2E/prom/prometheus.yml" <<EOF
global:
  scrape_interval: 2s
  scrape_timeout: 2s
  evaluation_interval: 1s
rule_files:
  - ${PROM_RULES:-/lab/e2e-prom/rules.yml}
scrape_configs:
  - job_name: ipvs-herald
    static_configs:
      - targets: [$_prom_targets]
EOF
    ip netns exec rt prometheus --config.file="$E2E/prom/prometheus.yml" \
        --storage.tsdb.path="$E2E/prom/data" --web.listen-address=127.0.0.1:9090 \
        >"$E2E/prom/prometheus.log" 2>&1 &
    echo $! >>/tmp/lab.pids
}

# prom_get PATH_AND_QUERY FILE: one HTTP GET of Prometheus's API (bounded to 20 s).
prom_get() {
    ip netns exec rt timeout 20 wget -q -O "$2" "http://127.0.0.1:9090$1"
}
