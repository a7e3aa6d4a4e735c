"""The term rules of NodeDaemon (run_request, execute_on) with the daemon's parts faked,
and ControllerTerm.learn_advertised; tests/daemon/test_action_terms.py runs them on real daemons."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from havm.daemon.node import NodeDaemon
from havm.daemon.term import ControllerTerm
from havm.errors import Conflict
from havm.executor.records import ActionRecord, ActionRequest


def fake(promised: int) -> Any:
    ran: list[str] = []
    learned: list[int] = []

    async def execute(req: ActionRequest) -> ActionRecord:
        ran.append(req.action)
        return ActionRecord("n3", req.rsc, req.action, 0, 0.0, 0.0, "")

    return SimpleNamespace(node="n3", term=SimpleNamespace(promised=promised, learn=learned.append),
                           local=SimpleNamespace(execute=execute), ran=ran, learned=learned)


def run(d: Any, action: str, term: int) -> ActionRecord:
    return asyncio.run(NodeDaemon.run_request(d, ActionRequest("vm1", "havm:qemu", action), term, "n1"))


@pytest.mark.parametrize("action", ["start", "promote", "migrate_prepare", "migrate_to", "migrate_from",
                                    "migrate_recover"])
def test_an_action_that_may_start_something_is_refused_below_the_promised_term(action: str) -> None:
    d = fake(promised=5)
    with pytest.raises(Conflict, match=f"{action} vm1 asked by n1 in controller term 4 is refused: n3 promised "
                                       f"term 5 to a later controller"):
        run(d, action, 4)
    assert d.ran == [] and d.learned == []


@pytest.mark.parametrize("action", ["stop", "demote", "monitor", "migrate_abort"])
def test_stops_demotes_and_looks_run_whatever_the_term(action: str) -> None:
    d = fake(promised=5)
    assert run(d, action, 4).ok and d.ran == [action] and d.learned == []


def test_a_higher_term_is_learned_and_its_start_runs() -> None:
    d = fake(promised=5)
    assert run(d, "start", 5).ok and d.learned == []
    assert run(d, "start", 6).ok and d.learned == [6] and d.ran == ["start", "start"]


def test_the_controller_sends_nothing_once_a_higher_term_is_known_here() -> None:
    d = fake(promised=6)
    with pytest.raises(Conflict, match=r"controller term 5 is over here \(term 6 since\): stop vm1 on n2 not asked"):
        asyncio.run(NodeDaemon.execute_on(d, "n2", ActionRequest("vm1", "havm:qemu", "stop"), 5))


def test_a_members_advertised_higher_term_is_learned_others_are_not(tmp_path: Path) -> None:
    terms: dict[str, object] = {"n1": 4, "n2": 9, "n4": 12}  # n4 is heard but not a member

    def view(members: tuple[str, ...]) -> Any:
        return SimpleNamespace(members=members, advertised=lambda n, key: terms.get(n) if key == "term" else None)

    t = ControllerTerm(SimpleNamespace(state_dir=str(tmp_path), node="n3", refresh_app_info=lambda: None))  # type: ignore[arg-type]
    t.learn(7)
    t.learn_advertised(view(("n1", "n3")))
    assert t.promised == 7  # n1 advertises 4: older
    t.learn_advertised(view(("n1", "n2", "n3")))
    assert t.promised == 9
    terms["n2"] = "10"  # not a whole number: ignored
    t.learn_advertised(view(("n1", "n2", "n3")))
    assert t.promised == 9
