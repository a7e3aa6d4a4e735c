#!/bin/sh
# GET /cgi-bin/state: the guest's visible state, one key=value per line.
# Shell builtins only (no fork): it must answer fast on a slow, emulated CPU.
read -r boot_id < /proc/sys/kernel/random/boot_id
read -r counter < /run/havm/counter
read -r hostname < /proc/sys/kernel/hostname
printf 'Content-Type: text/plain\r\n\r\nboot_id=%s\ncounter=%s\nhostname=%s\n' \
    "$boot_id" "$counter" "$hostname"
