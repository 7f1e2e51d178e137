# shellcheck shell=sh
#
# The announcer end to end (`tests/lab/lab.sh e2e`, guest side): the all-active cluster of
# topology.sh, a bounded client stream through the router, and the director-1 events the issue
# lists: pool down (weights 0) and back, kill -9, SIGTERM, drain of one VIP group. Every step is
# bounded by a wait with a generous timeout; the guest only records (events.txt with uptime
# stamps, requests.txt, BIRD and ipvsadm views), tests/lab_e2e.rs asserts.

. /lab/e2e/topology.sh

# bird_routes VIP PROTO: how many routes BIRD holds for VIP from protocol PROTO.
bird_routes() {
    birdc show route protocol "$2" | grep -c "^$1/32 "
}

# snapshot_views LABEL: every view worth keeping at this moment.
snapshot_views() {
    _d="$E2E_OUT/views/$1"
    mkdir -p "$_d"
    ip -n rt route show >"$_d/rt-routes.txt" 2>&1
    birdc show protocols all >"$_d/bird-protocols.txt" 2>&1
    birdc show route all >"$_d/bird-routes.txt" 2>&1
    for n in 1 2; do
        ip netns exec "d$n" ipvsadm -Ln --stats --exact >"$_d/ipvs-d$n.txt" 2>&1
    done
}

# e2e_announced: both groups with two next hops at the router.
e2e_announced() {
    wait_nh "$VIP_WEB" 2 "${1:-60}" "$2-web" && wait_nh "$VIP_API" 2 "${1:-60}" "$2-api"
}

e2e_pool() {
    # Pool of "web" on d1 below its threshold: every weight 0.
    ev pool-down-begin
    pool_weight d1 "$VIP_WEB" 0 || ev error "ipvsadm -e failed"
    ev pool-down
    wait_nh "$VIP_WEB" 1 30 pool-down-gone || return 1
    echo "$(nh_count "$VIP_API")" >"$E2E_OUT/api-nh-during-pool-down.txt"
    # Recover soon after the withdrawal, so that the hold-down decides when the path returns.
    usleep 300000
    ev pool-up-begin
    pool_weight d1 "$VIP_WEB" 1 || ev error "ipvsadm -e failed"
    ev pool-up
    wait_nh "$VIP_WEB" 2 30 pool-up-back || return 1
    sleep 2
}

e2e_kill9() {
    ev kill9 "pid=$(cat "$E2E/d1/pid")"
    kill -9 "$(cat "$E2E/d1/pid")"
    wait_nh "$VIP_WEB" 1 30 kill9-web-gone
    wait_nh "$VIP_API" 1 30 kill9-api-gone
    ev bird-d1 "$(bird_proto d1)"
    sleep 2
    ev restart-d1
    herald_start 1
    e2e_announced 60 restart1 || return 1
    sleep 2
}

e2e_sigterm() {
    pid=$(cat "$E2E/d1/pid")
    ev bird-d1 "$(bird_proto d1)"
    ev sigterm "pid=$pid"
    kill -TERM "$pid"
    gone=""
    withdrawn=""
    end=$(deadline 60)
    # Poll until the process is gone (at most 60 s): the kernel path, BIRD's routes from d1
    # (with the session's state at that moment), the process.
    while before "$end"; do
        if [ -z "$gone" ] && [ "$(nh_count "$VIP_WEB")" = 1 ]; then
            gone=1
            ev route sigterm-path-gone "$VIP_WEB" 1
        fi
        if [ -z "$withdrawn" ] && [ "$(bird_routes "$VIP_WEB" d1)" = 0 ] && [ "$(bird_routes "$VIP_API" d1)" = 0 ]; then
            withdrawn=1
            ev sigterm-bird-withdrawn "$(bird_proto d1)"
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            ev sigterm-exited
            break
        fi
        usleep 20000
    done
    wait "$pid" 2>/dev/null
    ev sigterm-status "$?"
    [ -n "$withdrawn" ] || ev sigterm-bird-withdrawn-after-exit "$(bird_proto d1)"
    sleep 2
    ev restart-d1
    herald_start 1
    e2e_announced 60 restart2 || return 1
    sleep 2
}

