# The exporter's cardinality options on a real table: `per_destination = false`, `include` and
# `exclude` rules and a service name. `collect` scrapes the run-wide daemon (every series);
# then a second daemon with the options scrapes the same table (subset-metrics.txt, its
# configuration in subset.toml). No traffic: the two scrapes must agree value by value.
set -e
ipvsadm -A -t 203.0.113.25:80 -s rr
ipvsadm -a -t 203.0.113.25:80 -r 192.0.2.11:80 -m -w 1
ipvsadm -a -t 203.0.113.25:80 -r 192.0.2.12:80 -m -w 2
ipvsadm -A -u 203.0.113.25:53 -s rr
ipvsadm -a -u 203.0.113.25:53 -r 192.0.2.11:53 -m
ipvsadm -A -t 203.0.113.26:8443 -s wlc
ipvsadm -a -t 203.0.113.26:8443 -r 192.0.2.13:8443 -g
ipvsadm -A -t 198.51.100.25:8080 -s wlc
ipvsadm -a -t 198.51.100.25:8080 -r 192.0.2.13:8080 -m
ipvsadm -A -t [2001:db8:1::25]:443 -s sh
ipvsadm -a -t [2001:db8:1::25]:443 -r [2001:db8:2::11]:443 -g
ipvsadm -A -f 25 -s rr
ipvsadm -a -f 25 -r 192.0.2.14:0 -g
ipvsadm -A -f 26 -s rr
ipvsadm -a -f 26 -r 192.0.2.14:0 -g
collect
{
    cat "$HERALD_TOML"
    cat <<'TOML'
[exporter]
listen = "127.0.0.1:9645"
per_destination = false
include = [{ address = "203.0.113.0/24" }, { address = "2001:db8:1::/64" }, { fwmark = 25 }]
exclude = [{ protocol = "udp", port = 53 }, { address = "203.0.113.26" }]
[exporter.service_names]
"tcp/203.0.113.25:80" = "web"
"fwm/25" = "marked"
TOML
} >"$D/subset.toml"
run_scrape_once "$D/subset.toml" 9645 "$D/subset-metrics.txt" "$D/subset-run.log"
