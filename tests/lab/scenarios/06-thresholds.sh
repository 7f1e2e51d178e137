# Upper and lower connection thresholds (-x/-y), drained (weight 0) destinations, the largest
# weight and thresholds.
set -e
ipvsadm -A -t 203.0.113.6:80 -s wlc
ipvsadm -a -t 203.0.113.6:80 -r 192.0.2.11:80 -m -w 10 -x 1000 -y 800
ipvsadm -a -t 203.0.113.6:80 -r 192.0.2.12:80 -m -w 0 -x 50
ipvsadm -a -t 203.0.113.6:80 -r 192.0.2.13:80 -m -w 65535 -x 10 -y 1
ipvsadm -a -t 203.0.113.6:80 -r 192.0.2.14:80 -m -w 1 -x 2147483647 -y 2147483647
ipvsadm -A -t 203.0.113.6:81 -s ovf
ipvsadm -a -t 203.0.113.6:81 -r 192.0.2.11:81 -g -w 3 -x 5
collect
