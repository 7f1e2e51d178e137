# IPv6 services and destinations, including a persistent IPv6 service with a /64 netmask and an
# IPv6 service with IPv4 tunnel destinations (mixed family).
set -e
ipvsadm -A -t [2001:db8:1::10]:80 -s wrr
ipvsadm -a -t [2001:db8:1::10]:80 -r [2001:db8:2::11]:80 -m -w 2
ipvsadm -a -t [2001:db8:1::10]:80 -r [2001:db8:2::12]:80 -m -w 1
ipvsadm -A -u [2001:db8:1::10]:53 -s rr
ipvsadm -a -u [2001:db8:1::10]:53 -r [2001:db8:2::11]:53 -g
ipvsadm -A --sctp-service [2001:db8:1::10]:3868 -s rr
ipvsadm -a --sctp-service [2001:db8:1::10]:3868 -r [2001:db8:2::11]:3868 -g
ipvsadm -A -t [2001:db8:1::10]:443 -s sh -p 600 -M 64
ipvsadm -a -t [2001:db8:1::10]:443 -r [2001:db8:2::11]:443 -g
ipvsadm -A -t [2001:db8:1::20]:80 -s rr
ipvsadm -a -t [2001:db8:1::20]:80 -r 192.0.2.21:80 -i || echo "mixed-family tunnel destination refused by this kernel/ipvsadm"
ipvsadm -A -t [::ffff:203.0.113.1]:80 -s rr 2>/dev/null || true
collect
capture_netlink
