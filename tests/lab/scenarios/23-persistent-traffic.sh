# Persistence with real traffic (run last: its template stays in the connection table for the
# persistence timeout): a persistent NAT service, so -Lnc holds the template of an address
# service (`TCP … ASSURED 198.51.100.2:0`) next to the connections it pinned.
set -e
client_add
vip_add 203.0.113.23
rs_add r1 192.0.2.11
rs_add r2 192.0.2.12
http_start r1
http_start r2
ipvsadm -A -t 203.0.113.23:8080 -s rr -p 300
ipvsadm -a -t 203.0.113.23:8080 -r 192.0.2.11:80 -m
ipvsadm -a -t 203.0.113.23:8080 -r 192.0.2.12:80 -m
sleep 1
client_http 203.0.113.23 8080 10
collect
