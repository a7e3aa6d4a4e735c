#!/bin/sh
# acpid runs this on the ACPI power button (QMP system_powerdown). The counter
# is saved by rc.shutdown, so power off at once instead of busybox init's
# slower SIGTERM/sleep/SIGKILL round.
/etc/rc.shutdown >/dev/console 2>&1  # acpid children write to its log file
exec /bin/poweroff -f
