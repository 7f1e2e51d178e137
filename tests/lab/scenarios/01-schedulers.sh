# Every scheduler the kernel ships: one TCP service each, three masq destinations with distinct
# weights; sh and mh with their scheduler flags. twos (Debian's 6.12) only when its module was
# loaded (or built in); otherwise the host named ip_vs_twos in /lib/modules/absent and
# tests/lab.rs asserts that by name.
set -e
port=8000
scheds="rr wrr lc wlc lblc lblcr dh sh sed nq mh fo ovf"
if grep -q '^ip_vs_twos ' /proc/modules || grep -qx ip_vs_twos /lib/modules/builtin; then
    scheds="$scheds twos"
elif ! grep -qx ip_vs_twos /lib/modules/absent; then
    echo "ip_vs_twos neither loaded nor named absent" >&2
    exit 1
fi
for s in $scheds; do
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
