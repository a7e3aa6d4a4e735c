"""Which members hold a pushed configuration (NodeDaemon.push, with its peers faked)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from havm.daemon.node import NodeDaemon
from havm.store import ConfigVersion

OURS = ConfigVersion(0, 26, "c0026", term=3)  # a controller still in term 3 after a freeze
NEWER = ConfigVersion(0, 26, "aaaa", term=4)  # what the peer's new controller committed meanwhile


def push(answers: dict[str, dict]) -> tuple[list[str], list[str], list[int]]:
    learned: list[int] = []

    async def ask_peer(node, method, path, body, timeout):  # noqa: ANN001, ANN202
        return answers[node]

    fake = SimpleNamespace(node="n1", view=lambda: SimpleNamespace(members=("n1", *answers)),
                           ask_peer=ask_peer, term=SimpleNamespace(learn=learned.append))
    stored = SimpleNamespace(version=OURS, to_json=lambda: {})
    acked, missing = asyncio.run(NodeDaemon.push(fake, stored))  # type: ignore[arg-type]
    return acked, missing, learned


def test_a_member_holds_a_change_only_if_it_answers_with_that_very_version():
    acked, missing, learned = push({
        "n2": {"adopted": True, "version": OURS.to_wire(), "term": 3},
        # refused (term below its promise), holding a newer version without our change:
        # counted as holding ours, a 2-node cluster reported it committed, and it was lost
        "n3": {"adopted": False, "version": NEWER.to_wire(), "term": 4},
    })
    assert acked == ["n1", "n2"] and missing == ["n3"]
    assert learned == [4]  # deposed: the next change claims a new term
