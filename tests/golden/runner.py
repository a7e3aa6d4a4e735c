"""Golden scenarios: config + state in, expected transition and placement out.

Each directory under tests/golden/ holds ``config.yaml`` (a cluster config; its
first comment line says what the scenario checks), ``state.yaml`` (a state
snapshot, optional) and ``expected.json``: the actions in their planned order,
each with what it waits for (``"vm1_start_n3 <- fence_n2"``), the placement,
the promoted instances and the planner's notes.

Regenerate after a deliberate change and review the diff by hand::

    .venv/bin/python tests/golden/runner.py --update [SCENARIO...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from havm.config.load import parse_config_text
from havm.scheduler import ClusterSpec, State, Transition, plan
from havm.scheduler.state_file import load_state

ROOT = Path(__file__).resolve().parent


def scenarios() -> list[str]:
    return sorted(p.name for p in ROOT.iterdir() if (p / "config.yaml").is_file())


def load(name: str) -> tuple[ClusterSpec, State]:
    d = ROOT / name
    config = parse_config_text((d / "config.yaml").read_text(), str(d / "config.yaml")).config
    state = load_state(str(d / "state.yaml")) if (d / "state.yaml").is_file() else State()
    return ClusterSpec.from_config(config), state


def summarize(t: Transition) -> dict[str, Any]:
    actions = []
    for a in t.actions:
        after = t.after.get(a.id, ())
        actions.append(a.id + (" <- " + ", ".join(after) if after else ""))
    return {
        "actions": actions,
        "placement": {k: list(v) if isinstance(v, tuple) else v for k, v in t.placement.items()},
        "promoted": {k: list(v) for k, v in t.promoted.items() if v},
        "notes": list(t.notes),
    }


def run(name: str) -> dict[str, Any]:
    spec, state = load(name)
    return summarize(plan(spec, state))


def expected(name: str) -> dict[str, Any]:
    return json.loads((ROOT / name / "expected.json").read_text())


def update(names: list[str]) -> None:
    for name in names or scenarios():
        got = run(name)
        path = ROOT / name / "expected.json"
        old = path.read_text() if path.exists() else None
        new = json.dumps(got, indent=1) + "\n"
        if old != new:
            path.write_text(new)
            print(f"updated {name}")


if __name__ == "__main__":
    args = sys.argv[1:]
    if args and args[0] == "--update":
        update(args[1:])
    else:
        for n in args or scenarios():
            print(f"== {n}")
            print(json.dumps(run(n), indent=1))
