"""``plan(spec, state) -> Transition``: the scheduler's one entry point.

Pure and deterministic: it reads no clock (``state.now`` is the time), does no
I/O, draws no random numbers, and iterates only in orders fixed by the config
(node and resource order) or by sorting, never by set or hash order. The same
inputs give the same transition, byte for byte.

Steps: derive the situation (node health, quorum mode, what runs where,
what is frozen), place every resource (placement.py, clones.py, repair.py),
then turn the difference between now and the placement into an action graph
(graph.py).
"""

from __future__ import annotations

# collections.abc is public but imports the collections package (8 M instructions, 4% of a
# 500-resource havm simulate); _collections_abc, which it re-exports, is loaded at start-up.
from _collections_abc import Mapping

from havm.scheduler.graph import GraphBuilder
from havm.scheduler.model import ClusterSpec, State
from havm.scheduler.placement import place
from havm.scheduler.scores import ScoreTable
from havm.scheduler.situation import Situation
from havm.scheduler.transition import ScoreRow, Transition

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

    from havm.config.schema import ClusterConfig


def plan(spec: ClusterSpec | ClusterConfig, state: State | None = None) -> Transition:
    """Decide what must run where and which actions get there (from a spec, or a validated config)."""
    if not isinstance(spec, ClusterSpec):
        spec = ClusterSpec.from_config(spec)
    state = state if state is not None else State()
    sit = Situation(spec, state)
    placer = place(spec, state, sit)
    out = placer.out
    actions, after, graph_notes = GraphBuilder(placer).build()
    names = [n.name for n in spec.nodes]
    placement: dict[str, str | None | tuple[str, ...]] = {}
    unplaced: dict[str, str] = {}
    for rid in spec.top:
        unit = placer.units[rid]
        nodes = out.unit_nodes.get(rid, [])
        if unit.kind == "clone":
            where = tuple(names[i] for i in sorted(nodes))
            placement[rid] = where
            child = spec.clones[rid].child
            placement[child] = where
            for p in unit.prims:
                if p != child:
                    placement[p] = where
        elif unit.kind == "primitive":  # where its target says, as a group member's below
            tgt = out.target.get(rid)
            placement[rid] = names[min(tgt)] if tgt else None
        else:
            placement[rid] = names[nodes[0]] if nodes else None
            for p in unit.prims:
                tgt = out.target.get(p, {})
                placement[p] = names[min(tgt)] if tgt else None
                if not tgt and p in out.why and p != rid:
                    unplaced[p] = out.why[p]
        if not nodes and rid in out.why:
            unplaced[rid] = out.why[rid]
    promoted = {rid: tuple(names[i] for i in nodes) for rid, nodes in sorted(out.promoted.items())}
    scores = _Scores(out.scores, names)
    return Transition(actions=tuple(actions), after=after, placement=placement, promoted=promoted,
                      scores=scores, notes=tuple(sit.notes + graph_notes), unplaced=unplaced)


class _Scores(Mapping[str, ScoreRow]):
    """Score rows built on demand: most callers never look, and 10,000 rows cost time."""

    def __init__(self, tables: dict[str, ScoreTable], names: list[str]) -> None:
        self._tables = tables
        self._names = names

    def __getitem__(self, rid: str) -> ScoreRow:
        t = self._tables[rid]
        return ScoreRow(t.base, tuple((self._names[i], s) for i, s in sorted(t.over.items())))

    def __iter__(self) -> Iterator[str]:
        return iter(self._tables)

    def __len__(self) -> int:
        return len(self._tables)
