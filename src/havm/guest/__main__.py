"""``python -m havm.guest build [DIR]``: build (or reuse) the guest image."""

from __future__ import annotations

import argparse
import sys

from havm.errors import HavmError
from havm.guest.build import build_guest, default_guest_dir
from havm.guest.cmdline import guest_append


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m havm.guest")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build the guest (cached) and print its paths")
    build.add_argument("dir", nargs="?", default=None, help=f"default {default_guest_dir()}")
    args = parser.parse_args(argv)
    try:
        image = build_guest(args.dir)
    except HavmError as exc:
        print(f"havm.guest: {exc}", file=sys.stderr)
        return exc.exit_status
    print(f"vmlinux   {image.vmlinux}")
    print(f"initramfs {image.initramfs}")
    print(f"kernel    {image.kernel_release}")
    print(f"append    {guest_append()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
