"""Controller terms: the promise that orders configuration changes across controllers.

A controller may store a configuration change only in a term that a majority
of votes promised it (``havm.daemon.term`` runs that round). A node promises a
term at most once and never promises a lower one again, and the promise is on
disk before the node answers. So two controllers never share a term, and a
controller that takes office after another one made a change it acknowledged
gets a higher term (a majority promised the old term; a majority must promise
the new one; they share a node, which refuses anything not above what it
promised). Versions order by term before epoch (``version.py``): the changes of
a deposed controller that no majority held lose against its successor's.

This module holds the persisted promise and the pure rule; no networking.

Guarantee: ``promise`` returns only after the new promise is on disk
(``atomic_write``: fsync of file and directory); a torn or unreadable file is
reported (``StoreCorrupt``), never taken as term 0, which could let this node
promise a term twice.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from havm.durable import atomic_write
from havm.store.persist import StoreCorrupt, read_if_present
from havm.store.version import whole

TERM_FILE = "term.json"


@dataclass(frozen=True)
class Promise:
    term: int = 0
    holder: str = ""  # the node this term was promised to ("" for none yet)

    def grants(self, term: int, claimant: str) -> bool:
        """May this node promise ``term`` to ``claimant``? Only above what it promised,
        or the same term again to the same node (a retried claim)."""
        return term > self.term or (term == self.term and claimant == self.holder and term > 0)


class TermStore:
    """This node's promise, in ``state_dir/term.json``."""

    def __init__(self, state_dir: str) -> None:
        self.path = os.path.join(state_dir, TERM_FILE)
        self.current = self._load()

    def _load(self) -> Promise:
        raw = read_if_present(self.path)
        if raw is None:
            return Promise()
        try:
            data = json.loads(raw)
            term, holder = data["term"], data["holder"]
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
            raise StoreCorrupt(f"{self.path}: not a valid term promise ({e}); a node must not forget "
                               f"a promise: restore the file or, with every node of the cluster stopped, "
                               f"remove it on all of them") from None
        if not whole(term) or not isinstance(holder, str):
            raise StoreCorrupt(f"{self.path}: 'term' must be a whole number and 'holder' a node name")
        return Promise(term, holder)

    def promise(self, term: int, claimant: str) -> bool:
        """Promise ``term`` to ``claimant`` if the rule allows; durable before it returns True."""
        if not self.current.grants(term, claimant):
            return False
        if self.current != Promise(term, claimant):
            atomic_write(self.path, json.dumps({"term": term, "holder": claimant}).encode())
            self.current = Promise(term, claimant)
        return True

    def learn(self, term: int) -> None:
        """A term above ours was seen (in a version we adopted): never promise at or below it.

        Recorded with no holder, so no claim for that very term is granted here.
        """
        if term > self.current.term:
            atomic_write(self.path, json.dumps({"term": term, "holder": ""}).encode())
            self.current = Promise(term, "")
