#!/usr/bin/env python3
"""BGP announce/withdraw benchmark: our speaker (examples/announce) vs ExaBGP.

ExaBGP runs in two modes: `exabgp` (one `announce route` API command per prefix, the
usual health-check feeder style) and `exabgp-packed` (`announce attributes … nlri` with
500 prefixes per command, ExaBGP's fastest API form).

Both announce the same N IPv4 /32s (198.18.0.0/15, RFC 2544 benchmarking space) and
N IPv6 /64s (2001:db8:1000::/36) to the same BIRD 2 instance, alternately, in the same
run. Measured from the moment the speaker process is spawned:
  established   BIRD shows the session Established
  full          BIRD holds all N + N prefixes
and from the moment the withdraw is triggered:
  withdrawn     BIRD holds none of them (explicit withdraws, session still up)

Everything runs in two network namespaces created here (veth, 192.0.2.0/24 and
2001:db8::/64) and is torn down at exit. Every wait is bounded (--timeout).

usage: bgp_bench.py --announce-bin PATH [--count 10000] [--rounds 3] [--timeout 180]
Needs root, bird2, exabgp, iproute2.
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

SPK4, RTR4 = "192.0.2.1", "192.0.2.2"
SPK6, RTR6 = "2001:db8::1", "2001:db8::2"
SPEAKER_AS, ROUTER_AS = 65000, 65001


def sh(*args, check=True, timeout=30, **kw):
    return subprocess.run(list(args), check=check, timeout=timeout,
                          capture_output=True, text=True, **kw)


class Bench:
    def __init__(self, args):
        self.args = args
        self.tag = f"hb{os.getpid()}"
        self.spk, self.rtr = f"{self.tag}-spk", f"{self.tag}-rtr"
        self.dir = tempfile.mkdtemp(prefix="herald-bgp-bench-")
        self.procs = []

    # ------------------------------------------------------------ setup / teardown
    def setup(self):
        for ns in (self.spk, self.rtr):
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "link", "add", "eth0", "netns", self.spk, "type", "veth",
           "peer", "name", "eth0", "netns", self.rtr)
        for ns, a4, a6 in ((self.spk, SPK4, SPK6), (self.rtr, RTR4, RTR6)):
            sh("ip", "-n", ns, "addr", "add", f"{a4}/24", "dev", "eth0")
            sh("ip", "-n", ns, "addr", "add", f"{a6}/64", "dev", "eth0", "nodad")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
        conf = os.path.join(self.dir, "bird.conf")
        with open(conf, "w") as f:
            f.write(f"""router id {RTR4};
protocol device {{}}
protocol bgp spk {{
  local {RTR4} as {ROUTER_AS};
  neighbor {SPK4} as {SPEAKER_AS};
  passive on;
  hold time 90;
  error wait time 1, 1;
  ipv4 {{ import all; export none; }};
  ipv6 {{ import all; export none; }};
}}
""")
        self.sock = os.path.join(self.dir, "bird.ctl")
        log = open(os.path.join(self.dir, "bird.log"), "w")
        self.bird = subprocess.Popen(
            ["ip", "netns", "exec", self.rtr, "bird", "-f", "-c", conf, "-s", self.sock,
             "-P", os.path.join(self.dir, "bird.pid")], stdout=log, stderr=log)
        self.procs.append(self.bird)
        self.wait("BIRD control socket", 20, lambda: self.birdc("show", "status", check=False)
                  .find("Daemon is up") >= 0)

    def teardown(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                try:
                    os.kill(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()
        for ns in (self.spk, self.rtr):
            out = sh("ip", "netns", "pids", ns, check=False).stdout.split()
            for pid in out:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            sh("ip", "netns", "del", ns, check=False)
        if not self.args.keep:
            shutil.rmtree(self.dir, ignore_errors=True)

    # ------------------------------------------------------------ BIRD probes
    def birdc(self, *cmd, check=True):
        r = sh("birdc", "-s", self.sock, *cmd, check=check)
        return r.stdout

    def counts(self):
        res = []
        for t in ("master4", "master6"):
            out = self.birdc("show", "route", "table", t, "count")
            line = next((l for l in out.splitlines() if " routes for " in l), None)
            if line is None:
                raise RuntimeError(f"unexpected birdc count output: {out!r}")
            res.append(int(line.split()[0]))
        return tuple(res)

    def established(self):
        out = self.birdc("show", "protocols", "spk")
        return any(l.startswith("spk") and "Established" in l for l in out.splitlines())

    def wait(self, what, timeout, pred, every=0.02):
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if pred():
                return time.monotonic()
            time.sleep(every)
        raise RuntimeError(f"timed out after {timeout}s waiting for {what}")

    # ------------------------------------------------------------ speakers
    def prefixes(self):
        n = self.args.count
        base = (198 << 24) | (18 << 16)
        v4 = []
        for i in range(n):
            a = base + 1 + i
            v4.append(f"{a >> 24}.{(a >> 16) & 255}.{(a >> 8) & 255}.{a & 255}/32")
        v6 = [f"2001:db8:{0x1000 | (i >> 16):x}:{i & 0xffff:x}::/64" for i in range(n)]
        return v4, v6

    def start_herald(self):
        conf = os.path.join(self.dir, "herald.toml")
        with open(conf, "w") as f:
            f.write(f"""router_id = "{SPK4}"
