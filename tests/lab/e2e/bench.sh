# shellcheck shell=sh
#
# The announcer's benchmark (`tests/lab/lab.sh e2e-bench`, guest side), on the cluster of
# topology.sh:
#  1. flips: director 1's "web" pool to weight 0 and back, E2E_FLIPS times; the time from the
#     ipvsadm change to the router's kernel route losing (and regaining) director 1's next hop,
#     with ipvs-herald (interval 100 ms, rise 3, fall 3, hold-down 0);
#  2. the same flips with ExaBGP's healthcheck on director 1 instead (its default timers:
#     interval 5 s, fast interval 1 s, rise 3, fall 3), E2E_EXABGP_FLIPS times;
#  3. CPU of the health checks with 1,000 VIPs (1,000 IPVS services, one group each) checked
#     every 100 ms, with ipvsadm and ExaBGP's healthcheck on the same table: bench-cpu.sh.
# Which parts run: herald.e2e_bench=flips,exabgp,cpu on the kernel command line (lab.sh
# passes $LAB_E2E_BENCH; default all three).
# Times are /proc/uptime (10 ms resolution); the route is polled every ~20 ms. Results:
# $R/e2e-bench/bench.txt (figures) and flips-*.txt (one line per flip: down up seconds).

. /lab/e2e/topology.sh
. /lab/e2e/bench-cpu.sh

E2E_BENCH_PARTS=flips,exabgp,cpu
for _arg in $(cat /proc/cmdline); do
    case "$_arg" in
    herald.e2e_bench=*) E2E_BENCH_PARTS=${_arg#herald.e2e_bench=} ;;
    esac
done

# part NAME: whether NAME is one of the parts to run.
part() {
    case ",$E2E_BENCH_PARTS," in *",$1,"*) return 0 ;; esac
    return 1
}

E2E_FLIPS=${E2E_FLIPS:-50}
E2E_EXABGP_FLIPS=${E2E_EXABGP_FLIPS:-10}
B=$R/e2e-bench
# python3 as lab_e2e_bench_prepare copied it (/usr/bin/python3.N).
PY=$(ls /usr/bin/python3* 2>/dev/null | head -n 1)

# since T0: seconds from T0 to now.
since() {
    awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.2f", b-a}'
}

# wait_nh_quiet VIP N TIMEOUT_S: like wait_nh, without logging; fails on timeout.
wait_nh_quiet() {
    _t0=$(now)
    while [ "$(nh_count "$1")" != "$2" ]; do
        if awk -v a="$(now)" -v b="$_t0" -v c="$3" 'BEGIN{exit !(a-b>c)}'; then
            return 1
        fi
        usleep 20000
    done
}

# flips NAME COUNT: COUNT pool-down/pool-up flips of web on d1; one "down up" line per flip.
flips() {
    : >"$B/flips-$1.txt"
    i=0
    while [ $i -lt "$2" ]; do
        i=$((i + 1))
        t0=$(now)
        pool_weight d1 "$VIP_WEB" 0
        t1=$(now)
        if ! wait_nh_quiet "$VIP_WEB" 1 60; then
            echo "flip $i: the path did not go within 60 s" >>"$B/errors.txt"
            return 1
        fi
        te=$(now)
        down=$(awk -v a="$t0" -v b="$te" 'BEGIN{printf "%.2f", b-a}')
        down2=$(awk -v a="$t1" -v b="$te" 'BEGIN{printf "%.2f", b-a}')
        usleep 200000
        t0=$(now)
        pool_weight d1 "$VIP_WEB" 1
        t1=$(now)
        if ! wait_nh_quiet "$VIP_WEB" 2 60; then
            echo "flip $i: the path did not return within 60 s" >>"$B/errors.txt"
            return 1
        fi
        te=$(now)
        up=$(awk -v a="$t0" -v b="$te" 'BEGIN{printf "%.2f", b-a}')
        up2=$(awk -v a="$t1" -v b="$te" 'BEGIN{printf "%.2f", b-a}')
        # From before ipvsadm started (upper estimate) and from after it returned (lower).
        echo "$down $up $down2 $up2" >>"$B/flips-$1.txt"
        usleep 200000
    done
}

