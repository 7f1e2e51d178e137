# LVS-TUN (ipip) with real HTTP traffic: the real servers decapsulate on tunl0.
set -e
client_add
vip_add 203.0.113.22
rs_add r1 192.0.2.11
rs_tun r1 203.0.113.22
http_start r1
ipvsadm -A -t 203.0.113.22:80 -s rr
ipvsadm -a -t 203.0.113.22:80 -r 192.0.2.11:80 -i
sleep 1
client_http 203.0.113.22 80 10
collect
