#!/bin/sh
# Tick the counter once a second: memory (/run/havm/counter), disk (sector 0 of
# /dev/vda, fsync-ed so a kill -9 of QEMU loses at most one tick), serial.
export PATH=/bin
boot_id=$(cat /proc/sys/kernel/random/boot_id)
counter=$(cat /run/havm/counter)
while :; do
    sleep 1
    counter=$((counter + 1))
    echo "$counter" > /run/havm/counter.new && mv /run/havm/counter.new /run/havm/counter
    if [ -b /dev/vda ]; then
        printf 'havm-counter %s %s\n' "$counter" "$boot_id" |
            dd of=/dev/vda bs=512 count=1 conv=sync,fsync 2>/dev/null
    fi
    echo "havm: boot_id=$boot_id counter=$counter"
done
