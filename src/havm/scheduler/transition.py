"""The planner's answer: a DAG of actions, the resulting placement, and why.

``Transition.actions`` is in a topological order (every action comes after
those it waits for, ties broken by a fixed order of operations then by id), so
printing it reads as a valid schedule. ``after[a]`` lists what ``a`` waits for.
Pseudo actions (``running``/``stopped`` of a clone, ``load_stopped`` of a node)
are barriers that execute nothing; they keep the graph small when a clone of
100 instances orders 1,000 resources.

JSON schema of :meth:`Transition.to_json` (``havm simulate --json``), version 1::

    {"version": 1,
     "actions": [{"id": "vm1_start_n3", "op": "start", "resource": "vm1", "node": "n3",
                  "target": null, "pseudo": false, "after": ["fence_n2"], "reason": "..."}],
     "placement": {"vm1": "n3", "web": "n1", "ip1": null, "fs-clone": ["n1", "n3"], "fs": ["n1", "n3"]},
     "promoted": {"drbd-clone": ["n1"]},
     "notes": ["n2 is unclean: fencing it before recovering its resources"],
     "unplaced": {"ip1": "no usable node has a score >= 0"}}

``op`` is one of fence, demote, stop, migrate_to, migrate_from, start, promote,
monitor (real) or running, stopped, load_stopped (pseudo). ``target`` is the
other node of a migration (migrate_to: where to; migrate_from: where from).
``node`` is the node that runs the action (for fence: the node to fence).
"""

from __future__ import annotations

from havm.scheduler.record import Record, init, setters
from havm.scheduler.scores import format_score

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

OP_RANK = {"fence": 0, "demote": 1, "stop": 2, "stopped": 3, "load_stopped": 4, "migrate_to": 5,
           "migrate_from": 6, "start": 7, "running": 8, "promote": 9, "monitor": 10}
JSON_VERSION = 1


class Action(Record):
    __slots__ = ("id", "op", "node", "resource", "target", "pseudo", "interval", "reason")
    id: str
    op: str
    node: str | None
    resource: str | None
    target: str | None
    pseudo: bool
    interval: float
    reason: str

    def __init__(self, id: str, op: str, node: str | None, resource: str | None = None, target: str | None = None,
                 pseudo: bool = False, interval: float = 0.0, reason: str = "") -> None:
        _action_id(self, id)
        _action_op(self, op)
        _action_node(self, node)
        _action_resource(self, resource)
        _action_target(self, target)
        _action_pseudo(self, pseudo)
        _action_interval(self, interval)
        _action_reason(self, reason)

    def describe(self) -> str:
        if self.op == "fence":
            return f"fence {self.node}"
        if self.pseudo:
            return f"{self.op} {self.resource or self.node} (pseudo)"
        if self.op == "migrate_to":
            return f"migrate_to {self.resource} {self.node} -> {self.target}"
        if self.op == "migrate_from":
            return f"migrate_from {self.resource} {self.target} -> {self.node}"
        if self.op == "monitor":
            return f"monitor {self.resource} on {self.node} every {self.interval:g}s"
        return f"{self.op} {self.resource} on {self.node}"


# built thousands of times per plan: the slots' own setters (see record.setters)
(_action_id, _action_op, _action_node, _action_resource, _action_target, _action_pseudo,
 _action_interval, _action_reason) = setters(Action)


class ScoreRow(Record):
    """Scores of one resource on every node, kept sparse: ``over`` wins, else ``base``."""

    __slots__ = ("base", "over")
    base: int
    over: tuple[tuple[str, int], ...]

    def __init__(self, base: int, over: tuple[tuple[str, int], ...]) -> None:
        init(self, "base", base)
        init(self, "over", over)

    def on(self, node: str) -> int:
        for n, s in self.over:
            if n == node:
                return s
        return self.base


