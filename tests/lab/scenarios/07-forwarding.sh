# Every forwarding method: masq, route (DR), tunnel with ipip, gue (port, csum flags) and gre.
set -e
ipvsadm -A -t 203.0.113.7:80 -s rr
ipvsadm -a -t 203.0.113.7:80 -r 192.0.2.11:80 -m
ipvsadm -a -t 203.0.113.7:80 -r 192.0.2.12:80 -g
ipvsadm -a -t 203.0.113.7:80 -r 192.0.2.13:80 -i
ipvsadm -a -t 203.0.113.7:80 -r 192.0.2.14:80 -i --tun-type ipip
ipvsadm -A -t 203.0.113.7:81 -s rr
ipvsadm -a -t 203.0.113.7:81 -r 192.0.2.21:81 -i --tun-type gue --tun-port 6080 --tun-nocsum
ipvsadm -a -t 203.0.113.7:81 -r 192.0.2.22:81 -i --tun-type gue --tun-port 6081 --tun-csum
ipvsadm -a -t 203.0.113.7:81 -r 192.0.2.23:81 -i --tun-type gue --tun-port 6082 --tun-remcsum
ipvsadm -a -t 203.0.113.7:81 -r 192.0.2.24:81 -i --tun-type gre
ipvsadm -a -t 203.0.113.7:81 -r 192.0.2.25:81 -i --tun-type gre --tun-csum
collect
capture_netlink
