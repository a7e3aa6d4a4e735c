"""The lab's power switch as a lean command, for fence devices.

``python -m havm.lab.power NODE --dir DIR`` does what ``havm lab kill NODE
--dir DIR --json`` does (SIGKILL every process of the node, print the JSON
result: node, pid, killed, at) but loads only the lab's process code: no
CLI, no configuration schema, no scheduler. A fence device runs it on the
failover path, where the full CLI's imports cost 1-2 s of a loaded machine.
Exit status 0 once no process of the node is left; otherwise the error's
exit status with the reason on stderr (8: processes survive SIGKILL).
"""

from __future__ import annotations

import argparse
import json
import sys

from havm.errors import HavmError
from havm.lab import control


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m havm.lab.power", description=__doc__.splitlines()[0])
    p.add_argument("node")
    p.add_argument("--dir", required=True, help="the lab directory")
    args = p.parse_args(argv)
    try:
        res = control.kill_node(args.dir, args.node)
    except HavmError as e:
        print(f"havm: {e}", file=sys.stderr)
        return e.exit_status
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