local_as = {SPEAKER_AS}
[[peers]]
name = "bird"
address = "{RTR4}"
remote_as = {ROUTER_AS}
hold_time = 90
families = ["ipv4", "ipv6"]
next_hop_v4 = "{SPK4}"
next_hop_v6 = "{SPK6}"
""")
        log = open(os.path.join(self.dir, "herald.log"), "a")
        p = subprocess.Popen(
            ["ip", "netns", "exec", self.spk, self.args.announce_bin, "--config", conf,
             "--count", str(self.args.count)],
            stdin=subprocess.PIPE, stdout=log, stderr=log, text=True)
        self.procs.append(p)

        def withdraw():
            p.stdin.write("withdraw\n")
            p.stdin.flush()

        def stop():
            p.stdin.write("quit\n")
            p.stdin.close()
            p.wait(timeout=20)
        return withdraw, stop

    def start_exabgp(self, packed):
        v4, v6 = self.prefixes()
        trigger = os.path.join(self.dir, "exabgp.withdraw")
        if os.path.exists(trigger):
            os.unlink(trigger)
        if packed:
            # ExaBGP's bulk form: many NLRI sharing one attribute set per command.
            def chunks(lst, n=500):
                return [lst[i:i + n] for i in range(0, len(lst), n)]
            ann = [f"announce attributes next-hop {SPK4} nlri {' '.join(c)}" for c in chunks(v4)] + \
                  [f"announce attributes next-hop {SPK6} nlri {' '.join(c)}" for c in chunks(v6)]
            wd = [f"withdraw attributes next-hop {SPK4} nlri {' '.join(c)}" for c in chunks(v4)] + \
                 [f"withdraw attributes next-hop {SPK6} nlri {' '.join(c)}" for c in chunks(v6)]
        else:
            # One route per command, as ExaBGP health-check style feeders do.
            ann = [f"announce route {p} next-hop {SPK4}" for p in v4] + \
                  [f"announce route {p} next-hop {SPK6}" for p in v6]
            wd = [f"withdraw route {p} next-hop {SPK4}" for p in v4] + \
                 [f"withdraw route {p} next-hop {SPK6}" for p in v6]
        feed = os.path.join(self.dir, "exabgp-feed.py")
        with open(feed, "w") as f:
            f.write(f"""import os, sys, time
ann = {json.dumps(ann)}
wd = {json.dumps(wd)}
sys.stdout.write("\\n".join(ann) + "\\n"); sys.stdout.flush()
while not os.path.exists({trigger!r}):
    time.sleep(0.005)
sys.stdout.write("\\n".join(wd) + "\\n"); sys.stdout.flush()
while True:
    if not sys.stdin.readline():
        break
