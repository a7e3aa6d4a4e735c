#!/bin/sh
# /init of the havm guest (PID 1): mount the kernel filesystems, then hand over
# to busybox init, which runs /etc/rc.sysinit and the respawned services of /etc/inittab.
export PATH=/bin
mount -t devtmpfs devtmpfs /dev
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t tmpfs -o mode=0755 tmpfs /run
exec /bin/init
