# shellcheck shell=sh
#
# Guest side of the real-Prometheus lab test (`tests/lab/lab.sh serve`, run by
# tests/lab_exporter.rs): an LVS-NAT director with traffic flowing and `ipvs-herald run` serving
# /metrics on 0.0.0.0:9639 (QEMU user-net forwards it to the host, where Prometheus scrapes it).
# Besides ordinary services it sets up the states the alert rules look for, so those
# expressions return series for real: a service whose only destination has weight 0 (no usable
# destination, drained destination) and a wrr service whose new connections went 9:1 while its
# weights now say 1:1 (imbalance 1.8 > 1.5), a source-hashed (sh) service whose 1,500 new UDP
# connections from one client all hash to one of its four equal destinations (imbalance 4 > 3,
# IpvsHashServiceImbalanced), and a destination with thresholds. Every traffic loop is bounded in count and time;
# the guest powers off after herald.serve_seconds (default 600) at the latest.

exporter_serve() {
    seconds=$1
    lab_reset
    printf '[reader]\ntimeout = "120s"\n' >"$HERALD_TOML"
    client_add
    vip_add 203.0.113.30
    rs_add r1 192.0.2.11
    rs_add r2 192.0.2.12
    rs_add r3 192.0.2.13
    http_start r1
    http_start r2
    http_start r3
    # The web service: wrr 2:1:1 with steady traffic.
    ipvsadm -A -t 203.0.113.30:80 -s wrr
    ipvsadm -a -t 203.0.113.30:80 -r 192.0.2.11:80 -m -w 2
    ipvsadm -a -t 203.0.113.30:80 -r 192.0.2.12:80 -m -w 1
    ipvsadm -a -t 203.0.113.30:80 -r 192.0.2.13:80 -m -w 1 -x 1000 -y 800
    # Persistent service (templates in the connection table).
    ipvsadm -A -t 203.0.113.30:8080 -s rr -p 120
    ipvsadm -a -t 203.0.113.30:8080 -r 192.0.2.11:80 -m
    ipvsadm -a -t 203.0.113.30:8080 -r 192.0.2.12:80 -m
    # The skewed service: 9:1 while the burst runs, then 1:1.
    ipvsadm -A -t 203.0.113.30:81 -s wrr
    ipvsadm -a -t 203.0.113.30:81 -r 192.0.2.11:80 -m -w 9
    ipvsadm -a -t 203.0.113.30:81 -r 192.0.2.12:80 -m -w 1
    # A service with no usable destination (its only destination is drained).
    ipvsadm -A -t 203.0.113.30:82 -s rr
    ipvsadm -a -t 203.0.113.30:82 -r 192.0.2.13:80 -m -w 0
    # UDP and a hash-scheduled service.
    ipvsadm -A -u 203.0.113.30:53 -s sh
    ipvsadm -a -u 203.0.113.30:53 -r 192.0.2.11:53 -m
    ipvsadm -a -u 203.0.113.30:53 -r 192.0.2.12:53 -m
    # The hash-skewed service: sh over four equal destinations; one client address hashes to one.
    ipvsadm -A -u 203.0.113.30:54 -s sh
    ipvsadm -a -u 203.0.113.30:54 -r 192.0.2.11:54 -m
    ipvsadm -a -u 203.0.113.30:54 -r 192.0.2.12:54 -m
    ipvsadm -a -u 203.0.113.30:54 -r 192.0.2.13:54 -m
    ipvsadm -a -u 203.0.113.30:54 -r 192.0.2.13:55 -m
    # An fwmark service (no traffic: the dashboards' mark variable needs one).
    ipvsadm -A -f 7 -s rr
    ipvsadm -a -f 7 -r 192.0.2.11:0 -m
    # A sync daemon, so the sync panels have data.
    ipvsadm --start-daemon master --mcast-interface lo --syncid 7
    for i in /sys/class/net/eth*; do
        [ -e "$i" ] || continue
        dev=$(basename "$i")
        ip link set "$dev" up
        ip addr add 10.0.2.15/24 dev "$dev"
    done
    herald_daemon_start 0.0.0.0:9639 || return 1
    # The skewed burst: 200 requests (bounded, 5 s each) at 9:1, then weights 1:1. It starts
    # after 60 s so that Prometheus (started on the host once /metrics answers) sees all of it.
    (
        sleep 60
        # 1,500 UDP datagrams, each from the next source port (hping3's default), i.e. 1,500
        # new IPVS connections (>= 1,000 per 5 min, the hash alert's volume floor); count-bounded.
        ip netns exec cl timeout 120 hping3 --udp -p 54 -c 1500 -i u2000 -q 203.0.113.30 >/tmp/hash-burst.log 2>&1
        echo "hash burst: hping3 exit $?" >>/tmp/hash-burst.log
        client_http 203.0.113.30 81 200 >/tmp/burst.log 2>&1
        ipvsadm -e -t 203.0.113.30:81 -r 192.0.2.11:80 -m -w 1
        echo "burst done" >>/tmp/burst.log
        echo "burst done" >/dev/console
    ) &
    echo $! >>/tmp/lab.pids
    # Steady traffic: web + persistent + UDP, about one round a second, bounded by $seconds.
    (
        n=0
        while [ $n -lt "$seconds" ]; do
            n=$((n + 1))
            client_http 203.0.113.30 80 2 >/dev/null 2>&1
            client_http 203.0.113.30 8080 1 >/dev/null 2>&1
            client_udp 203.0.113.30 53 1 >/dev/null 2>&1
            sleep 1
        done
    ) &
    echo $! >>/tmp/lab.pids
    echo "lab: serving metrics on :9639 for at most ${seconds}s"
    n=0
    while [ $n -lt "$seconds" ]; do
        sleep 1
        n=$((n + 1))
    done
    ipvsadm -Ln --stats >"$R/serve-stats.txt" 2>&1
    herald_daemon_stop
}
