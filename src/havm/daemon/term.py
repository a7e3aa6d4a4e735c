"""The controller's term: claimed from a majority on taking office (before its first
transition or configuration change; every action it sends carries the term).

The rule and the persisted promise live in ``havm.store.term``; this module
runs the claim round over the peers' signed ``/internal/term`` and answers it.

Claim (controller, once per time in office, before committing or acting):
promise the term to itself, ask every member to promise it, and hold it only
if a majority of votes promised (or, in a quorate partition smaller than a
majority, e.g. a two-node survivor, every member did: its changes then still
report "not committed on a majority"). Each answer carries the member's stored
configuration version; the controller catches up to the newest of them before
it proposes, so a change some earlier controller got acknowledged by a majority
is always in the base of the next one (a majority acknowledged it, a majority
promised: one node did both, and after promising it refuses the old
controller's pushes).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from havm.errors import HavmError, NoQuorum
from havm.membership.view import votes_held
from havm.store import ConfigVersion
from havm.store.term import TermStore
from havm.store.version import whole

if TYPE_CHECKING:
    from havm.daemon.node import NodeDaemon

log = logging.getLogger("havm.daemon")

CLAIM_TIMEOUT = 3.0
CLAIM_ROUNDS = 3


class ControllerTerm:
    def __init__(self, daemon: NodeDaemon) -> None:
        self.d = daemon
        self.store = TermStore(daemon.state_dir)
        self.office: int | None = None  # the term this node holds as controller, once claimed
        # one claim at a time (the controller's first transition and an operator's change may
        # both ask): two overlapping claims could leave office at the lower of two terms
        # promised, and every action of it refused
        self._claiming = asyncio.Lock()

    @property
    def promised(self) -> int:
        return self.store.current.term

    def resign(self, why: str) -> None:
        if self.office is not None:
            log.info("controller term %s ends: %s", self.office, why)
            self.office = None

    def learn(self, term: int) -> None:
        if term > self.promised:
            self.store.learn(term)
            self.resign(f"term {term} seen")
            self.d.refresh_app_info()

    def learn_advertised(self, view: Any) -> None:
        """A member advertising a higher promise than ours: a controller took office in that
        term (e.g. while this node was frozen). Learning it ends our own office at once, so
        what our controller still holds of an older transition is not sent (NodeDaemon.execute_on)."""
        others = [n for n in view.members if n != self.d.node]
        self.learn(max((_advertised_term(view, n) for n in others), default=0))

    # -- member side --
    def answer_claim(self, term: object, claimant: str) -> dict[str, Any]:
        if not whole(term) or term < 1:
            raise ValueError(f"a term claim needs 'term', a whole number >= 1, got {term!r}")
        view = self.d.view()
        if claimant not in view.members:
            granted = False
            why = f"{claimant} is not a member of {self.d.node}'s view"
        else:
            granted = self.store.promise(term, claimant)
            why = "promised" if granted else f"already promised term {self.promised} to " \
                                             f"{self.store.current.holder or 'a controller'}"
        if granted and claimant != self.d.node:
            self.resign(f"{claimant} claimed term {term}")
            self.d.refresh_app_info()
        return {"granted": granted, "reason": why, "term": self.promised,
                "version": self.d.replica.version.to_wire()}

    # -- controller side --
    async def ensure(self, refused: str = "the change is refused, nothing was stored") -> int:
        """The term to make changes in (and to act in: the controller's actions carry
        it); claims one first if this node does not hold one. ``refused`` ends the
        message of the NoQuorum raised when it cannot: what the caller does not do."""
        async with self._claiming:
            if self.office is not None and self.office >= self.promised:
                return self.office
            return await self._claim(refused)

    async def _claim(self, refused: str) -> int:
        d = self.d
        view = d.view()
        if not view.quorate or view.controller != d.node:
            raise NoQuorum(f"node {d.node} is not the controller of a quorate partition: {refused}")
        others = [n for n in view.members if n != d.node]
        term = max([self.promised] + [_advertised_term(view, n) for n in others]) + 1
        refusals: list[str] = []
        for _ in range(CLAIM_ROUNDS):
            if not self.store.promise(term, d.node):
                term = self.promised + 1
                continue
            answers = await asyncio.gather(*(self._ask(n, term) for n in others))
            if d.view().controller != d.node:
                raise NoQuorum(f"node {d.node} stopped being the controller while claiming term {term}")
            granted = [n for n, a in zip(others, answers, strict=True) if a and a.get("granted")]
            held, total = votes_held(d.config, [d.node, *granted])
            if held * 2 > total or (view.quorate and len(granted) == len(others)):
                await self._catch_up(others, answers, refused)
                self.office = term
                log.info("controller term %s (promised by %s)", term, ", ".join(sorted([d.node, *granted])))
                d.events.emit("controller.term", f"{d.node} holds controller term {term}", term=term,
                              granted=sorted([d.node, *granted]))
                d.refresh_app_info()
                return term
            refusals = [f"{n}: {a.get('reason') if a else 'no answer'}" for n, a in zip(others, answers, strict=True)
                        if not (a and a.get("granted"))]
            seen = [a["term"] for a in answers if a and whole(a.get("term"))]
            term = max([term, *seen]) + 1
        raise NoQuorum(f"{d.node} could not claim a controller term from a majority ({'; '.join(refusals)}): "
                       f"{refused}")

    async def _ask(self, node: str, term: int) -> dict[str, Any] | None:
        d = self.d
        try:
            r = await d.ask_peer(node, "POST", "/internal/term", {"term": term}, timeout=CLAIM_TIMEOUT)
        except HavmError as e:
            log.warning("claiming term %s from %s failed: %s", term, node, e)
            return None
        return r if isinstance(r, dict) else None

    async def _catch_up(self, others: list[str], answers: list[dict[str, Any] | None], refused: str) -> None:
        """Adopt the newest configuration a promising member holds (before any change is based on ours)."""
        d = self.d
        best: tuple[ConfigVersion, str] | None = None
        for n, a in zip(others, answers, strict=True):
            if not (a and a.get("granted")):
                continue
            try:
                v = ConfigVersion.from_wire(a.get("version"))
            except ValueError:
                continue
            if v > d.replica.version and (best is None or v > best[0]):
                best = (v, n)
        if best is None:
            return
        await d.fetch_config(best[1])
        if d.replica.version < best[0]:
            raise NoQuorum(f"could not catch up with configuration {best[0].short()} held by {best[1]}: {refused}")


def _advertised_term(view: Any, node: str) -> int:
    t = view.advertised(node, "term")
    return t if whole(t) else 0
