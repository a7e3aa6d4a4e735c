"""A lab node's power, as its simulated BMC sees it: ipmi_sim's chassis control.

ipmi_sim runs ``<script> get power`` and ``<script> set power 0|1`` for every
IPMI chassis request, several times per fence (fence_ipmilan checks the
status before and after acting), so this module is on the failover path:
it imports nothing of havm and is run by path with ``python -I -S``. Only a
power change execs the full lab code (``havm.lab.bmc power``).

A node is powered while any process of it runs, the lab's machinery aside
(the namespace holder, packet delayers): a node whose havmd alone died is
still on (its VMs may run), so fencing it still kills them. This is read
from ``LABDIR/lab.json`` and /proc, as ``havm.lab.daemons.node_pids`` does.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

MARKER = "HAVM_LAB_NODE"  # as havm.lab.daemons.MARKER (no import: see above)
FAULT_FILE = "fault.json"


def _load(lab_dir: str) -> dict[str, Any]:
    with open(os.path.join(lab_dir, "lab.json"), encoding="utf-8") as f:
        return json.load(f)  # type: ignore[no-any-return]


def _netns_inode(state: dict[str, Any], name: str) -> int | None:  # type: ignore[type-arg]
    try:
        st = os.stat(os.path.join("/run/netns", name))
        if st.st_dev == os.stat("/proc/self/ns/net").st_dev:
            return st.st_ino
    except OSError:
        pass
    return state.get("netns_inodes", {}).get(name)  # type: ignore[no-any-return]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as f:
            raw = f.read()
    except OSError:
        return False
    return raw[raw.rfind(")") + 2:][:1] not in ("Z", "X")


def node_pids(state: dict[str, Any], node: str) -> list[int]:  # type: ignore[type-arg]
    """The node's processes, machinery excluded."""
    rec = state["nodes"][node]
    spare = {p for p in (rec.get("holder_pid"),) if p}
    spare |= {loss["delayer"]["pid"] for loss in state.get("faults", {}).get("loss", {}).get(node, {}).values()
              if loss.get("delayer")}
    me = os.getpid()
    if rec.get("netns"):
        inode = _netns_inode(state, rec["netns"])
        if inode is None:
            return []
        wanted = f"net:[{inode}]"
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if os.readlink(f"/proc/{entry}/ns/net") == wanted:
                        found.append(int(entry))
                except OSError:
                    continue
    else:
        marker = f"{MARKER}={rec['dir']}".encode()
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/environ", "rb") as f:
                        if marker in f.read().split(b"\0"):
                            found.append(int(entry))
                except OSError:
                    continue
    return [p for p in found if p != me and p not in spare and _alive(p)]


def node_powered(lab_dir: str, node: str) -> bool:
    return bool(node_pids(_load(lab_dir), node))


def fault(bmc_dir: str) -> dict[str, Any]:
    try:
        with open(os.path.join(bmc_dir, FAULT_FILE), encoding="utf-8") as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def main(argv: list[str]) -> int:
    """``chassis.py LABDIR NODE BMCDIR SRC PYTHON get power`` / ``... set power 0|1``."""
    lab_dir, node, bmc_dir, src, python = argv[:5]
    request = argv[5:]
    f = fault(bmc_dir)
    if f.get("mode") == "slow":
        time.sleep(float(f.get("seconds", 0)))
    if len(request) >= 2 and request[0] == "get":
        powered = node_powered(lab_dir, node)
        print(" ".join(f"{w}:{int(powered)}" for w in request[1:] if w == "power"))
        return 0
    if len(request) == 3 and request[:2] == ["set", "power"] and request[2] in ("0", "1"):
        if f.get("mode") == "refuse":
            print("havm lab: this BMC refuses power commands (fault injected)", file=sys.stderr)
            return 1
        env = dict(os.environ, PYTHONPATH=src)
        os.execve(python, [python, "-m", "havm.lab.bmc", "power", "--dir", lab_dir, "--node", node,
                           "on" if request[2] == "1" else "off"], env)
    if len(request) >= 2 and request[0] == "set":
        return 0  # other chassis settings (boot device, ...): accepted, nothing to do
    print(f"unsupported chassis request: {' '.join(request)}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
