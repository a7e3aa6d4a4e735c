"""Score arithmetic (Pacemaker's) and location rules.

Scores saturate at +/-INFINITY (1,000,000). Adding -INFINITY to anything gives
-INFINITY, even to +INFINITY: a ban always wins over a preference, so a
``-INFINITY`` constraint can never be outvoted.

A node's scores for one resource are kept sparse (:class:`ScoreTable`): a base
score shared by most nodes plus overrides for the few nodes a constraint,
stickiness or failure mentions. With 100 nodes and 10,000 resources most
resources have a handful of overrides, so scoring costs O(constraints), not
O(nodes), per resource.
"""

from __future__ import annotations

from havm.scheduler.model import INFINITY, AttrValue, RuleSpec

TYPE_CHECKING = False  # collections.abc imports collections: 8 M instructions at start-up
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__ = ["INFINITY", "ScoreTable", "add", "format_score", "rule_matches", "scale"]


def add(a: int, b: int) -> int:
    """Pacemaker's pcmk__add_scores: -INFINITY wins, then +INFINITY, else a saturated sum."""
    if a <= -INFINITY or b <= -INFINITY:
        return -INFINITY
    if a >= INFINITY or b >= INFINITY:
        return INFINITY
    s = a + b
    if s >= INFINITY:
        return INFINITY
    if s <= -INFINITY:
        return -INFINITY
    return s


def scale(score: int, factor_num: int, factor_den: int = INFINITY) -> int:
    """``score * factor``; INFINITY times a full factor stays INFINITY."""
    if factor_num == factor_den:
        return score
    if score >= INFINITY or score <= -INFINITY:
        return score if factor_num >= 0 else -score
    return int(score * factor_num / factor_den)


def format_score(score: int) -> str:
    if score >= INFINITY:
        return "INFINITY"
    if score <= -INFINITY:
        return "-INFINITY"
    return str(score)


class ScoreTable:
    """Scores of one resource on every node: ``over.get(i, base)`` for node index i."""

    __slots__ = ("base", "over")

    def __init__(self, base: int, over: dict[int, int]) -> None:
        self.base = base
        self.over = over

    def __repr__(self) -> str:
        return f"ScoreTable({self.base}, {self.over})"

    def get(self, i: int) -> int:
        return self.over.get(i, self.base)

    def add_node(self, i: int, score: int) -> None:
        self.over[i] = add(self.over.get(i, self.base), score)

    def add_all(self, score: int) -> None:
        if score == 0:
            return
        self.base = add(self.base, score)
        for i, s in self.over.items():
            self.over[i] = add(s, score)

    def add_table(self, other: ScoreTable, num: int = INFINITY, den: int = INFINITY) -> None:
        """Add ``other`` scaled by num/den to every node."""
        extra = {i: scale(s, num, den) for i, s in other.over.items()}
        ob = scale(other.base, num, den)
        for i in extra.keys() - self.over.keys():
            self.over[i] = self.base
        for i in list(self.over):
            self.over[i] = add(self.over[i], extra.get(i, ob))
        self.base = add(self.base, ob)

    def restrict(self, allowed: Iterable[int], n_nodes: int | None = None) -> None:
        """Ban every node but ``allowed`` (a mandatory colocation).

        With ``n_nodes`` and most nodes allowed, the few others get -INFINITY
        instead, which keeps the table sparse (a VM colocated with a clone that
        runs on 99 of 100 nodes gets one override, not 99).
        """
        allowed = set(allowed)
        if n_nodes is not None and self.base > -INFINITY and 2 * len(allowed) > n_nodes:
            for i in range(n_nodes):
                if i not in allowed:
                    self.over[i] = -INFINITY
            return
        keep = {i: self.over.get(i, self.base) for i in allowed}
        self.base = -INFINITY
        self.over = keep

    def any_allowed(self, usable: list[bool]) -> bool:
        """Whether some usable node has a score >= 0 here."""
        if self.base >= 0 and sum(usable) > sum(1 for i in self.over if usable[i]):
            return True  # a usable node without an override takes the base
        return any(s >= 0 and usable[i] for i, s in self.over.items())

    def copy(self) -> ScoreTable:
        return ScoreTable(self.base, dict(self.over))


def _number(v: object) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int | float):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return None
    return None


def _term(term: tuple[str, ...], attrs: Mapping[str, AttrValue]) -> bool:
    op = term[0]
    if op == "defined":
        return term[1] in attrs
    if op == "not_defined":
        return term[1] not in attrs
    _, name, want = term
    if name not in attrs:
        return op == "ne"
    have = attrs[name]
    a, b = _number(have), _number(want)
    if a is not None and b is not None:
        left: float | str = a
        right: float | str = b
    else:
        left = str(have).lower() if isinstance(have, bool) else str(have)
        right = want
    if op == "eq":
        return left == right
    if op == "ne":
        return left != right
    if type(left) is not type(right):
        return False
    if op == "lt":
        return left < right  # type: ignore[operator]
    if op == "lte":
        return left <= right  # type: ignore[operator]
    if op == "gt":
        return left > right  # type: ignore[operator]
    return left >= right  # type: ignore[operator]


def rule_matches(rule: RuleSpec, node_name: str, attrs: Mapping[str, AttrValue]) -> bool:
    """Does ``rule`` select this node? ``#uname`` is the node's name."""
    full = dict(attrs)
    full["#uname"] = node_name
    results = (_term(t, full) for t in rule.terms)
    return all(results) if rule.join == "and" else any(results)
