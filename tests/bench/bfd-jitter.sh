#!/usr/bin/env bash
# Benchmark: does our BFD transmit on time while the daemon serves big scrapes? (issue 11)
#
#   cargo build --release -p ipvs-herald && tests/bench/bfd-jitter.sh
#
# Two network namespaces on this host: `ipvs-herald run` (release build, BFD 100 ms x 3 to its
# BGP peer, one VIP group checked every 100 ms) over a procfs-backed fake IPVS table of 10,000
# TCP services x 10 destinations, and a BIRD 2 router with BFD at the same rates. tcpdump in
# the router's namespace timestamps every BFD Control packet in both directions. Phase "idle":
# BFD_IDLE_S seconds of nothing else; phase "scrape": BFD_SCRAPE_S seconds of back-to-back
# /metrics scrapes of the 10,000-service table (each a full IPVS read and ~1.1 million series;
# count- and time-bounded). Printed per phase and sender: the gaps between consecutive packets
# (p50, p99, max, and how many were later than the 100 ms interval allows), with BIRD's own
# packets as the comparison, and whether BIRD's BFD or BGP session ever went down.
#
# RFC 5880 §6.8.7: with a 100 ms interval a sender waits 75-100 ms between packets; the peer
# declares the session down after 3 x 100 ms of silence. Lab addresses: 192.0.2.1 (us),
# 192.0.2.2 (BIRD). Needs root; installs bird2, tcpdump, curl through tests/deps.sh. Writes
# into target/bench/bfd-jitter (the pcap, the logs, results.txt).
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
BIN=${HERALD_BIN:-$REPO/target/release/ipvs-herald}
IDLE=${BFD_IDLE_S:-30}
SCRAPE=${BFD_SCRAPE_S:-30}
SERVICES=${BFD_SERVICES:-10000}
# BFD_GROUPS=N: N VIP groups checked every 100 ms (the issue's heaviest load: 1,000) instead of
# one. Group k announces 2001:db8:1::k/128 (MP-BGP IPv6 over the same session) and is made of
# service 203.0.113.h:p of the fake table (the k-th one), so every group is healthy and announced.
GROUPS_N=${BFD_GROUPS:-1}
OUT=$REPO/target/bench/bfd-jitter
SPK=bj-spk
RTR=bj-rtr

die() {
  echo "bfd-jitter: $*" >&2
  exit 1
}
[ "$(id -u)" = 0 ] || die "must run as root (network namespaces)"
[ -x "$BIN" ] || die "no $BIN: cargo build --release -p ipvs-herald first"
bash tests/deps.sh bird birdc tcpdump curl python3 >/dev/null

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.3
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  ip netns del "$SPK" 2>/dev/null || true
  ip netns del "$RTR" 2>/dev/null || true
}
trap cleanup EXIT
cleanup
rm -rf "$OUT"
mkdir -p "$OUT/proc/net" "$OUT/bird"

# The fake IPVS table (the kernel's /proc/net/ip_vs format): 203.0.113.0/24 x ports 1..40,
# the first SERVICES of them, each with 10 destinations 192.0.2.10-19:80 of weight 1. The
# VIP group's service is 203.0.113.1:1.
python3 - "$OUT/proc/net" "$SERVICES" <<'EOF'
import sys
d, n = sys.argv[1], int(sys.argv[2])
lines = ["IP Virtual Server version 1.2.1 (size=4096)",
         "Prot LocalAddress:Port Scheduler Flags",
         "  -> RemoteAddress:Port Forward Weight ActiveConn InActConn"]
count = 0
for host in range(1, 255):
    for port in range(1, 41):
        if count == n:
            break
        count += 1
        lines.append("TCP  CB0071%02X:%04X wrr " % (host, port))
        for r in range(10, 20):
            lines.append("  -> C00002%02X:0050      Masq    1      3          7         " % r)
open(d + "/ip_vs", "w").write("\n".join(lines) + "\n")
open(d + "/ip_vs_stats", "w").write(
    "   Total Incoming Outgoing         Incoming         Outgoing\n"
    "   Conns  Packets  Packets            Bytes            Bytes\n"
    "       0        0        0                0                0\n\n"
    " Conns/s   Pkts/s   Pkts/s          Bytes/s          Bytes/s\n"
    "       0        0        0                0                0\n")
print("services:", count)
EOF

ip netns add "$SPK"
ip netns add "$RTR"
ip -n "$SPK" link set lo up
ip -n "$RTR" link set lo up
ip link add bj0 netns "$SPK" type veth peer name bj1 netns "$RTR"
ip -n "$SPK" addr add 192.0.2.1/24 dev bj0
ip -n "$RTR" addr add 192.0.2.2/24 dev bj1
ip -n "$SPK" link set bj0 up
ip -n "$RTR" link set bj1 up
ip -n "$SPK" addr add 2001:db8:ff::1/64 dev bj0 nodad
ip -n "$RTR" addr add 2001:db8:ff::2/64 dev bj1 nodad

