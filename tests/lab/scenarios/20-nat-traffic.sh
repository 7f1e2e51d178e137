# LVS-NAT with real HTTP traffic: wrr 2:1 over two busybox httpd real servers, and UDP (DNS)
# queries; counters, rates and the connection table are compared
# after the estimator has folded them.
set -e
client_add
vip_add 203.0.113.20
rs_add r1 192.0.2.11
rs_add r2 192.0.2.12
http_start r1
http_start r2
ipvsadm -A -t 203.0.113.20:80 -s wrr
ipvsadm -a -t 203.0.113.20:80 -r 192.0.2.11:80 -m -w 2
ipvsadm -a -t 203.0.113.20:80 -r 192.0.2.12:80 -m -w 1
ipvsadm -A -u 203.0.113.20:53 -s rr
ipvsadm -a -u 203.0.113.20:53 -r 192.0.2.11:53 -m
ipvsadm -a -u 203.0.113.20:53 -r 192.0.2.12:53 -m
sleep 1
client_http_all 203.0.113.20 80 30
client_udp 203.0.113.20 53 6
collect
capture_netlink
