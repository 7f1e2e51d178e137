# The daemon (`ipvs-herald run`) serving Prometheus metrics about a NAT service with real
# traffic, a DR service with thresholds, and an IPv6 service; the scrape is compared with
# ipvsadm read just before and after it.
set -e
client_add
vip_add 203.0.113.24
rs_add r1 192.0.2.11
rs_add r2 192.0.2.12
http_start r1
http_start r2
ipvsadm -A -t 203.0.113.24:80 -s wrr
ipvsadm -a -t 203.0.113.24:80 -r 192.0.2.11:80 -m -w 3
ipvsadm -a -t 203.0.113.24:80 -r 192.0.2.12:80 -m -w 1
ipvsadm -A -u 203.0.113.24:53 -s rr
ipvsadm -a -u 203.0.113.24:53 -r 192.0.2.11:53 -m -x 100 -y 10
ipvsadm -A -t [2001:db8:1::24]:443 -s sh -p 60
ipvsadm -a -t [2001:db8:1::24]:443 -r [2001:db8:2::11]:443 -g -w 2
ipvsadm --set 1000 100 200
"$HERALD" --config "$HERALD_TOML" run >"$D/daemon.log" 2>&1 &
echo $! >>/tmp/lab.pids
sleep 1
client_http 203.0.113.24 80 16
client_udp 203.0.113.24 53 3
# Wait (bounded) for the exporter to answer.
n=0
until scrape 9639 /tmp/probe.http; do
    n=$((n + 1))
    [ $n -lt 60 ] || { echo "the exporter never answered on :9639"; cat "$D/daemon.log"; exit 1; }
    sleep 1
done
collect_metrics 9639
