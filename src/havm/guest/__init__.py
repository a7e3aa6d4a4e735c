"""havm's own small guest image (Debian kernel + busybox initramfs) for tests and demos."""

from havm.guest.build import (
    GUEST_HTTP_PORT,
    STATE_PATH,
    GuestImage,
    build_guest,
    default_guest_dir,
)
from havm.guest.cmdline import guest_append
from havm.guest.state import GuestState, parse_serial_states, parse_state
from havm.guest.vmlinux import GuestBuildError

__all__ = [
    "GUEST_HTTP_PORT",
    "STATE_PATH",
    "GuestBuildError",
    "GuestImage",
    "GuestState",
    "build_guest",
    "default_guest_dir",
    "guest_append",
    "parse_serial_states",
    "parse_state",
]
