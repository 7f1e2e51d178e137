# shellcheck shell=sh
#
# Eight directors behind one ECMP router (`tests/lab/lab.sh cluster`, guest side; busybox sh,
# sourced by /init after /lab/lib.sh). The cluster of issue 12 ("Eight directors"):
#
#   cl (198.51.100.2 + 64 client addresses .100-.163)
#    └─ rt (198.51.100.1 | br0 192.0.2.1): BIRD 2, eight eBGP sessions merged into one
#       │                                   eight-way ECMP kernel route; Prometheus
#       └─ br0 ── d1..d8 192.0.2.11-.18   directors, AS 65001-65008: IPVS (mh + mh-port, LVS-DR,
#             │                           sloppy_tcp, the same table everywhere) + ipvs-herald run
#             └── r1, r2 192.0.2.21-.22   real servers (busybox httpd, VIPs on lo)
#
# The generic pieces (namespaces on the bridge, VIPs on lo, the IPVS table, next-hop polling,
# the event log, Prometheus) are tests/lab/e2e/topology.sh's; the eight directors' ipvs-herald
# and BIRD configurations are generated here. The steps: all eight next hops; a fixed window of
# traffic from many source addresses (curl --interface), with the daemons' CPU time and memory
# read over it and every director's IPVS counter before and after; Prometheus's view of the
# window through the shipped recording rules; director CLUSTER_DOWN's pool down under a
# continuous client stream (seven next hops), then back (eight). The guest only records;
# tests/lab_cluster.rs asserts.

E2E=/tmp/cluster
E2E_OUT=$R/cluster
# The shipped defaults of a VIP group's check (config/ipvs-herald.toml: interval 1 s, rise 3,
# fall 2) except the hold-down (10 s there), shortened to keep the stage short.
E2E_INTERVAL_MS=1000
E2E_RISE=3
E2E_FALL=2
E2E_HOLD_DOWN_S=3
. /lab/e2e/topology.sh

# Directors, client addresses, client loops, windows (seconds) and the director whose pool goes
# down. The Rust test reads them back from cluster.txt.
CLUSTER_N=8
CLUSTER_SOURCES=64
CLUSTER_LOOPS=${CLUSTER_LOOPS:-4}
CLUSTER_WINDOW_S=${CLUSTER_WINDOW_S:-40}
CLUSTER_BATCH=8
CLUSTER_WINDOW_MAX=${CLUSTER_WINDOW_MAX:-1000}
CLUSTER_DOWN_S=${CLUSTER_DOWN_S:-15}
CLUSTER_DOWN=3
CLUSTER_VIP=$VIP_WEB
PROM_RULES=/lab/cluster-prom/rules.yml

# cluster_herald_config N: $E2E/dN/herald.toml, one VIP group (web) announced to the router.
cluster_herald_config() {
    _d=$E2E/d$1
    mkdir -p "$_d"
    cat >"$_d/herald.toml" <<EOF
[log]
level = "info"

[exporter]
listen = "0.0.0.0:9639"

[reader]
timeout = "10s"

[announcer]
backend = "bgp"
admin_socket = "$_d/admin.sock"
maintenance_file = "$_d/maintenance"
drain_time = "2s"
shutdown_drain_time = "${E2E_SHUTDOWN_DRAIN_S}s"
shutdown_timeout = "10s"

[announcer.bgp]
router_id = "192.0.2.1$1"
local_as = 6500$1
listen = "192.0.2.1$1:179"

[[announcer.bgp.peers]]
name = "rt"
address = "$RT_LAN"
remote_as = 65000
local_address = "192.0.2.1$1"
hold_time = $E2E_HOLD_TIME
connect_retry = { min = 0.3, max = 2.0 }

[[announcer.vip_groups]]
name = "web"
prefixes = ["$CLUSTER_VIP/32"]
interval = "${E2E_INTERVAL_MS}ms"
rise = $E2E_RISE
fall = $E2E_FALL
hold_down = "${E2E_HOLD_DOWN_S}s"
EOF
}