# pct FILE COLUMN P: the P-th percentile (nearest rank) of COLUMN.
pct() {
    awk -v c="$2" '{print $c}' "$1" | sort -n | awk -v p="$3" '
        {v[NR]=$1} END {if (NR==0) {print "n/a"; exit} r=int((p/100)*NR+0.999999); if (r<1) r=1; if (r>NR) r=NR; print v[r]}'
}

summary() {
    n=$(wc -l <"$B/flips-$1.txt")
    f=$B/flips-$1.txt
    echo "$1: $n flips; IPVS change -> path gone at the router, from ipvsadm start: p50 $(pct "$f" 1 50) s, p99 $(pct "$f" 1 99) s, max $(pct "$f" 1 100) s (from ipvsadm return: p50 $(pct "$f" 3 50) s, p99 $(pct "$f" 3 99) s); path back, from ipvsadm start: p50 $(pct "$f" 2 50) s, p99 $(pct "$f" 2 99) s, max $(pct "$f" 2 100) s (from return: p50 $(pct "$f" 4 50) s, p99 $(pct "$f" 4 99) s)"
}

herald_stop() {
    pid=$(cat "$E2E/d$1/pid")
    kill -TERM "$pid" 2>/dev/null
    i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 300 ]; do
        usleep 100000
        i=$((i + 1))
    done
}

# ExaBGP on director 1, with its healthcheck checking the web pool (a weight above 0).
exabgp_start() {
    cat >"$E2E/check-web.sh" <<EOF
#!/bin/sh
ipvsadm -Ln -t $VIP_WEB:80 | awk '\$1 == "->" && \$3 == "Route" && \$4 > 0 {ok = 1} END {exit !ok}'
EOF
    chmod +x "$E2E/check-web.sh"
    cat >"$E2E/exabgp.conf" <<EOF
process healthcheck-web {
    run $PY -m exabgp healthcheck --no-syslog --withdraw-on-down --no-ip-setup --ip $VIP_WEB/32 --next-hop 192.0.2.11 --cmd $E2E/check-web.sh;
    encoder text;
}
neighbor $RT_LAN {
    router-id 192.0.2.11;
    local-address 192.0.2.11;
    local-as 65001;
    peer-as 65000;
    hold-time $E2E_HOLD_TIME;
    family { ipv4 unicast; }
    api { processes [ healthcheck-web ]; }
}
EOF
    # ExaBGP resolves its user by name: the initramfs has no passwd file of its own.
    [ -e /etc/passwd ] || echo 'root:x:0:0:root:/root:/bin/sh' >/etc/passwd
    [ -e /etc/group ] || echo 'root:x:0:' >/etc/group
    /sbin/ip netns exec d1 env exabgp_daemon_user=root exabgp_daemon_drop=false \
        exabgp_log_destination=stdout exabgp_api_pipename=e2e \
        "$PY" -m exabgp "$E2E/exabgp.conf" >"$B/exabgp.log" 2>&1 &
    echo $! >"$E2E/exabgp.pid"
    echo $! >>/tmp/lab.pids
}

# 1,000 IPv6 VIPs 2001:db8:1::1-3e8 on lo of a fresh namespace d3, each an IPVS service with
# two real servers (the daemon's configuration: bench-cpu.sh).
cpu_setup() {
    ns_new d3 || return 1
    : >"$E2E/d3-addrs"
    : >"$E2E/d3-ipvs"
    i=0
    while [ $i -lt 1000 ]; do
        i=$((i + 1))
        h=$(printf %x "$i")
        echo "address add 2001:db8:1::$h/128 dev lo" >>"$E2E/d3-addrs"
        printf -- '-A -t [2001:db8:1::%s]:80 -s wrr\n-a -t [2001:db8:1::%s]:80 -r [2001:db8:2::1]:80 -m -w 1\n-a -t [2001:db8:1::%s]:80 -r [2001:db8:2::2]:80 -m -w 1\n' "$h" "$h" "$h" >>"$E2E/d3-ipvs"
    done
    ip -n d3 -batch "$E2E/d3-addrs" || return 1
    ip netns exec d3 ipvsadm -R <"$E2E/d3-ipvs" || return 1
}

