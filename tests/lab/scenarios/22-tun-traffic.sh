# LVS-TUN (ipip) with real HTTP traffic: the real servers decapsulate on tunl0 and answer the
# client directly. wrr 2:1 over two real servers, so the split of the 12 requests (who
# answered, and the kernel's per-destination counters) is 8:4.
set -e
client_add
vip_add 203.0.113.22
rs_add r1 192.0.2.11
rs_add r2 192.0.2.12
rs_tun r1 203.0.113.22
rs_tun r2 203.0.113.22
http_start r1
http_start r2
ipvsadm -A -t 203.0.113.22:80 -s wrr
ipvsadm -a -t 203.0.113.22:80 -r 192.0.2.11:80 -i -w 2
ipvsadm -a -t 203.0.113.22:80 -r 192.0.2.12:80 -i -w 1
sleep 1
client_http_all 203.0.113.22 80 12
collect
