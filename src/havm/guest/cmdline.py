"""The kernel command line the havm guest boots with.

``lpj``/``tsc_early_khz`` are not optional on microvm under TCG: microvm has no
HPET or PM timer, and without them the kernel hung in 2 of 3 boots at
"tsc: Unable to calibrate against PIT". Both sides of a live migration must use
the same string, so compute it once and keep it in the VM's definition.
"""

from __future__ import annotations

from pathlib import Path

BASE_ARGS = "console=ttyS0 quiet mitigations=off security=none cryptomgr.notests"


def host_khz(cpuinfo: Path = Path("/proc/cpuinfo")) -> int:
    """The host CPU frequency in kHz (first ``cpu MHz`` line); 2 GHz if unknown."""
    tsc = Path("/sys/devices/system/cpu/cpu0/tsc_freq_khz")
    try:
        return int(tsc.read_text().strip())
    except (OSError, ValueError):
        pass
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("cpu MHz"):
                return int(float(line.split(":", 1)[1]) * 1000)
    except (OSError, ValueError):
        pass
    return 2_000_000


def guest_append(
    ip: str | None = None,
    gw: str | None = None,
    hostname: str | None = None,
    khz: int | None = None,
    extra: str = "",
) -> str:
    """Kernel args for the guest; ``ip`` is CIDR (``10.77.0.50/24``) for eth0."""
    khz = khz or host_khz()
    parts = [BASE_ARGS, f"lpj={khz * 4}", f"tsc_early_khz={khz}"]
    if ip:
        if "/" not in ip:
            raise ValueError(f"havm.ip must be CIDR like 10.77.0.50/24, got {ip!r}")
        parts.append(f"havm.ip={ip}")
    if gw:
        parts.append(f"havm.gw={gw}")
    if hostname:
        parts.append(f"havm.hostname={hostname}")
    if extra:
        parts.append(extra)
    return " ".join(parts)
