# Every scheduler the kernel ships: one TCP service each, three masq destinations with distinct
# weights; sh and mh with their scheduler flags.
set -e
port=8000
for s in rr wrr lc wlc lblc lblcr dh sh sed nq mh fo ovf; do
    port=$((port + 1))
    ipvsadm -A -t 203.0.113.1:$port -s $s
    ipvsadm -a -t 203.0.113.1:$port -r 192.0.2.11:80 -m -w 1
    ipvsadm -a -t 203.0.113.1:$port -r 192.0.2.12:80 -m -w 2
    ipvsadm -a -t 203.0.113.1:$port -r 192.0.2.13:8080 -m -w 3
done
ipvsadm -A -t 203.0.113.2:80 -s sh -b sh-fallback,sh-port
ipvsadm -a -t 203.0.113.2:80 -r 192.0.2.11:80 -g
ipvsadm -A -t 203.0.113.2:81 -s mh -b mh-fallback,mh-port
ipvsadm -a -t 203.0.113.2:81 -r 192.0.2.11:81 -g
collect