run_e2e_bench() {
    mkdir -p "$B"
    E2E_OUT=$B
    : >"$B/events.txt"
    : >"$B/errors.txt"
    {
        echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-) x $(grep -c ^processor /proc/cpuinfo) vCPU (QEMU TCG), $(uname -r); $(awk '/MemTotal/ {print $2}' /proc/meminfo) KiB"
        echo "ipvs-herald: $(ls -l "$HERALD" | awk '{print $5}') bytes; parts: $E2E_BENCH_PARTS"
        echo "clock: /proc/uptime (10 ms), router route polled every ~20 ms"
    } >"$B/bench.txt"
    E2E_HOLD_DOWN_S=0
    if part flips || part exabgp; then
        if ! e2e_topology >"$B/topology.log" 2>&1; then
            echo "topology setup failed" >>"$B/errors.txt"
            return 1
        fi
        herald_start 1
        herald_start 2
        if ! wait_nh_quiet "$VIP_WEB" 2 90; then
            echo "ipvs-herald: never announced by both directors" >>"$B/errors.txt"
        elif part flips; then
            sleep 2
            flips herald "$E2E_FLIPS"
            echo "ipvs-herald (interval 100 ms, rise 3, fall 3, hold-down 0): $(summary herald)" >>"$B/bench.txt"
        fi
        cp "$E2E/d1/herald.log" "$B/herald-d1.log"
    fi

    # ExaBGP in place of ipvs-herald on director 1.
    if part exabgp; then
        herald_stop 1
        if ! wait_nh_quiet "$VIP_WEB" 1 30; then
            echo "exabgp: director 1's path did not go after its ipvs-herald stopped" >>"$B/errors.txt"
        fi
        if [ -n "$PY" ] && [ -x "$PY" ]; then
            exabgp_start
            if ! wait_nh_quiet "$VIP_WEB" 2 120; then
                echo "exabgp: never announced (see exabgp.log)" >>"$B/errors.txt"
            else
                sleep 2
                flips exabgp "$E2E_EXABGP_FLIPS"
                echo "exabgp healthcheck (defaults: interval 5 s, fast-interval 1 s, rise 3, fall 3; --withdraw-on-down): $(summary exabgp)" >>"$B/bench.txt"
                if [ -s "$B/flips-herald.txt" ]; then
                    a=$(pct "$B/flips-herald.txt" 1 50)
                    b=$(pct "$B/flips-exabgp.txt" 1 50)
                    echo "ratio of p50 path-gone times, exabgp / ipvs-herald: $(awk -v a="$a" -v b="$b" 'BEGIN{if (a>0) printf "%.1f", b/a; else print "n/a"}')" >>"$B/bench.txt"
                    a=$(pct "$B/flips-herald.txt" 2 50)
                    b=$(pct "$B/flips-exabgp.txt" 2 50)
                    echo "ratio of p50 path-back times, exabgp / ipvs-herald: $(awk -v a="$a" -v b="$b" 'BEGIN{if (a>0) printf "%.1f", b/a; else print "n/a"}')" >>"$B/bench.txt"
                fi
            fi
            kill "$(cat "$E2E/exabgp.pid")" 2>/dev/null
        else
            echo "exabgp: no /usr/bin/python3* in the initramfs" >>"$B/errors.txt"
        fi
    fi
    # Nothing of the flips may run during the CPU measurement.
    for n in 1 2; do
        [ -e "$E2E/d$n/pid" ] && herald_stop "$n"
    done

    # CPU with 1,000 VIP groups, ipvsadm and ExaBGP's healthcheck (bench-cpu.sh).
    if part cpu; then
        run_cpu_bench
    fi
    echo "errors: $(wc -l <"$B/errors.txt")" >>"$B/bench.txt"
    cat "$B/errors.txt" >>"$B/bench.txt"
    lab_reset
}
