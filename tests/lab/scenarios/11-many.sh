# 300 services with 10 destinations each: replies span many netlink messages.
set -e
i=0
: >/tmp/restore
while [ $i -lt 300 ]; do
    i=$((i + 1))
    echo "-A -t 203.0.113.11:$((10000 + i)) -s wrr" >>/tmp/restore
    j=0
    while [ $j -lt 10 ]; do
        j=$((j + 1))
        echo "-a -t 203.0.113.11:$((10000 + i)) -r 192.0.2.$((100 + j)):$((20000 + i)) -m -w $j" >>/tmp/restore
    done
done
ipvsadm -R </tmp/restore
collect
