"""Durable, atomic replacement of a small file (config, terms, tokens, generation,
fencing history).

Guarantee: once ``atomic_write`` returns, the new content is on disk, and a crash
at any instant leaves either the old or the new file whole, never a mix: write a
temp file in the same directory, fsync it, rename it over the old one, fsync the
directory (without that last step the rename itself may be lost on power loss).
"""

from __future__ import annotations

import os
import tempfile


def atomic_write(path: str, data: bytes, mode: int = 0o600) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    dfd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