e2e_drain() {
    ev bird-d1-before-drain "$(bird_proto d1)"
    ev drain web
    ip netns exec d1 "$HERALD" --config "$E2E/d1/herald.toml" drain web --time 2s \
        >"$E2E_OUT/drain.out" 2>&1
    ev drain-status "$?"
    api_min=2
    seen=""
    end=$(deadline 60)
    # Until BIRD holds no route for web from d1 (the drain's withdrawal), at most 60 s: the API
    # VIP must keep both next hops all along.
    while before "$end"; do
        a=$(nh_count "$VIP_API")
        [ "$a" -lt "$api_min" ] && api_min=$a
        if [ -z "$seen" ] && [ "$(nh_count "$VIP_WEB")" = 1 ]; then
            seen=1
            ev route drain-web-gone "$VIP_WEB" 1
        fi
        if [ "$(bird_routes "$VIP_WEB" d1)" = 0 ]; then
            ev drain-bird-withdrawn
            break
        fi
        usleep 20000
    done
    sleep 1
    ev drain-api-min-nexthops "$api_min"
    ev drain-api-nexthops "$(nh_count "$VIP_API")"
    ev drain-bird-api-routes "$(bird_routes "$VIP_API" d1)"
    ev bird-d1-after-drain "$(bird_proto d1)"
    ip netns exec d1 "$HERALD" --config "$E2E/d1/herald.toml" status >"$E2E_OUT/status-drained.txt" 2>&1
    snapshot_views drained
    sleep 1
    ev undrain web
    ip netns exec d1 "$HERALD" --config "$E2E/d1/herald.toml" undrain web >"$E2E_OUT/undrain.out" 2>&1
    wait_nh "$VIP_WEB" 2 30 undrain-back
    sleep 1
}

run_e2e() {
    mkdir -p "$E2E_OUT"
    : >"$E2E_OUT/events.txt"
    ev start
    if ! e2e_topology >"$E2E_OUT/topology.log" 2>&1; then
        ev error "topology setup failed"
        return 1
    fi
    ip -n rt -o -ts monitor route >"$E2E_OUT/rt-monitor.txt" 2>&1 &
    echo $! >>/tmp/lab.pids
    ev topology-up
    # Clock mark: a route added between two uptime readings; the monitor stamps it with the
    # wall clock, which ties rt-monitor.txt (and BIRD's log) to the uptime of events.txt.
    # Five marks; the test uses the tightest.
    sleep 1
    for m in 250 251 252 253 254; do
        ta=$(now)
        /sbin/ip -n rt route add "192.0.2.$m/32" dev br0
        ev clock-mark "$ta" "$(now)" "192.0.2.$m"
    done
    herald_start 1
    herald_start 2
    client_start 20000 600
    if e2e_announced 90 initial; then
        ev announced
        snapshot_views announced
        for n in 1 2; do ev conns-start "d$n" "$(conns "d$n" "$VIP_WEB")" "$(conns "d$n" "$VIP_API")"; done
        sleep 5
        for n in 1 2; do ev conns-end "d$n" "$(conns "d$n" "$VIP_WEB")" "$(conns "d$n" "$VIP_API")"; done
        e2e_pool && e2e_kill9 && e2e_sigterm && e2e_drain
        ev scenario-end "$?"
    else
        ev error "never announced"
    fi
    client_stop
    snapshot_views end
    for n in 1 2; do
        ip netns exec "d$n" sh -c ". /lab/lib.sh; scrape 9639 '$E2E_OUT/metrics-d$n.txt'" 2>>"$E2E_OUT/scrape.err"
        cp "$E2E/d$n/herald.log" "$E2E_OUT/herald-d$n.log"
        cp "$E2E/d$n/herald.toml" "$E2E_OUT/herald-d$n.toml"
    done
    cp "$E2E/bird.log" "$E2E/bird.conf" "$E2E_OUT/" 2>/dev/null
    ev done
    lab_reset
}