# cluster_bird_config: the router, one passive eBGP session per director; the kernel protocol
# merges up to 16 equal paths into one multipath route (BIRD's default limit, written out: eight
# must fit).
cluster_bird_config() {
    {
        cat <<EOF
router id $RT_LAN;
log "$E2E/bird.log" all;
timeformat protocol iso long ms;
timeformat route iso long ms;
timeformat log iso long ms;
protocol device { scan time 10; }
protocol kernel k4 {
    ipv4 { import none; export all; };
    merge paths on limit 16;
}
template bgp director {
    local $RT_LAN as 65000;
    passive on;
    hold time $E2E_HOLD_TIME;
    keepalive time 1;
    ipv4 { import all; export none; };
}
EOF
        for _n in $(seq "$CLUSTER_N"); do
            echo "protocol bgp d$_n from director { neighbor 192.0.2.1$_n as 6500$_n; }"
        done
    } >"$E2E/bird.conf"
}

# cluster_topology: namespaces, client addresses, IPVS tables, httpd, BIRD and Prometheus; no
# ipvs-herald yet.
cluster_topology() {
    mkdir -p "$E2E" "$E2E_OUT"
    ns_new rt || return 1
    ip -n rt link add br0 type bridge || return 1
    ip -n rt link set br0 up
    ip -n rt addr add "$RT_LAN/24" dev br0
    netns_sysctl rt net.ipv4.ip_forward=1 net.ipv4.fib_multipath_hash_policy=1 \
        net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
    # First: Prometheus takes tens of seconds to start under TCG; it does so while the rest is
    # built (its targets answer once the directors' daemons run).
    PROM_TARGETS=$(for n in $(seq "$CLUSTER_N"); do printf '"192.0.2.1%s:9639", ' "$n"; done)
    PROM_TARGETS=${PROM_TARGETS%, }
    prom_start
    ev prom-started
    ns_new cl || return 1
    ip -n rt link add p-cl type veth peer name e0 netns cl || return 1
    ip -n rt addr add 198.51.100.1/24 dev p-cl
    ip -n rt link set p-cl up
    ip -n cl addr add "$CLIENT/24" dev e0
    # One ip process for all of them (a fork costs tens of milliseconds under TCG).
    for _i in $(seq 0 $((CLUSTER_SOURCES - 1))); do
        echo "addr add 198.51.100.$((100 + _i))/24 dev e0"
    done | ip -n cl -batch - || return 1
    ip -n cl link set e0 up
    ip -n cl route add default via 198.51.100.1
    ev topology-client
    # The directors side by side (each is some 30 forks of ip/ipvsadm, ~3 s under TCG); waited
    # for by pid (a bare `wait` would wait for Prometheus too).
    _jobs=""
    for n in $(seq "$CLUSTER_N"); do
        {
            if lan_join "d$n" "192.0.2.1$n" && vip_lo "d$n" && ipvs_tables "d$n"; then
                cluster_herald_config "$n"
            else
                echo "d$n" >>"$E2E/topology-failed"
            fi
        } &
        _jobs="$_jobs $!"
    done
    for _j in $_jobs; do
        wait "$_j"
    done
    if [ -e "$E2E/topology-failed" ]; then
        echo "cluster: setting up $(cat "$E2E/topology-failed" | tr '\n' ' ')failed" >&2
        return 1
    fi
    ev topology-directors
    for n in 1 2; do
        lan_join "r$n" "192.0.2.2$n" || return 1
        vip_lo "r$n"
        mkdir -p "$E2E/www-r$n"
        echo "r$n" >"$E2E/www-r$n/index.html"
        ip netns exec "r$n" httpd -f -p 80 -h "$E2E/www-r$n" &
        echo $! >>/tmp/lab.pids
    done
    cluster_bird_config
    ip netns exec rt bird -f -c "$E2E/bird.conf" -s "$E2E/bird.ctl" -P "$E2E/bird.pid" >"$E2E/bird.out" 2>&1 &
    echo $! >>/tmp/lab.pids
    printf 'interval_ms %s\nrise %s\nfall %s\nhold_down_s %s\nhold_time_s %s\n' \
        "$E2E_INTERVAL_MS" "$E2E_RISE" "$E2E_FALL" "$E2E_HOLD_DOWN_S" "$E2E_HOLD_TIME" >"$E2E_OUT/timers.txt"
    printf 'directors %s\nsources %s\nloops %s\nbatch %s\nwindow_s %s\ndown_s %s\ndown_director %s\nvip %s\n' \
        "$CLUSTER_N" "$CLUSTER_SOURCES" "$CLUSTER_LOOPS" "$CLUSTER_BATCH" "$CLUSTER_WINDOW_S" "$CLUSTER_DOWN_S" \
        "$CLUSTER_DOWN" "$CLUSTER_VIP" >"$E2E_OUT/cluster.txt"
}

