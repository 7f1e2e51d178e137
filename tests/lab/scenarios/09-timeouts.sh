# Changed protocol timeouts (ipvsadm --set tcp tcpfin udp).
set -e
ipvsadm --set 3600 30 45
ipvsadm -A -u 203.0.113.9:53 -s rr
collect
