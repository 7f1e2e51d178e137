# Persistent services: default timeout, explicit timeout with netmask, persistent fwmark service,
# and a UDP service with the SIP persistence engine.
set -e
ipvsadm -A -t 203.0.113.4:80 -s rr -p
ipvsadm -a -t 203.0.113.4:80 -r 192.0.2.11:80 -m
ipvsadm -A -t 203.0.113.4:443 -s wlc -p 3600 -M 255.255.255.0
ipvsadm -a -t 203.0.113.4:443 -r 192.0.2.11:443 -m
ipvsadm -a -t 203.0.113.4:443 -r 192.0.2.12:443 -m
ipvsadm -A -f 9 -s rr -p 60 -M 255.255.0.0
ipvsadm -a -f 9 -r 192.0.2.11:0 -g
ipvsadm -A -u 203.0.113.4:5060 -s rr -p 120 --pe sip
ipvsadm -a -u 203.0.113.4:5060 -r 192.0.2.11:5060 -m
collect
