"""A minimal writer of ``newc`` cpio archives, the format the kernel unpacks as initramfs.

Pure Python so building the guest needs no ``cpio`` binary and the archive is
byte-for-byte reproducible (fixed mtimes, inode numbers in insertion order):
the same inputs give the same archive, which is what the build cache relies on.
The archive is left uncompressed on purpose: inflating it under TCG costs boot time.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass, field
from typing import BinaryIO

_TRAILER = "TRAILER!!!"


def _pad4(n: int) -> bytes:
    return b"\0" * ((4 - n % 4) % 4)


@dataclass
class CpioWriter:
    """Collects entries and writes them in the order added (parents first)."""

    entries: list[tuple[str, int, bytes, int, int]] = field(default_factory=list)

    def directory(self, path: str, mode: int = 0o755) -> None:
        self.entries.append((path, stat.S_IFDIR | mode, b"", 0, 0))

    def file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        self.entries.append((path, stat.S_IFREG | mode, data, 0, 0))

    def symlink(self, path: str, target: str) -> None:
        self.entries.append((path, stat.S_IFLNK | 0o777, target.encode(), 0, 0))

    def char_device(self, path: str, major: int, minor: int, mode: int = 0o600) -> None:
        self.entries.append((path, stat.S_IFCHR | mode, b"", major, minor))

    def write(self, out: BinaryIO) -> None:
        ino = 1
        for path, mode, data, rmajor, rminor in self.entries:
            self._entry(out, ino, path.lstrip("/"), mode, data, rmajor, rminor)
            ino += 1
        self._entry(out, 0, _TRAILER, 0, b"", 0, 0)

    @staticmethod
    def _entry(
        out: BinaryIO, ino: int, name: str, mode: int, data: bytes, rmajor: int, rminor: int
    ) -> None:
        nlink = 2 if stat.S_ISDIR(mode) else 1
        encoded = name.encode() + b"\0"
        fields = (ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rmajor, rminor, len(encoded), 0)
        header = b"070701" + b"".join(b"%08X" % f for f in fields)
        out.write(header + encoded + _pad4(len(header) + len(encoded)))
        out.write(data + _pad4(len(data)))