# clients_start PHASE MAX_SECONDS MAX_BATCHES: CLUSTER_LOOPS loops in cl, each running curl
# once per batch: CLUSTER_BATCH HTTP/1.0 GETs of the VIP from one source address, each its own
# TCP connection (its own source port, so the router's L4 hash places each independently), each
# bounded to 3 s. Loop L's k-th batch comes from 198.51.100.(100 + (L + k * LOOPS) mod SOURCES),
# so consecutive batches cycle through all CLUSTER_SOURCES addresses. One curl per request cost
# a fork and exec of curl and its libraries per request, which kept TCG at 1.5-4.5 requests/s.
# The loops stop when $E2E/stop-PHASE exists, MAX_SECONDS have passed or after MAX_BATCHES.
# One line per request in req-PHASE-L.txt: batch-start batch-end source ok|fail body (ok only
# with a real server's name as the body).
clients_start() {
    rm -f "$E2E/stop-$1"
    : >"$E2E/clients-$1.pids"
    _urls=""
    for _i in $(seq "$CLUSTER_BATCH"); do
        _urls="$_urls http://$CLUSTER_VIP/"
    done
    for _l in $(seq 0 $((CLUSTER_LOOPS - 1))); do
        ip netns exec cl sh -c '
            k=0
            read -r t0 _ </proc/uptime
            end=${t0%.*}; end=$((end + '"$2"'))
            while [ $k -lt '"$3"' ] && [ ! -e '"$E2E/stop-$1"' ]; do
                read -r ts _ </proc/uptime
                [ "${ts%.*}" -ge "$end" ] && break
                src=198.51.100.$((100 + ('"$_l"' + k * '"$CLUSTER_LOOPS"') % '"$CLUSTER_SOURCES"'))
                k=$((k + 1))
                out=$(timeout '"$((3 * CLUSTER_BATCH + 5))"' curl -s -m 3 --http1.0 --interface $src \
                    -w " %{http_code}\n" '"$_urls"' 2>/dev/null)
                read -r te _ </proc/uptime
                # Per URL: the body line (absent when the transfer failed), then " CODE".
                echo "$out" | awk -v ts="$ts" -v te="$te" -v src="$src" -v want='"$CLUSTER_BATCH"' "
                    /^ [0-9][0-9][0-9]\$/ { n++; ok = (\$1 == \"200\" && (b == \"r1\" || b == \"r2\"));
                        print ts, te, src, (ok ? \"ok\" : \"fail\"), (ok ? b : \"-\"); b = \"\"; next }
                    { b = \$0 }
                    END { for (; n < want; n++) print ts, te, src, \"fail\", \"-\" }"
            done' >"$E2E_OUT/req-$1-$_l.txt" 2>>"$E2E_OUT/client.err" &
        echo $! >>"$E2E/clients-$1.pids"
        echo $! >>/tmp/lab.pids
    done
}

# clients_wait PHASE [stop]: (with "stop": ask the loops to end, then) wait for them, at most 60 s.
clients_wait() {
    [ "${2:-}" = stop ] && touch "$E2E/stop-$1"
    _i=0
    for _p in $(cat "$E2E/clients-$1.pids"); do
        while kill -0 "$_p" 2>/dev/null && [ $_i -lt 600 ]; do
            usleep 100000
            _i=$((_i + 1))
        done
    done
    for _p in $(cat "$E2E/clients-$1.pids"); do
        kill -0 "$_p" 2>/dev/null && ev error "client loop $_p of $1 still running"
    done
    cat "$E2E_OUT"/req-"$1"-*.txt | sort -n >"$E2E_OUT/requests-$1.txt"
}

# proc_cpu PID: utime + stime of PID in clock ticks (fields 14 and 15 of /proc/PID/stat; the
# command name in field 2 has no blanks here).
proc_cpu() {
    awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null
}

# proc_mem PID: "VmRSS VmHWM" of PID in KiB.
proc_mem() {
    awk '$1 == "VmRSS:" {r = $2} $1 == "VmHWM:" {h = $2} END {print r + 0, h + 0}' "/proc/$1/status" 2>/dev/null
}

# route_snapshot NAME: the router's kernel route to the VIP into route-NAME.txt.
route_snapshot() {
    ip -n rt route show "$CLUSTER_VIP/32" >"$E2E_OUT/route-$1.txt" 2>&1
}

# conns_all LABEL: every director's Conns counter of the VIP's service, "conns LABEL dN COUNT".
conns_all() {
    for n in $(seq "$CLUSTER_N"); do
        ev conns "$1" "d$n" "$(conns "d$n" "$CLUSTER_VIP")"
    done
}

# prom_wait_counters: poll (at most 60 s) until Prometheus's last sample of every director's
# ipvs_service_connections_total for the VIP equals that director's IPVS counter read in the
# same round: then every series' last sample holds the whole window. Those counters are then
# recorded as "conns window-end dN COUNT". (Read in each round, not once: a late packet of a
# window connection that lands on another director is counted there, by `sloppy_tcp`.)
prom_wait_counters() {
    _od=$E2E_OUT/prom
    _end=$(deadline 60)
    while before "$_end"; do
        _want=$(for n in $(seq "$CLUSTER_N"); do echo "d$n=$(conns "d$n" "$CLUSTER_VIP")"; done | sort | tr '\n' ' ')
        prom_get "/api/v1/query?query=ipvs_service_connections_total%7Baddress%3D%22$CLUSTER_VIP%22%7D" "$_od/counters.json"
        _have=$(tr '{' '\n' <"$_od/counters.json" | awk '
            /"instance":"192\.0\.2\.1[0-9]:9639"/ { match($0, /192\.0\.2\.1[0-9]/); d = "d" substr($0, RSTART + 9, 1) }
            d != "" && /"value":\[/ { v = $0; sub(/.*"value":\[[^,]*,"/, "", v); sub(/".*/, "", v); print d "=" v; d = "" }' |
            sort | tr '\n' ' ')
        if [ "$_have" = "$_want" ]; then
            for _kv in $_have; do
                ev conns window-end "${_kv%=*}" "${_kv#*=}"
            done
            ev prom-counters-match "$_have"
            return 0
        fi
        sleep 1
    done
    ev timeout prom-counters "want=$_want" "have=$_have"
    return 1
}

# prom_record: the rules Prometheus loaded, its targets, and the recording rules' answers.
prom_record() {
    _od=$E2E_OUT/prom
    prom_get /api/v1/rules "$_od/rules.json" || ev error "prometheus /api/v1/rules failed"
    prom_get /api/v1/targets "$_od/targets.json" || ev error "prometheus /api/v1/targets failed"
    for _q in ipvs:service_director_share:rate5m ipvs:service_director_imbalance:ratio_rate5m \
        ipvs:service_connections:rate5m; do
        prom_get "/api/v1/query?query=$_q" "$_od/$_q.json" || ev error "prometheus query $_q failed"
    done
    ev prom-queried
}

# targets_up: the number of Prometheus targets whose health is "up".
targets_up() {
    prom_get /api/v1/targets "$E2E/targets.json" && grep -o '"health":"up"' "$E2E/targets.json" | wc -l
}

run_cluster() {
    mkdir -p "$E2E_OUT/prom"
    : >"$E2E_OUT/events.txt"
    ev start
    if ! cluster_topology >"$E2E_OUT/topology.log" 2>&1; then
        ev error "topology setup failed"
        return 1
    fi
    ev topology-up
    cp "$PROM_RULES" "$E2E_OUT/prom/rules.yml"
    for n in $(seq "$CLUSTER_N"); do
        herald_start "$n"
        ev daemon-started "d$n" "$(cat "$E2E/d$n/pid")"
    done
    if ! wait_nh "$CLUSTER_VIP" "$CLUSTER_N" 120 initial; then
        ev error "never announced by all $CLUSTER_N directors"
        cluster_collect
        return 1
    fi
    route_snapshot eight
    birdc show protocols >"$E2E_OUT/bird-protocols.txt" 2>&1
    ip netns exec rt sysctl -n net.ipv4.fib_multipath_hash_policy >"$E2E_OUT/rt-hash-policy.txt" 2>&1
    # Every exporter scraped (at most 90 s: Prometheus starts slowly under TCG), then two scrape
    # intervals more, so that every series starts before the window's first request.
    _end=$(deadline 90)
    while before "$_end" && [ "$(targets_up)" != "$CLUSTER_N" ]; do
        sleep 1
    done
    ev targets-up "$(targets_up)"
    sleep 5

    # The window: shares, IPVS counters around it, the daemons' CPU time and memory over it.
    conns_all window-start
    for n in $(seq "$CLUSTER_N"); do
        ev cpu-start "d$n" "$(proc_cpu "$(cat "$E2E/d$n/pid")")"
    done
    ev window-start
    clients_start window "$CLUSTER_WINDOW_S" "$CLUSTER_WINDOW_MAX"
    clients_wait window
    ev window-end
    for n in $(seq "$CLUSTER_N"); do
        _p=$(cat "$E2E/d$n/pid")
        ev daemon "d$n" "$_p" "$(proc_cpu "$_p")" $(proc_mem "$_p")
    done
    ev daemon bird "$(cat "$E2E/bird.pid")" "$(proc_cpu "$(cat "$E2E/bird.pid")")" $(proc_mem "$(cat "$E2E/bird.pid")")
    # The kernel folds its per-CPU counters into what ipvsadm reads every 2 s (the estimator):
    # read after that (with a margin: TCG delays timers), or the window's last connections may
    # be missing.
    sleep 4
    prom_wait_counters && sleep 3 && prom_record

    # Director CLUSTER_DOWN's pool down under a continuous stream, then back.
    clients_start down 120 10000
    sleep 3
    ev pool-down-begin
    pool_weight "d$CLUSTER_DOWN" "$CLUSTER_VIP" 0 || ev error "ipvsadm -R failed"
    ev pool-down
    if wait_nh "$CLUSTER_VIP" $((CLUSTER_N - 1)) 30 seven; then
        route_snapshot seven
        sleep "$CLUSTER_DOWN_S"
        ev pool-up-begin
        pool_weight "d$CLUSTER_DOWN" "$CLUSTER_VIP" 1 || ev error "ipvsadm -R failed"
        ev pool-up
        wait_nh "$CLUSTER_VIP" "$CLUSTER_N" 30 eight-again && route_snapshot eight-again
        sleep 5
    fi
    clients_wait down stop
    ev scenario-end
    cluster_collect
}

# cluster_collect: logs, configurations and final views into the results.
cluster_collect() {
    for n in $(seq "$CLUSTER_N"); do
        if kill -0 "$(cat "$E2E/d$n/pid" 2>/dev/null)" 2>/dev/null; then ev alive "d$n" 1; else ev alive "d$n" 0; fi
        cp "$E2E/d$n/herald.log" "$E2E_OUT/herald-d$n.log" 2>/dev/null
        cp "$E2E/d$n/herald.toml" "$E2E_OUT/herald-d$n.toml" 2>/dev/null
        ip netns exec "d$n" ipvsadm -Ln --stats --exact >"$E2E_OUT/ipvs-d$n.txt" 2>&1
    done
    ip -n rt route show >"$E2E_OUT/rt-routes.txt" 2>&1
    birdc show protocols all >"$E2E_OUT/bird-protocols-end.txt" 2>&1
    cp "$E2E/bird.log" "$E2E/bird.conf" "$E2E_OUT/" 2>/dev/null
    cp "$E2E/prom/prometheus.log" "$E2E/prom/prometheus.yml" "$E2E_OUT/prom/" 2>/dev/null
    ev done
    lab_reset
}
