# shellcheck shell=sh
#
# Guest-side benchmarks for `lab.sh bench` (TCG-emulated CPU: compare figures with each other,
# not with bare metal). Writes $R/bench.txt.
#
#  1. 10,000 services x 10 destinations: `ipvs-herald dump --json` (netlink) vs
#     `ipvsadm -Ln --exact --stats`, wall time and peak RSS.
#  2. A connection table of >= 100,000 entries from a bounded SYN flood (hping3, random sources)
#     through an LVS-NAT service: `ipvs-herald dump --json --conns` with the default (large) read
#     buffer vs 4 KiB reads vs `ipvsadm -Lnc`, wall time and peak RSS.

BENCH_REPS=${BENCH_REPS:-3}

# measure LABEL CMD...: run CMD (stdout discarded) BENCH_REPS times; print wall seconds of each
# run and the peak RSS (busybox time -v).
measure() {
    label=$1
    shift
    walls=""
    rss=""
    i=0
    while [ $i -lt "$BENCH_REPS" ]; do
        i=$((i + 1))
        t0=$(cut -d' ' -f1 /proc/uptime)
        time -v -o /tmp/time.out "$@" >/dev/null 2>/tmp/cmd.err || {
            echo "$label: FAILED: $(head -c 300 /tmp/cmd.err)"
            return 1
        }
        t1=$(cut -d' ' -f1 /proc/uptime)
        walls="$walls $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}')"
        rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' /tmp/time.out)
    done
    echo "$label: wall_s=[${walls# }] peak_rss_kb=$rss"
}

bench_services() {
    echo "== 10000 services x 10 destinations"
    t0=$(cut -d' ' -f1 /proc/uptime)
    awk 'BEGIN {
        for (i = 0; i < 10000; i++) {
            vip = sprintf("203.0.113.%d:%d", 1 + int(i / 50000), 10000 + i)
            printf "-A -t %s -s wrr\n", vip
            for (j = 1; j <= 10; j++)
                printf "-a -t %s -r 192.0.2.%d:%d -m -w %d\n", vip, 100 + j, 20000 + (i % 40000), j
        }
    }' >/tmp/restore10k
    ipvsadm -R </tmp/restore10k || { echo "ipvsadm -R failed"; return 1; }
    t1=$(cut -d' ' -f1 /proc/uptime)
    echo "loaded $(ipvsadm -Ln | grep -c '^TCP') services, $(ipvsadm -Ln | grep -c -- '->' ) lines with ->, in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}') s"
    measure "ipvs-herald dump --json (netlink)" "$HERALD" --config /tmp/bench.toml dump --json --source netlink
    measure "ipvs-herald dump (text)" "$HERALD" --config /tmp/bench.toml dump --source netlink
    measure "ipvsadm -Ln --exact --stats" ipvsadm -Ln --exact --stats
    measure "ipvsadm -Ln" ipvsadm -Ln
    "$HERALD" --config /tmp/bench.toml dump --json --source netlink >/tmp/d.json
    echo "dump JSON size: $(wc -c </tmp/d.json) bytes"
    ipvsadm -C
}

bench_conns() {
    echo "== connection table from a bounded SYN flood"
    client_add
    vip_add 203.0.113.30
    # Unrouted NAT destinations: the forwarded packet is dropped, so the emulated CPU spends its
    # time on the flood only. With sloppy_tcp, a first ACK creates an ESTABLISHED entry that
    # lives the tcp timeout (900 s): the table stays put while it is measured (SYN_RECV entries
    # would expire after 60 s, before a slow emulated flood even ends).
    sysctl -qw net.ipv4.vs.sloppy_tcp=1
    ipvsadm -A -t 203.0.113.30:80 -s rr
    ipvsadm -a -t 203.0.113.30:80 -r 192.0.2.11:80 -m
    ipvsadm -a -t 203.0.113.30:80 -r 192.0.2.12:80 -m
    command -v hping3 >/dev/null || { echo "hping3 missing from the initramfs"; return 1; }
    per=${BENCH_SYNS_PER_SENDER:-70000}
    t0=$(cut -d' ' -f1 /proc/uptime)
    # Two senders (one per vCPU), each bounded by count and by time.
    ip netns exec cl timeout 55 hping3 -q -A -p 80 --rand-source -i u1 -c "$per" 203.0.113.30 >/tmp/hping1.out 2>&1 &
    p1=$!
    ip netns exec cl timeout 55 hping3 -q -A -p 80 --rand-source -i u1 -c "$per" 203.0.113.30 >/tmp/hping2.out 2>&1 &
    p2=$!
    wait $p1 $p2
    t1=$(cut -d' ' -f1 /proc/uptime)
    n=$(($(wc -l </proc/net/ip_vs_conn) - 1))
    echo "2 x hping3 -A -c $per packets in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}') s; connection table: $n entries"
    BENCH_REPS=2
    measure "ipvs-herald dump --json --conns (default buffer)" "$HERALD" --config /tmp/bench.toml dump --json --conns
    measure "ipvs-herald dump --json --conns --conn-read-buffer 4096" "$HERALD" --config /tmp/bench.toml dump --json --conns --conn-read-buffer 4096
    measure "ipvsadm -Lnc" ipvsadm -Lnc
    echo "entries left after the measurements: $(($(wc -l </proc/net/ip_vs_conn) - 1))"
}

run_bench() {
    lab_reset
    # The emulated CPU is 10-50x slower than hardware: allow reads far beyond the 5 s default.
    printf '[reader]\ntimeout = "300s"\n' >/tmp/bench.toml
    {
        echo "ipvs-herald lab bench: $(uname -r), $(grep -c ^processor /proc/cpuinfo) vCPU (QEMU TCG), $(awk '/MemTotal/ {print $2}' /proc/meminfo) kB RAM"
        parts=$(tr ' ' '\n' </proc/cmdline | sed -n 's/^herald.bench=//p')
        case ",${parts:-services,conns}," in *,services,*) bench_services ;; esac
        lab_reset
        case ",${parts:-services,conns}," in *,conns,*) bench_conns ;; esac
    } 2>&1 | tee "$R/bench.txt"
}
