# shellcheck shell=sh
#
# Guest side of `tests/lab/lab.sh exporter-bench`: ipvs-herald's /metrics against node_exporter
# with only its ipvs collector, in the same VM, same kernel, same IPVS table, one boot. For
# 1,000 and then 10,000 services with 10 destinations each, both exporters are scraped
# sequentially (one warm-up scrape, then BENCH_SCRAPES timed ones each) with curl,
# which reports the wall time and the bytes; CPU per scrape comes from the exporter process's
# utime+stime in /proc/PID/stat around the timed scrapes, peak memory from VmHWM. Series per
# scrape = sample lines. Results: $R/exporter-bench.txt (one `key value` line per figure) and
# the saved scrapes' first lines. Every loop is bounded.

BENCH_OUT=$R/exporter-bench.txt

# bench_table N: N TCP services (203.0.113.1-250, ports 1000 up), each with 10 masq
# destinations, loaded with one `ipvsadm -R`.
bench_table() {
    ipvsadm -C
    awk -v n="$1" 'BEGIN {
        for (s = 0; s < n; s++) {
            vip = sprintf("203.0.113.%d:%d", s % 250 + 1, 1000 + int(s / 250))
            printf "-A -t %s -s wrr\n", vip
            for (d = 1; d <= 10; d++)
                printf "-a -t %s -r 192.0.2.%d:8080 -m -w %d\n", vip, d, d
        }
    }' >/tmp/bench-table.txt
    ipvsadm -R </tmp/bench-table.txt
}

# cpu_ticks PID: utime + stime in clock ticks.
cpu_ticks() {
    awk '{print $14 + $15}' "/proc/$1/stat"
}

# bench_one LABEL PID URL COUNT
bench_one() {
    label=$1
    pid=$2
    url=$3
    count=$4
    # Warm-up (and the saved scrape for bytes/series).
    curl -sS --max-time 900 -o "/tmp/scrape-$label.txt" "$url" || {
        echo "$label warmup_failed 1" >>"$BENCH_OUT"
        return 1
    }
    series=$(grep -vc '^#' "/tmp/scrape-$label.txt")
    bytes=$(wc -c <"/tmp/scrape-$label.txt")
    c0=$(cpu_ticks "$pid")
    total=0
    i=0
    while [ $i -lt "$count" ]; do
        i=$((i + 1))
        t=$(curl -sS --max-time 900 -o /dev/null -w '%{time_total}' "$url") || {
            echo "$label scrape_failed $i" >>"$BENCH_OUT"
            return 1
        }
        echo "$label scrape_seconds_$i $t" >>"$BENCH_OUT"
    done
    c1=$(cpu_ticks "$pid")
    hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")
    rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
    {
        echo "$label series $series"
        echo "$label bytes $bytes"
        echo "$label cpu_ticks_total $((c1 - c0))"
        echo "$label scrapes $count"
        echo "$label vmhwm_kib $hwm"
        echo "$label vmrss_kib $rss"
    } >>"$BENCH_OUT"
    head -c 2000 "/tmp/scrape-$label.txt" >"$R/scrape-head-$label.txt"
    grep -v '^#' "/tmp/scrape-$label.txt" | sed 's/[{ ].*//' | sort | uniq -c >"$R/scrape-names-$label.txt"
}

# bench_cmd LABEL REP CMD...: run CMD once (stdout discarded) under busybox `time -v`; record
# wall seconds and peak RSS. busybox `time` prints ru_maxrss multiplied by 4: it converts the
# value as if it were in pages, but Linux reports kilobytes (on the host, for a process with a
# VmHWM of 218,200 KiB, GNU time prints 218200 and busybox 872912). The true figure is /4.
bench_cmd() {
    label=$1
    rep=$2
    shift 2
    t0=$(cut -d' ' -f1 /proc/uptime)
    time -v -o /tmp/time.out "$@" >/dev/null 2>/tmp/cmd.err || {
        echo "$label failed_$rep $(head -c 200 /tmp/cmd.err | tr '\n' ' ')" >>"$BENCH_OUT"
        return 1
    }
    t1=$(cut -d' ' -f1 /proc/uptime)
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' /tmp/time.out)
    {
        echo "$label wall_seconds_$rep $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}')"
        echo "$label busybox_maxrss_$rep $rss"
        echo "$label peak_rss_kib_$rep $((rss / 4))"
    } >>"$BENCH_OUT"
}

run_exporter_bench() {
    count=${BENCH_SCRAPES:-3}
    lab_reset
    : >"$BENCH_OUT"
    {
        echo "uname $(uname -r)"
        echo "nproc $(nproc)"
        echo "clk_tck 100"
        echo "node_exporter $(prometheus-node-exporter --version 2>&1 | head -n1)"
        echo "herald $($HERALD --version 2>&1 | head -n1)"
    } >>"$BENCH_OUT"
    printf '[reader]\ntimeout = "600s"\n' >"$HERALD_TOML"
    {
        cat "$HERALD_TOML"
        printf '[exporter]\nlisten = "127.0.0.1:9639"\n'
        printf '[exporter.limits]\ndefault_scrape_timeout = "800s"\nrequest_timeout = "900s"\n'
    } >/tmp/bench-herald.toml
    "$HERALD" --config /tmp/bench-herald.toml run >"$R/bench-herald.log" 2>&1 &
    hpid=$!
    prometheus-node-exporter --collector.disable-defaults --collector.ipvs \
        --web.listen-address=127.0.0.1:9100 >"$R/bench-node-exporter.log" 2>&1 &
    npid=$!
    echo "$hpid $npid" >>/tmp/lab.pids
    sleep 3
    kill -0 "$hpid" || { echo "herald_not_running 1" >>"$BENCH_OUT"; return 1; }
    kill -0 "$npid" || { echo "node_exporter_not_running 1" >>"$BENCH_OUT"; return 1; }
    for n in 1000 10000; do
        t0=$(cut -d' ' -f1 /proc/uptime)
        bench_table "$n"
        echo "table_$n services $(ipvsadm -Ln | grep -c '^TCP') load_seconds $t0..$(cut -d' ' -f1 /proc/uptime)" >>"$BENCH_OUT"
        echo "lab: bench $n services: node_exporter" >/dev/console
        bench_one "node_$n" "$npid" http://127.0.0.1:9100/metrics "$count"
        echo "lab: bench $n services: ipvs-herald" >/dev/console
        bench_one "herald_$n" "$hpid" http://127.0.0.1:9639/metrics "$count"
    done
    kill "$hpid" "$npid" 2>/dev/null
    # One-shot reads of the same 10,000-service table: `ipvs-herald dump` against ipvsadm,
    # alternated, BENCH_SCRAPES times each.
    echo "lab: bench dump vs ipvsadm" >/dev/console
    i=0
    while [ $i -lt "$count" ]; do
        i=$((i + 1))
        bench_cmd ipvsadm_exact_stats $i ipvsadm -Ln --exact --stats
        bench_cmd dump_json $i "$HERALD" --config "$HERALD_TOML" dump --json --timeout 900
        bench_cmd ipvsadm_ln $i ipvsadm -Ln
        bench_cmd dump_text $i "$HERALD" --config "$HERALD_TOML" dump --timeout 900
    done
    cat "$BENCH_OUT"
}
