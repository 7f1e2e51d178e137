#!/bin/sh
# `lab.sh systemd`, guest side, part two: run by herald-lab.service under the host's systemd
# (PID 1). The shipped config/ipvs-herald.service reads namespace "lb" ([reader] netns), first
# without the drop-in (it must fail: the unit's RestrictNamespaces=yes and missing
# CAP_SYS_ADMIN forbid setns), then with config/ipvs-herald-netns.conf installed as
# /etc/systemd/system/ipvs-herald.service.d/netns.conf, the documented way (it must serve lb's
# table). Results under /results/systemd, checked by `cargo test --test lab_systemd`.
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
R=/results
S=$R/systemd
mkdir -p "$S"
. /lab/lib.sh

step() {
    echo "systemd-lab: $*"
}

# Everything the unit did in one run: status, properties, journal, the main process's
# credentials (the dynamic user, its capabilities).
record() {
    d=$1
    mkdir -p "$d"
    systemctl is-active ipvs-herald >"$d/is-active.txt" 2>&1
    systemctl status --no-pager -l -n 200 ipvs-herald >"$d/status.txt" 2>&1
    systemctl show ipvs-herald -p Result -p ExecMainStatus -p NRestarts -p DropInPaths \
        -p MainPID -p DynamicUser -p RestrictNamespaces -p CapabilityBoundingSet \
        -p AmbientCapabilities >"$d/show.txt" 2>&1
    journalctl --no-pager -o short-monotonic -u ipvs-herald ${CURSOR:+--after-cursor="$CURSOR"} >"$d/journal.txt" 2>&1
    pid=$(systemctl show ipvs-herald -p MainPID --value)
    if [ -n "$pid" ] && [ "$pid" != 0 ]; then
        cat "/proc/$pid/status" >"$d/proc-status.txt" 2>&1
        ls -l "/proc/$pid/ns/net" >"$d/proc-ns-net.txt" 2>&1
    fi
}

# unit_scrape PORT FILE: the daemon's /metrics (busybox wget, bounded by `timeout`: its own
# -T segfaults); a generous bound for a debug build under TCG.
unit_scrape() {
    timeout 200 wget -q -O "$2" "http://127.0.0.1:$1/metrics" >"$2.err" 2>&1
    echo $? >"$2.rc"
}

{
    step "up after $(cut -d' ' -f1 /proc/uptime)s"
    ps >"$S/ps-pid1.txt" 2>&1
    cat /proc/1/comm >"$S/pid1-comm.txt"
    systemctl --version >"$S/systemd-version.txt" 2>&1
    # The table lives in namespace lb, created the documented way (`ip netns add`); the
    # director's own namespace holds another service, which must not show up. Address services
    # only: lab_support::metrics::compare does not compare fwmark services.
    /sbin/ip netns add lb
    /sbin/ip -n lb link set lo up
    ip netns exec lb ipvsadm -A -t 203.0.113.40:80 -s wrr
    ip netns exec lb ipvsadm -a -t 203.0.113.40:80 -r 192.0.2.41:80 -m -w 3
    ip netns exec lb ipvsadm -a -t 203.0.113.40:80 -r 192.0.2.42:80 -g -w 1
    ip netns exec lb ipvsadm -A -u 203.0.113.40:53 -s sh
    ip netns exec lb ipvsadm -a -u 203.0.113.40:53 -r 192.0.2.41:53 -m
    ipvsadm -A -t 203.0.113.41:443 -s rr
    ipvsadm -a -t 203.0.113.41:443 -r 192.0.2.44:443 -m
    ls -ln /run/netns >"$S/run-netns.txt" 2>&1
    grep netns /proc/self/mountinfo >"$S/mountinfo-netns.txt" 2>&1
    {
        printf '[reader]\ntimeout = "120s"\nnetns = "lb"\n'
        printf '[exporter]\nlisten = "127.0.0.1:9639"\n'
        printf '[exporter.limits]\ndefault_scrape_timeout = "150s"\nrequest_timeout = "200s"\n'
    } >/etc/ipvs-herald/ipvs-herald.toml
    cp /etc/ipvs-herald/ipvs-herald.toml "$S/ipvs-herald.toml"
    systemctl daemon-reload

    step "without the drop-in"
    systemctl start ipvs-herald >"$S/without-start.txt" 2>&1
    echo $? >"$S/without-start.rc"
    # A daemon that came up anyway is scraped: the namespace error would be in its answer.
    sleep 5
    unit_scrape 9639 "$S/without-metrics.txt"
    record "$S/without"
    systemctl stop ipvs-herald >/dev/null 2>&1
    systemctl reset-failed ipvs-herald >/dev/null 2>&1
    journalctl --no-pager -o cat -u ipvs-herald >"$S/without/journal-cat.txt" 2>&1

    step "with the drop-in"
    mkdir -p /etc/systemd/system/ipvs-herald.service.d
    cp /lab/systemd/ipvs-herald-netns.conf /etc/systemd/system/ipvs-herald.service.d/netns.conf
    systemctl daemon-reload
    # Only this run's journal lines in with/journal.txt.
    CURSOR=$(journalctl -n 0 --show-cursor 2>/dev/null | sed -n 's/^-- cursor: //p')
    systemctl start ipvs-herald >"$S/with-start.txt" 2>&1
    echo $? >"$S/with-start.rc"
    LAB_NETNS=lb
    if settle_stats; then :; else echo "counters did not settle" >"$S/unsettled"; fi
    snap "$S/with"
    snap_rate "$S/with"
    unit_scrape 9639 "$S/with/metrics.txt"
    snap "$S/with/after"
    snap_rate "$S/with/after"
    record "$S/with"
    step "done after $(cut -d' ' -f1 /proc/uptime)s"
} >"$S/test.log" 2>&1

cat "$S/test.log"
systemctl stop ipvs-herald >/dev/null 2>&1
journalctl --no-pager -o short-monotonic >"$S/journal-all.txt" 2>&1
date >"$R/DONE"
(cd "$R" && tar -cf /dev/vda .) || echo "lab: cannot write results to /dev/vda" >/dev/console
sync
poweroff -f
