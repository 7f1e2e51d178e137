# Reading another network namespace's IPVS table (`dump --netns`, `[reader] netns`): the
# table lives in namespace "lb" (its own services, nothing of the director's), and `collect`
# runs every ipvsadm view inside "lb" (LAB_NETNS) and both dumps from the director's initial
# namespace with `--netns lb`; then `ipvs-herald run` with `[reader] netns = "lb"` is scraped.
# The director's own table holds a different service, which must not show up.
set -e
ns_new lb
ip netns exec lb ipvsadm -A -t 203.0.113.40:80 -s wrr
ip netns exec lb ipvsadm -a -t 203.0.113.40:80 -r 192.0.2.41:80 -m -w 3
ip netns exec lb ipvsadm -a -t 203.0.113.40:80 -r 192.0.2.42:80 -g -w 1
ip netns exec lb ipvsadm -A -u 203.0.113.40:53 -s sh
ip netns exec lb ipvsadm -a -u 203.0.113.40:53 -r 192.0.2.41:53 -m
ip netns exec lb ipvsadm -A -f 40 -s rr -p 60
ip netns exec lb ipvsadm -a -f 40 -r 192.0.2.43:0 -i
ipvsadm -A -t 203.0.113.41:443 -s rr
ipvsadm -a -t 203.0.113.41:443 -r 192.0.2.44:443 -m
LAB_NETNS=lb
collect
LAB_NETNS=
# The daemon with `[reader] netns = "lb"`, scraped in the same (static) state: metrics.txt,
# compared with lb's ipvsadm views like every scenario's scrape.
{
    printf '[reader]\ntimeout = "120s"\nnetns = "lb"\n'
    printf '[exporter]\nlisten = "127.0.0.1:9644"\n'
    printf '[exporter.limits]\ndefault_scrape_timeout = "150s"\nrequest_timeout = "200s"\n'
} >/tmp/netns-run.toml
run_scrape_once /tmp/netns-run.toml 9644 "$D/metrics.txt" "$D/netns-run.log"
