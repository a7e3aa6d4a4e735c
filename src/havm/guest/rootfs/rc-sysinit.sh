#!/bin/sh
# Boot: load virtio/ACPI modules, bring up the network from havm.* kernel args,
# restore the counter from /dev/vda. acpid and the services are started by inittab.
export PATH=/bin
while read -r mod; do
    insmod "/lib/modules/$mod.ko" || echo "havm: insmod $mod failed"
done < /etc/modules

karg() {
    for word in $(cat /proc/cmdline); do
        case "$word" in "$1="*) echo "${word#*=}" ;; esac
    done
}

ip link set lo up
host=$(karg havm.hostname)
hostname "${host:-$(cat /etc/hostname)}"
addr=$(karg havm.ip)
if [ -n "$addr" ]; then
    i=0
    while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 50 ]; do usleep 20000; i=$((i + 1)); done
    ip link set eth0 up && ip addr add "$addr" dev eth0 || echo "havm: network setup failed"
    gw=$(karg havm.gw)
    [ -n "$gw" ] && ip route add default via "$gw"
fi

i=0
while [ ! -b /dev/vda ] && [ $i -lt 25 ]; do usleep 20000; i=$((i + 1)); done
mkdir -p /run/havm
counter=0
if [ -b /dev/vda ]; then
    set -- $(dd if=/dev/vda bs=512 count=1 2>/dev/null | head -n 1 | tr -d '\000')
    if [ "$1" = havm-counter ]; then
        case "$2" in '' | *[!0-9]*) ;; *) counter=$2 ;; esac
    fi
else
    echo "havm: no /dev/vda, the counter lives in memory only"
fi
echo "$counter" > /run/havm/counter
echo "havm: up boot_id=$(cat /proc/sys/kernel/random/boot_id) counter=$counter ip=${addr:-none}"
