# LVS-DR with real HTTP traffic: the VIP on each real server's lo (arp_ignore=1,
# arp_announce=2); replies go back through the director as a plain router. wrr 3:1, so the
# split of the 20 requests (who answered, and the kernel's per-destination counters) is 15:5.
set -e
client_add
vip_add 203.0.113.21
rs_add r1 192.0.2.11
rs_add r2 192.0.2.12
rs_dr r1 203.0.113.21
rs_dr r2 203.0.113.21
http_start r1
http_start r2
ipvsadm -A -t 203.0.113.21:80 -s wrr
ipvsadm -a -t 203.0.113.21:80 -r 192.0.2.11:80 -g -w 3
ipvsadm -a -t 203.0.113.21:80 -r 192.0.2.12:80 -g -w 1
sleep 1
client_http_all 203.0.113.21 80 20
collect
