"""Agent parameters for running the havm guest: used by tests, benches and the lab."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

from havm.guest.build import GUEST_HTTP_PORT, GuestImage
from havm.guest.cmdline import guest_append
from havm.guest.state import GuestState, fetch_state


def create_disk(path: Path | str, size_mb: int = 16, fmt: str = "qcow2") -> Path:
    """Create the guest's counter disk (zeros read as counter 0) unless it exists."""
    disk = Path(path)
    if not disk.exists():
        disk.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["qemu-img", "create", "-q", "-f", fmt, str(disk), f"{size_mb}M"],
                       check=True, capture_output=True, timeout=30)
    return disk


def guest_params(
    image: GuestImage,
    name: str,
    disk: Path | str,
    run_dir: Path | str,
    *,
    ip: str | None = None,
    bridge: str | None = None,
    hostfwd_port: int | None = None,
    memory: int = 128,
    **extra: Any,
) -> dict[str, Any]:
    """``qemu`` agent params for the guest with its counter disk.

    Network: ``bridge`` (tap on a bridge; give ``ip`` in CIDR for the guest's
    eth0), or ``hostfwd_port`` (QEMU user networking, the guest's HTTP service
    forwarded to 127.0.0.1:hostfwd_port; for single-host tests), or none.
    """
    nics: list[dict[str, Any]] = []
    if bridge:
        nics.append({"bridge": bridge})
    elif hostfwd_port:
        nics.append({"user": True,
                     "hostfwd": f"tcp:127.0.0.1:{hostfwd_port}-:{GUEST_HTTP_PORT}"})
        ip = ip or "10.0.2.15/24"  # QEMU's user network
    return {
        "name": name,
        "memory": memory,
        "cpus": 1,
        "machine": "microvm",
        "kernel": str(image.vmlinux),
        "initrd": str(image.initramfs),
        "append": guest_append(ip=ip, hostname=name),
        "disks": [{"path": str(disk)}],
        "nics": nics,
        "run_dir": str(run_dir),
        **extra,
    }


def wait_for_state(host: str, port: int, timeout: float = 30.0,
                   newer_than: int | None = None) -> GuestState:
    """Poll the guest's HTTP state until it answers (and its counter > ``newer_than``)."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            # A generous per-request timeout: on an overloaded host the emulated
            # guest answers late, and re-asking every second only piles up requests.
            state = fetch_state(host, port, timeout=max(1.0, min(5.0, deadline - time.monotonic())))
            if newer_than is None or state.counter > newer_than:
                return state
        except (OSError, ValueError) as exc:
            last_error = exc
        time.sleep(0.2)
    raise TimeoutError(f"guest at {host}:{port} gave no (newer) state in {timeout:.0f}s: {last_error}")