class Transition(Record):
    __slots__ = ("actions", "after", "placement", "promoted", "scores", "notes", "unplaced")
    actions: tuple[Action, ...]
    after: Mapping[str, tuple[str, ...]]
    placement: Mapping[str, str | None | tuple[str, ...]]
    promoted: Mapping[str, tuple[str, ...]]
    scores: Mapping[str, ScoreRow]
    notes: tuple[str, ...]
    unplaced: Mapping[str, str]

    def __init__(self, actions: tuple[Action, ...], after: Mapping[str, tuple[str, ...]],
                 placement: Mapping[str, str | None | tuple[str, ...]],
                 promoted: Mapping[str, tuple[str, ...]] | None = None, scores: Mapping[str, ScoreRow] | None = None,
                 notes: tuple[str, ...] = (), unplaced: Mapping[str, str] | None = None) -> None:
        init(self, "actions", actions)
        init(self, "after", after)
        init(self, "placement", placement)
        init(self, "promoted", {} if promoted is None else promoted)
        init(self, "scores", {} if scores is None else scores)
        init(self, "notes", notes)
        init(self, "unplaced", {} if unplaced is None else unplaced)

    @property
    def real_actions(self) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if not a.pseudo)

    def action(self, action_id: str) -> Action:
        for a in self.actions:
            if a.id == action_id:
                return a
        raise KeyError(action_id)

    def depends_on(self, later: str, earlier: str) -> bool:
        """Does ``later`` (transitively) wait for ``earlier``?"""
        seen: set[str] = set()
        stack = [later]
        while stack:
            a = stack.pop()
            for b in self.after.get(a, ()):
                if b == earlier:
                    return True
                if b not in seen:
                    seen.add(b)
                    stack.append(b)
        return False

    def to_json(self) -> dict[str, Any]:
        return {
            "version": JSON_VERSION,
            "actions": [{"id": a.id, "op": a.op, "resource": a.resource, "node": a.node, "target": a.target,
                         "pseudo": a.pseudo, "after": list(self.after.get(a.id, ())), "reason": a.reason}
                        for a in self.actions],
            "placement": {k: list(v) if isinstance(v, tuple) else v for k, v in self.placement.items()},
            "promoted": {k: list(v) for k, v in self.promoted.items()},
            "notes": list(self.notes),
            "unplaced": dict(self.unplaced),
        }

    def format_text(self, node_names: list[str], show_scores: bool = False) -> str:
        lines: list[str] = []
        for note in self.notes:
            lines.append(f"note: {note}")
        if show_scores:
            lines.append("Scores:")
            for rid, row in self.scores.items():
                cells = " ".join(f"{n}={format_score(row.on(n))}" for n in node_names)
                lines.append(f"  {rid}: {cells}")
        real = [a for a in self.actions if not a.pseudo]
        lines.append("Transition:" if real else "Transition: nothing to do")
        after = self.after
        for k, a in enumerate(real, 1):
            waits = after.get(a.id, ())
            line = f"  {str(k).rjust(3)}. {a.describe()}"  # (as {k:3d}, at half the cost of a format spec)
            if waits:
                line += f"   (after {', '.join(waits)})"
            if a.reason:
                line += f"   # {a.reason}"
            lines.append(line)
        lines.append("Placement:")
        unplaced = self.unplaced
        for rid, where in self.placement.items():
            if where.__class__ is str and where and rid not in unplaced:  # the common line
                lines.append(f"  {rid}: {where}")
                continue
            if isinstance(where, tuple):
                shown = ", ".join(where) if where else "(none)"
                prom = self.promoted.get(rid)
                if prom:
                    shown += f"  promoted: {', '.join(prom)}"
            else:
                shown = where or "(stopped)"
            extra = f"   # {unplaced[rid]}" if rid in unplaced else ""
            lines.append(f"  {rid}: {shown}{extra}")
        return "\n".join(lines)

    def to_dot(self) -> str:
        out = ["digraph transition {", "  rankdir=LR;", "  node [shape=box, fontsize=10];"]
        for a in self.actions:
            style = ", style=dashed" if a.pseudo else (", color=red" if a.op == "fence" else "")
            out.append(f'  "{a.id}" [label="{a.describe()}"{style}];')
        for a in self.actions:
            for b in self.after.get(a.id, ()):
                out.append(f'  "{b}" -> "{a.id}";')
        out.append("}")
        return "\n".join(out)
