#!/bin/sh
# GET /cgi-bin/state: the guest's visible state, one key=value per line.
printf 'Content-Type: text/plain\r\n\r\n'
printf 'boot_id=%s\n' "$(cat /proc/sys/kernel/random/boot_id)"
printf 'counter=%s\n' "$(cat /run/havm/counter)"
printf 'hostname=%s\n' "$(hostname)"
