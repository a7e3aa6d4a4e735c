#!/bin/sh
# Before poweroff (power button, or busybox init's shutdown): stop the ticker,
# write the final counter to disk (fsync) and say so on serial.
export PATH=/bin
killall havm-ticker 2>/dev/null
counter=$(cat /run/havm/counter)
boot_id=$(cat /proc/sys/kernel/random/boot_id)
if [ -b /dev/vda ]; then
    printf 'havm-counter %s %s\n' "$counter" "$boot_id" |
        dd of=/dev/vda bs=512 count=1 conv=sync,fsync 2>/dev/null
fi
sync
echo "havm: powering off boot_id=$boot_id counter=$counter"
