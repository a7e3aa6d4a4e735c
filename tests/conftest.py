"""Shared fixtures: a valid config writer for tests."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

VALID = textwrap.dedent("""\
    cluster: testc
    nodes:
      - name: n1
        addresses: {ring0: 127.0.10.1, ring1: 127.0.11.1}
      - name: n2
        addresses: {ring0: 127.0.10.2, ring1: 127.0.11.2}
      - name: n3
        addresses: {ring0: 127.0.10.3, ring1: 127.0.11.3}
    links:
      - name: ring0
      - name: ring1
        mode: unicast
        port: 695
    timing:
      keepalive: 200ms
      warntime: 0.5
      deadtime: 1s
      initdead: 5
    """)


@pytest.fixture
def write_config(tmp_path: Path):
    """Write a config (and a safe key file) into tmp_path; return the config path."""

    def write(text: str = VALID, key: bytes | None = b"0123456789abcdef0123456789abcdef", key_mode: int = 0o600) -> str:
        cfg = tmp_path / "cluster.yaml"
        cfg.write_text(text)
        if key is not None:
            kp = tmp_path / "authkey"
            if kp.exists():
                kp.unlink()
            kp.write_bytes(key)
            os.chmod(kp, key_mode)
        return str(cfg)

    return write
