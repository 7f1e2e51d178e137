# Connection-synchronisation daemons: a master and a backup with explicit sync ids, multicast
# group, port, TTL and maximum message length, on a veth pair.
set -e
ip link add lab-sync0 type veth peer name lab-sync1
ip link set lab-sync0 up
ip link set lab-sync1 up
ip addr add 192.0.2.201/24 dev lab-sync0
ipvsadm -A -t 203.0.113.8:80 -s rr
ipvsadm -a -t 203.0.113.8:80 -r 192.0.2.11:80 -g
ipvsadm --start-daemon master --mcast-interface lab-sync0 --syncid 7 \
    --sync-maxlen 1400 --mcast-group 224.0.0.81 --mcast-port 8848 --mcast-ttl 2
ipvsadm --start-daemon backup --mcast-interface lab-sync1 --syncid 9
collect
capture_netlink
