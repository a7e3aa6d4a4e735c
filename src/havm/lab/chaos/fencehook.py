"""The lab power switch's test hook: make fencing fail, slow, or (unsafe) lie.

The campaign writes ``LABDIR/chaos-fence.json``; the lab's power switch
(``havm.fencing``'s lab device, and only it) reads it before each fence:

- ``{"mode": "fail"}``: the device reports failure without touching the node
  (a BMC that does not answer); the controller must retry and recover nothing;
- ``{"mode": "slow", "delay": S}``: the device waits S seconds, then fences;
- ``{"mode": "lie"}``: TEST ONLY, UNSAFE. The device reports the node off
  without powering it off. It exists so a test can prove the campaign's
  observer catches the double-active VM that follows; only
  ``havm lab chaos --unsafe-fake-fencing`` writes it, in a lab it created.

``nodes`` (optional) limits the hook to fencing those nodes. No file: the
switch behaves normally. Reading is cheap and never raises: a broken file is
ignored (the switch then fences for real, the safe side).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

HOOK_FILE = "chaos-fence.json"
MODES = ("fail", "slow", "lie")


@dataclass(frozen=True)
class FenceOverride:
    mode: str  # fail | slow | lie
    delay: float = 0.0


def hook_path(lab_dir: str) -> str:
    return os.path.join(lab_dir, HOOK_FILE)


def fence_override(lab_dir: str, node: str) -> FenceOverride | None:
    """What the hook asks of a fence of ``node`` now, or None (fence for real)."""
    try:
        with open(hook_path(lab_dir), encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("mode") not in MODES:
        return None
    nodes = data.get("nodes")
    if isinstance(nodes, list) and node not in nodes:
        return None
    try:
        delay = float(data.get("delay", 0.0))
    except (TypeError, ValueError):
        delay = 0.0
    return FenceOverride(str(data["mode"]), max(0.0, delay))


def set_override(lab_dir: str, mode: str | None, delay: float = 0.0, nodes: list[str] | None = None) -> None:
    """Write (or with ``mode`` None remove) the hook file atomically."""
    path = hook_path(lab_dir)
    if mode is None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        return
    if mode not in MODES:
        raise ValueError(f"fence hook mode must be one of {', '.join(MODES)}, got {mode!r}")
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({"mode": mode, "delay": delay, "nodes": nodes}, f)
    os.replace(tmp, path)
