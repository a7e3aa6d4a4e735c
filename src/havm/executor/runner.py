"""Run one native agent action in its own process: ``python -m havm.executor.runner``.

Why a process per action: the executor must be able to kill an action that
overruns its timeout, with everything it started (its process group), and an
agent bug must never take the daemon down. Costs about 80 ms per action.

Protocol: one JSON request on stdin
  {"agent": "havm.agents.dummy:DummyAgent", "resource": "d1", "params": {...},
   "action": "start", "args": {...}}
stdout: zero or more ``progress: <text>`` lines, then one ``result: <json>``
line with {"rc": int, "output": str, "data": {...}}.
"""

from __future__ import annotations

import json
import sys
import traceback
from typing import Any

from havm.agents.base import OCF, AgentResult

ACTIONS = {"start", "stop", "monitor", "validate", "meta_data", "promote", "demote", "migrate_check",
           "migrate_prepare", "migrate_to", "migrate_from", "migrate_abort", "migrate_recover"}
WITH_PROGRESS = {"start", "stop", "promote", "demote", "migrate_prepare", "migrate_to", "migrate_from",
                 "migrate_abort", "migrate_recover"}


def _emit(line: str) -> None:
    sys.stdout.write("progress: " + line.replace("\n", " ") + "\n")
    sys.stdout.flush()


def run(req: dict[str, Any]) -> AgentResult:
    from havm.executor.registry import load_native

    cls = load_native(req["agent"])
    agent = cls(req["resource"], req.get("params", {}))
    action = req["action"]
    if action not in ACTIONS:
        return AgentResult(OCF.ERR_UNIMPLEMENTED, f"unknown action {action!r}")
    args = dict(req.get("args", {}))
    if action in WITH_PROGRESS:
        args["progress"] = _emit
    if action == "meta_data":
        return AgentResult(OCF.SUCCESS, agent.meta_data())
    result = getattr(agent, action)(**args)
    if not isinstance(result, AgentResult):
        return AgentResult(OCF.ERR_GENERIC, f"agent returned {type(result).__name__}, not an AgentResult")
    return result


def run_and_print(req: Any) -> None:
    """Run one request and print the protocol's result line (never raises)."""
    try:
        result = run(req)
    except Exception as e:  # noqa: BLE001 - an agent bug is ERR_GENERIC, reported with its traceback
        tb = traceback.format_exc(limit=5)
        result = AgentResult(OCF.ERR_GENERIC, f"agent crashed: {e}\n{tb}")
    out = {"rc": int(result.rc), "output": result.output, "data": dict(result.data)}
    sys.stdout.write("result: " + json.dumps(out, default=str) + "\n")
    sys.stdout.flush()


def main() -> int:
    try:
        req = json.loads(sys.stdin.read())
    except ValueError as e:
        req = {"agent": "", "resource": "", "action": "", "error": str(e)}
    run_and_print(req)
    return 0


if __name__ == "__main__":
    sys.exit(main())