cat >"$OUT/bird/bird.conf" <<'EOF'
router id 192.0.2.2;
protocol device {}
protocol bfd {
  interface "*" { min rx interval 100 ms; min tx interval 100 ms; idle tx interval 1 s; multiplier 3; };
}
protocol bgp spk {
  local 192.0.2.2 as 65000;
  neighbor 192.0.2.1 as 65001;
  passive on;
  hold time 9;
  bfd on;
  ipv4 { import all; export none; };
  ipv6 { import all; export none; };
}
EOF
ip netns exec "$RTR" bird -f -c "$OUT/bird/bird.conf" -s "$OUT/bird/bird.ctl" >"$OUT/bird/bird.log" 2>&1 &
pids+=($!)

cat >"$OUT/herald.toml" <<EOF
[reader]
source = "procfs"
procfs_root = "$OUT/proc"
kernel_hz = 250

[exporter]
listen = "127.0.0.1:9639"

[exporter.conn_table]
enabled = false

[announcer]
admin_socket = "$OUT/admin.sock"
maintenance_file = "$OUT/maintenance"
state_file = "$OUT/drain-state.json"
shutdown_drain_time = "0s"

[announcer.bgp]
router_id = "192.0.2.1"
local_as = 65001

[[announcer.bgp.peers]]
name = "rt"
address = "192.0.2.2"
remote_as = 65000
local_address = "192.0.2.1"
hold_time = 9
connect_retry = { min = 0.5, max = 2.0 }
bfd = { desired_min_tx = "100ms", required_min_rx = "100ms", detect_multiplier = 3 }
families = ["ipv4", "ipv6"]
next_hop_v6 = "2001:db8:ff::1"

[[announcer.vip_groups]]
name = "web"
prefixes = ["203.0.113.1/32"]
vip_address = "ignore"
interval = "100ms"
rise = 2
fall = 2
hold_down = "1s"
EOF
for k in $(seq 2 "$GROUPS_N"); do
  # The k-th service of the table: host 1 + (k-1)/40, port 1 + (k-1)%40.
  printf '\n[[announcer.vip_groups]]\nname = "g%s"\nprefixes = ["2001:db8:1::%x/128"]\nservices = [{ protocol = "tcp", address = "203.0.113.%s", port = %s }]\nvip_address = "ignore"\ninterval = "100ms"\nrise = 2\nfall = 2\nhold_down = "1s"\n' \
    "$k" "$k" $((1 + (k - 1) / 40)) $((1 + (k - 1) % 40)) >>"$OUT/herald.toml"
done
"$BIN" -c "$OUT/herald.toml" check-config >/dev/null || die "check-config refused $OUT/herald.toml"
ip netns exec "$SPK" env IPVS_HERALD_LOG=info "$BIN" -c "$OUT/herald.toml" run >"$OUT/herald.log" 2>&1 &
pids+=($!)
herald_pid=$!

birdc() { ip netns exec "$RTR" birdc -s "$OUT/bird/bird.ctl" "$@"; }
bfd_up() { birdc show bfd sessions 2>/dev/null | awk '$1 == "192.0.2.1" {print $3}' | grep -qx Up; }
for _ in $(seq 1 300); do
  bfd_up && break
  sleep 0.1
done
bfd_up || die "BIRD's BFD session never came Up (logs in $OUT)"
for _ in $(seq 1 100); do
  birdc show route 203.0.113.1/32 2>/dev/null | grep -q 203.0.113.1 && break
  sleep 0.1
done
birdc show route 203.0.113.1/32 | grep -q 203.0.113.1 || die "the VIP never reached BIRD (logs in $OUT)"
sleep 2 # let BFD settle at the fast rate after Up

ip netns exec "$RTR" tcpdump -i bj1 -nn -s 96 -w "$OUT/bfd.pcap" udp port 3784 2>"$OUT/tcpdump.log" &
pids+=($!)
sleep 1

# Watch BIRD's BFD and BGP state every 100 ms for the whole run (a down is the failure that
# matters; gaps tell how close we came).
(
  end=$((SECONDS + IDLE + SCRAPE + 2))
  while [ $SECONDS -lt $end ]; do
    printf '%s %s %s\n' "$(date +%s.%N)" \
      "$(birdc show bfd sessions 2>/dev/null | awk '$1 == "192.0.2.1" {print $3}')" \
      "$(birdc show protocols spk 2>/dev/null | awk '$1 == "spk" {print $6}')"
    sleep 0.1
  done
) >"$OUT/states.txt" &
watcher=$!

