# The automatic netlink -> procfs fallback: ipvs-herald as an unprivileged user (uid/gid
# 65534 through busybox su, no capabilities), to whom the kernel refuses IPVS netlink requests. `collect` reads
# everything as root first (netlink); then, in the same state, `dump --json --conns` and a
# scrape of `run` as uid 65534 (unpriv-dump.json, unpriv-metrics.txt), which must fall back to
# /proc/net/ip_vs* and still show every value procfs carries; ipvsadm again after them
# (unpriv-after/; its rates from right after the dump) must show the same state.
set -e
client_add
vip_add 203.0.113.43
rs_add r1 192.0.2.11
rs_add r2 192.0.2.12
http_start r1
http_start r2
ipvsadm -A -t 203.0.113.43:80 -s wrr
ipvsadm -a -t 203.0.113.43:80 -r 192.0.2.11:80 -m -w 3
ipvsadm -a -t 203.0.113.43:80 -r 192.0.2.12:80 -m -w 1
ipvsadm -A -u 203.0.113.43:53 -s rr
ipvsadm -a -u 203.0.113.43:53 -r 192.0.2.11:53 -m
ipvsadm -a -u 203.0.113.43:53 -r 192.0.2.12:53 -m -w 0
sleep 1
client_http_all 203.0.113.43 80 8
collect
# busybox su switches to uid 65534 (root needs no password); the capabilities go with root.
grep -q '^nobody:' /etc/passwd 2>/dev/null || echo 'nobody:x:65534:65534:nobody:/nonexistent:/bin/sh' >>/etc/passwd
grep -q '^nogroup:' /etc/group 2>/dev/null || echo 'nogroup:x:65534:' >>/etc/group
nobody() { su -s /bin/sh nobody -c "$*"; }
chmod 0644 "$HERALD_TOML"
nobody id >"$D/unpriv-id.txt"
# The rate estimates change on the kernel's 2 s tick: read them right around the dump, and
# again until both readings agree (as `collect` does).
i=0
while :; do
    i=$((i + 1))
    snap_rate "$D/unpriv-before"
    nobody "$HERALD --config $HERALD_TOML dump --json --conns" >"$D/unpriv-dump.json" 2>"$D/unpriv-dump.err"
    snap_rate "$D/unpriv-after"
    cmp -s "$D/unpriv-before/rate.txt" "$D/unpriv-after/rate.txt" &&
        cmp -s "$D/unpriv-before/global.txt" "$D/unpriv-after/global.txt" && break
    [ $i -lt 20 ] || { echo "the rates never held still around the unprivileged dump" >&2; exit 1; }
    sleep 0.3
done
{
    cat "$HERALD_TOML"
    printf '[exporter]\nlisten = "127.0.0.1:9643"\n'
    printf '[exporter.limits]\ndefault_scrape_timeout = "150s"\nrequest_timeout = "200s"\n'
} >/tmp/unpriv-run.toml
chmod 0644 /tmp/unpriv-run.toml
run_scrape_once /tmp/unpriv-run.toml 9643 "$D/unpriv-metrics.txt" "$D/unpriv-run.log" nobody
snap "$D/unpriv-after"