""")
        conf = os.path.join(self.dir, "exabgp.conf")
        with open(conf, "w") as f:
            f.write(f"""process feed {{
  run {sys.executable} {feed};
  encoder text;
}}
neighbor {RTR4} {{
  router-id {SPK4};
  local-address {SPK4};
  local-as {SPEAKER_AS};
  peer-as {ROUTER_AS};
  hold-time 90;
  group-updates true;
  family {{
    ipv4 unicast;
    ipv6 unicast;
  }}
  api {{
    processes [ feed ];
  }}
}}
""")
        env = dict(os.environ)
        env.update({"exabgp.daemon.user": "root", "exabgp.daemon.drop": "false",
                    "exabgp.api.ack": "false", "exabgp.log.destination": "stdout",
                    "exabgp.daemon.daemonize": "false", "exabgp.tcp.bind": SPK4})
        log = open(os.path.join(self.dir, "exabgp.log"), "a")
        p = subprocess.Popen(["ip", "netns", "exec", self.spk, "exabgp", conf],
                             stdout=log, stderr=log, env=env, cwd=self.dir)
        self.procs.append(p)

        def withdraw():
            open(trigger, "w").close()

        def stop():
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        return withdraw, stop

    # ------------------------------------------------------------ one measurement
    def measure(self, name):
        n, to = self.args.count, self.args.timeout
        if self.counts() != (0, 0):
            raise RuntimeError(f"BIRD not empty before {name} run: {self.counts()}")
        t0 = time.monotonic()
        if name == "herald":
            withdraw, stop = self.start_herald()
        else:
            withdraw, stop = self.start_exabgp(packed=(name == "exabgp-packed"))
        try:
            t_est = self.wait(f"{name}: session Established", to, self.established)
            t_full = self.wait(f"{name}: {n}+{n} prefixes in BIRD", to,
                               lambda: self.counts() == (n, n))
            t1 = time.monotonic()
            withdraw()
            t_wd = self.wait(f"{name}: all prefixes withdrawn", to,
                             lambda: self.counts() == (0, 0))
            if not self.established():
                raise RuntimeError(f"{name}: session went down during the withdraw phase")
        finally:
            stop()
        self.wait("BIRD session down after the speaker stopped", 30,
                  lambda: not self.established())
        return {"established": t_est - t0, "full": t_full - t0,
                "full_after_est": t_full - t_est, "withdrawn": t_wd - t1}


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--announce-bin", required=True)
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=180)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--speakers", default="herald,exabgp,exabgp-packed",
                    help="comma-separated subset of herald,exabgp,exabgp-packed")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bgp_bench: needs root")
    for b in ("bird", "birdc", "exabgp", "ip"):
        if shutil.which(b) is None:
            sys.exit(f"bgp_bench: {b} not found (apt-get install -y bird2 exabgp iproute2)")
    if not os.access(args.announce_bin, os.X_OK):
        sys.exit(f"bgp_bench: {args.announce_bin} is not executable "
                 "(cargo build -p herald-announcer --example announce)")
    if not 1 <= args.count <= 131070 or not 1 <= args.rounds <= 20:
        sys.exit("bgp_bench: --count must be 1..131070 and --rounds 1..20")
    b = Bench(args)
    names = [n for n in args.speakers.split(",") if n]
    if not names or any(n not in ("herald", "exabgp", "exabgp-packed") for n in names):
        sys.exit(f"bgp_bench: bad --speakers {args.speakers!r}")
    results = {k: [] for k in names}
    try:
        b.setup()
        for r in range(args.rounds):
            order = names if r % 2 == 0 else list(reversed(names))
            for name in order:
                m = b.measure(name)
                results[name].append(m)
                print(f"round {r + 1} {name:13s} established {m['established']:7.3f}s  "
                      f"full {m['full']:7.3f}s  (after Established {m['full_after_est']:7.3f}s)  "
                      f"withdrawn {m['withdrawn']:7.3f}s", flush=True)
    finally:
        b.teardown()
    med = {k: {m: statistics.median(x[m] for x in v) for m in v[0]} for k, v in results.items()}
    print(f"\nmedian of {args.rounds} rounds, {args.count} IPv4 + {args.count} IPv6 prefixes:")
    for k in names:
        print(f"  {k:13s} full {med[k]['full']:7.3f}s  full-after-established "
              f"{med[k]['full_after_est']:7.3f}s  withdrawn {med[k]['withdrawn']:7.3f}s")
    for other in (n for n in names if n != "herald" and "herald" in names):
        for m in ("full", "full_after_est", "withdrawn"):
            print(f"  ratio {other}/herald {m}: {med[other][m] / med['herald'][m]:.2f}x")
    print(json.dumps({"count": args.count, "rounds": args.rounds, "median": med}))


if __name__ == "__main__":
    main()