t_idle=$(date +%s.%N)
sleep "$IDLE"
t_scrape=$(date +%s.%N)
scrapes=0
: >"$OUT/scrapes.txt"
end=$((SECONDS + SCRAPE))
while [ $SECONDS -lt $end ] && [ $scrapes -lt 10000 ]; do
  ip netns exec "$SPK" curl -s -o /dev/null -w '%{http_code} %{time_total} %{size_download}\n' \
    --max-time 30 http://127.0.0.1:9639/metrics >>"$OUT/scrapes.txt" || echo "curl-failed" >>"$OUT/scrapes.txt"
  scrapes=$((scrapes + 1))
done
t_end=$(date +%s.%N)
wait "$watcher" || true
kill -0 "$herald_pid" 2>/dev/null || die "ipvs-herald died during the run (log: $OUT/herald.log)"
sleep 0.5

python3 - "$OUT" "$t_idle" "$t_scrape" "$t_end" "$(nproc)" <<'EOF' | tee "$OUT/results.txt"
import struct, sys
out, t_idle, t_scrape, t_end, ncpu = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
data = open(out + "/bfd.pcap", "rb").read()
magic = struct.unpack("<I", data[:4])[0]
if magic == 0xa1b2c3d4:
    end, scale = "<", 1e-6
elif magic == 0xa1b23c4d:
    end, scale = "<", 1e-9
else:
    sys.exit("unknown pcap magic %x" % magic)
linktype = struct.unpack(end + "I", data[20:24])[0]
pos, pkts = 24, []
while pos + 16 <= len(data):
    sec, frac, incl, orig = struct.unpack(end + "IIII", data[pos:pos + 16])
    frame = data[pos + 16:pos + 16 + incl]
    pos += 16 + incl
    ip = frame[14:] if linktype == 1 else frame[16:]
    if len(ip) < 20 or ip[0] >> 4 != 4:
        continue
    src = ".".join(str(b) for b in ip[12:16])
    pkts.append((sec + frac * scale, src))
def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(q * len(v)))]
rows = {}
for who, src in (("ipvs-herald", "192.0.2.1"), ("BIRD 2", "192.0.2.2")):
    ts = [t for t, s in pkts if s == src]
    for phase, a, b in (("idle", t_idle, t_scrape), ("scrape", t_scrape, t_end)):
        sel = [t for t in ts if a <= t < b]
        gaps = [(y - x) * 1000 for x, y in zip(sel, sel[1:])]
        if len(gaps) < 10:
            sys.exit("too few packets from %s in phase %s: %d" % (who, phase, len(sel)))
        late = sum(1 for g in gaps if g > 105)
        early = sum(1 for g in gaps if g < 70)
        rows[(who, phase)] = (len(gaps), pct(gaps, 0.5), pct(gaps, 0.99), max(gaps), late, early)
scr = [l.split() for l in open(out + "/scrapes.txt") if l.strip()]
ok = [s for s in scr if s[0] == "200"]
times = sorted(float(s[1]) for s in ok)
states = [l.split() for l in open(out + "/states.txt") if l.strip()]
bfd_down = sum(1 for s in states if len(s) < 2 or s[1] != "Up")
bgp_down = sum(1 for s in states if len(s) < 3 or s[2] != "Established")
print("BFD TX gaps (ms), 100 ms interval (RFC 5880: 75-100 ms between packets), %s CPUs" % ncpu)
print("%-12s %-7s %6s %7s %7s %7s %10s %9s" % ("sender", "phase", "gaps", "p50", "p99", "max", ">105 ms", "<70 ms"))
for (who, phase), (n, p50, p99, mx, late, early) in rows.items():
    print("%-12s %-7s %6d %7.1f %7.1f %7.1f %10d %9d" % (who, phase, n, p50, p99, mx, late, early))
h, b = rows[("ipvs-herald", "scrape")], rows[("BIRD 2", "scrape")]
print("ratio ipvs-herald/BIRD in the scrape phase: p99 %.2fx, max %.2fx" % (h[2] / b[2], h[3] / b[3]))
if times:
    print("scrapes: %d of %d answered 200, %.0f bytes each, median %.2f s, max %.2f s" % (
        len(ok), len(scr), float(ok[0][2]), times[len(times) // 2], times[-1]))
else:
    print("scrapes: none answered 200 of %d" % len(scr))
print("BIRD's view, sampled every 100 ms (%d samples): BFD not Up %d times, BGP not Established %d times" % (
    len(states), bfd_down, bgp_down))
EOF
