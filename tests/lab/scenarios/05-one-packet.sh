# One-packet scheduling (-o) on UDP services, with and without persistence.
set -e
ipvsadm -A -u 203.0.113.5:53 -s rr -o
ipvsadm -a -u 203.0.113.5:53 -r 192.0.2.11:53 -m
ipvsadm -a -u 203.0.113.5:53 -r 192.0.2.12:53 -m
ipvsadm -A -u 203.0.113.5:514 -s sh -o -p 30
ipvsadm -a -u 203.0.113.5:514 -r 192.0.2.11:514 -g
collect
