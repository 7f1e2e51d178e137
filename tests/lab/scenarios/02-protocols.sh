# TCP, UDP and SCTP address services, IPv4 and IPv6 fwmark services, and a service with no
# destinations.
set -e
ipvsadm -A -t 203.0.113.3:80 -s rr
ipvsadm -a -t 203.0.113.3:80 -r 192.0.2.11:80 -m
ipvsadm -A -u 203.0.113.3:53 -s rr
ipvsadm -a -u 203.0.113.3:53 -r 192.0.2.11:53 -m
ipvsadm -a -u 203.0.113.3:53 -r 192.0.2.12:5353 -m -w 5
ipvsadm -A --sctp-service 203.0.113.3:3868 -s rr
ipvsadm -a --sctp-service 203.0.113.3:3868 -r 192.0.2.11:3868 -m
ipvsadm -A -f 7 -s wlc
ipvsadm -a -f 7 -r 192.0.2.11:0 -g
ipvsadm -a -f 7 -r 192.0.2.12:0 -g -w 3
ipvsadm -A -f 4294967295 -s rr
ipvsadm -a -f 4294967295 -r 192.0.2.13:0 -g
ipvsadm -A -f 8 -6 -s rr
ipvsadm -a -f 8 -6 -r [2001:db8:2::11]:0 -g
ipvsadm -A -t 203.0.113.3:443 -s wlc
ipvsadm -A -t 203.0.113.3:1 -s rr
ipvsadm -a -t 203.0.113.3:1 -r 192.0.2.11:65535 -m
collect
capture_netlink
