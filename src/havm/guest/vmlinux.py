"""Turn Debian's compressed bzImage into an ELF ``vmlinux``.

Why: under TCG the kernel spends ~6 s decompressing itself. Booting the
already-uncompressed ELF through its PVH entry point reaches userspace in ~3 s.
The bzImage carries the compressed vmlinux as its payload; like the kernel's
``scripts/extract-vmlinux`` we look for a compression magic and try to inflate
from each candidate offset until the result is an ELF image.
"""

from __future__ import annotations

import gzip
import lzma
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

from havm.errors import HavmError

ELF_MAGIC = b"\x7fELF"


class GuestBuildError(HavmError):
    """The guest image could not be built; the message names the missing input."""

    code = "guest-build"
    exit_status = 11


def _xz(data: bytes) -> bytes:
    return lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(data)


def _lzma_alone(data: bytes) -> bytes:
    return lzma.LZMADecompressor(format=lzma.FORMAT_ALONE).decompress(data)


def _gzip(data: bytes) -> bytes:
    return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data)


# (magic, decompressor); order is the likelihood for Debian kernels (xz first).
_METHODS: tuple[tuple[bytes, Callable[[bytes], bytes]], ...] = (
    (b"\xfd7zXZ\x00", _xz),
    (b"\x5d\x00\x00\x00", _lzma_alone),
    (b"\x1f\x8b\x08", _gzip),
)


def _candidates(image: bytes) -> Iterator[tuple[int, Callable[[bytes], bytes]]]:
    for magic, method in _METHODS:
        start = 0
        while True:
            pos = image.find(magic, start)
            if pos < 0:
                break
            yield pos, method
            start = pos + 1


def extract_vmlinux(bzimage: bytes) -> bytes:
    """Return the ELF vmlinux embedded in ``bzimage``.

    Raises GuestBuildError if no candidate payload inflates to an ELF image.
    """
    if bzimage[:4] == ELF_MAGIC:
        return bzimage
    for offset, method in _candidates(bzimage):
        try:
            out = method(bzimage[offset:])
        except (lzma.LZMAError, zlib.error, gzip.BadGzipFile, EOFError):
            continue
        if out[:4] == ELF_MAGIC:
            return out
    raise GuestBuildError(
        "no xz/lzma/gzip payload inflating to an ELF vmlinux found in the kernel image"
    )


def find_debian_kernel(boot: Path = Path("/boot")) -> Path:
    """The newest /boot/vmlinuz-*-amd64 (install package linux-image-amd64)."""
    kernels = sorted(boot.glob("vmlinuz-*-amd64"))
    if not kernels:
        raise GuestBuildError(
            f"no {boot}/vmlinuz-*-amd64 found: install the Debian package linux-image-amd64"
        )
    return kernels[-1]


def kernel_release(vmlinuz: Path) -> str:
    """``/boot/vmlinuz-6.1.0-56-amd64`` -> ``6.1.0-56-amd64``."""
    return vmlinuz.name.removeprefix("vmlinuz-")
