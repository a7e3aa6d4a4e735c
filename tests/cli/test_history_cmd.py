"""havm history: arguments to the GetHistory command, events to lines, --follow printing each event once."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

from havm.cli.history_cmd import follow, format_event, query, since_value
from havm.cli.main import build_parser
from havm.commands.history import GetHistory
from havm.errors import NotReachable, UsageError


def ev(node: str, seq: int, t: float, kind: str = "action", text: str = "x") -> dict[str, Any]:
    return {"seq": seq, "time": t, "node": node, "kind": kind, "text": text, "fields": {}}


def test_since_takes_ages_unix_times_and_local_dates() -> None:
    assert since_value("90s", 1000.0) == 910.0
    assert since_value("2h", 10000.0) == 10000.0 - 7200
    assert since_value("1763790000", 0.0) == 1763790000.0
    assert since_value("2026-11-22T06:00", 0.0) == datetime(2026, 11, 22, 6, 0).timestamp()
    assert since_value("2026-11-22 06:00:30", 0.0) == datetime(2026, 11, 22, 6, 0, 30).timestamp()
    assert since_value(None, 0.0) is None
    with pytest.raises(UsageError, match="unix time or an age"):
        since_value("yesterday", 0.0)


def test_arguments_make_one_command() -> None:
    args = build_parser("history").parse_args(
        ["--node", "n1", "history", "--since", "10m", "-r", "vm1", "-k", "action", "--kind", "fence",
         "--node", "n2", "-n", "50"])
    assert args.node == "n1"  # the global --node picks the daemon asked...
    q = query(args, 5000.0)
    assert q == GetHistory(since=4400.0, resource="vm1", kinds=["action", "fence"], node="n2", limit=50)
    plain = query(build_parser("history").parse_args(["history"]), 0.0)
    assert plain == GetHistory()


def test_format_is_time_node_kind_text() -> None:
    t = datetime(2026, 11, 22, 6, 1, 2, 345000).timestamp()
    line = format_event(ev("n2", 7, t, "node.leave", "n3 left or was lost"))
    assert line.startswith("2026-11-22 06:01:02.345  n2 ")
    assert line.split()[3:] == ["node.leave", "n3", "left", "or", "was", "lost"]


def test_follow_prints_each_event_once_and_asks_from_the_newest(capsys: pytest.CaptureFixture[str]) -> None:
    answers = [
        {"events": [ev("n1", 1, 100.0), ev("n2", 1, 101.0)], "nodes": {"n1": "ok", "n2": "ok"}},
        NotReachable("no havmd answers at sock"),
        {"events": [ev("n2", 1, 101.0), ev("n1", 2, 103.0)], "nodes": {"n1": "ok", "n2": "no answer: timeout"}},
        {"events": [ev("n1", 2, 103.0)], "nodes": {"n1": "ok", "n2": "no answer: timeout"}},
    ]
    asked: list[GetHistory] = []
    slept: list[float] = []

    def fetch(q: GetHistory) -> dict[str, Any]:
        asked.append(q)
        a = answers.pop(0)
        if isinstance(a, Exception):
            raise a
        return a

    follow(fetch, GetHistory(kinds=["action"]), True, 2.0, 4, sleep=slept.append)
    out = capsys.readouterr()
    printed = [(e["node"], e["seq"]) for e in map(json.loads, out.out.splitlines())]
    assert printed == [("n1", 1), ("n2", 1), ("n1", 2)]
    assert asked[0].since is None and asked[1].since == 101.0 - 5.0 and asked[3].since == 103.0 - 5.0
    assert all(q.kinds == ["action"] for q in asked)
    assert slept == [2.0, 2.0, 2.0]
    assert "no havmd answers" in out.err
    assert out.err.count("no events from n2") == 1  # said once, not at every poll


def test_bad_limit_is_a_usage_error() -> None:
    args = build_parser("history").parse_args(["--socket", "/nonexistent", "history", "--limit", "0"])
    with pytest.raises(UsageError):
        args.func(args)


def test_help_documents_json(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser("history").parse_args(["history", "--help"])
    assert '{"events": [...], "nodes"' in capsys.readouterr().out

