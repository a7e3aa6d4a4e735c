#!/bin/sh
# acpid runs this on the ACPI power button (QMP system_powerdown): clean poweroff.
echo "havm: power button pressed"
exec /bin/poweroff
