import json
import os

from havm.clock import ManualClock
from havm.events import Event, EventLog, merge


def test_emit_appends_numbers_and_survives_restart(tmp_path):
    path = str(tmp_path / "events.jsonl")
    clock = ManualClock(start=1000.0, wall_offset=0.0)
    log = EventLog("n1", path, clock)
    seen: list[Event] = []
    log.subscribe(seen.append)
    log.emit("node.join", "n2 joined", target="n2")
    clock.advance(1)
    log.emit("action", "start vm1 on n2: ok", rsc="vm1", op="start", target="n2", ok=True)
    assert [e.seq for e in seen] == [1, 2]
    lines = [json.loads(x) for x in open(path)]
    assert [x["kind"] for x in lines] == ["node.join", "action"]
    assert lines[1]["time"] == 1001.0 and lines[1]["fields"]["rsc"] == "vm1"
    again = EventLog("n1", path, clock)  # a daemon restart continues the numbering
    assert [e.seq for e in again.recent()] == [1, 2]
    assert again.emit("fence", "fencing n3: FAILED", target="n3", ok=False).seq == 3


def test_filters_and_torn_line(tmp_path):
    path = str(tmp_path / "events.jsonl")
    clock = ManualClock(start=50.0, wall_offset=0.0)
    log = EventLog("n1", path, clock)
    log.emit("action", "a", rsc="vm1", target="n2")
    clock.advance(10)
    log.emit("action", "b", rsc="vm2", target="n1")
    log.emit("quorum.lost", "c")
    with open(path, "a") as f:
        f.write('{"seq": 4, "ti')  # a crash in the middle of a write
    reread = EventLog("n1", path, clock)
    assert [e.text for e in reread.recent(resource="vm1")] == ["a"]
    assert [e.text for e in reread.recent(since=55)] == ["b", "c"]
    assert [e.text for e in reread.recent(kinds=["quorum"])] == ["c"]
    assert [e.text for e in reread.recent(node="n2")] == ["a"]
    assert [e.text for e in reread.recent(limit=1)] == ["c"]


def test_bad_subscriber_and_unwritable_file_do_not_stop_emit(tmp_path):
    path = str(tmp_path / "missing-dir" / "events.jsonl")
    log = EventLog("n1", path, ManualClock(start=1.0, wall_offset=0.0))
    got: list[str] = []

    def bad(ev: Event) -> None:
        raise RuntimeError("boom")

    log.subscribe(bad)
    unsubscribe = log.subscribe(lambda ev: got.append(ev.kind))
    log.emit("daemon.started", "x")
    unsubscribe()
    log.emit("daemon.stopped", "y")
    assert got == ["daemon.started"]
    assert not os.path.exists(path)
    assert [e.kind for e in log.recent()] == ["daemon.started", "daemon.stopped"]


def test_rotation_keeps_history_readable(tmp_path):
    path = str(tmp_path / "events.jsonl")
    log = EventLog("n1", path, ManualClock(start=1.0, wall_offset=0.0), max_bytes=400)
    for i in range(10):
        log.emit("action", f"event {i}", rsc="vm1")
    assert os.path.exists(path + ".1")
    assert os.path.getsize(path) <= 400
    reread = EventLog("n1", path, ManualClock(start=1.0, wall_offset=0.0))
    assert reread.recent()[-1].text == "event 9"


def test_merge_orders_by_time_then_node():
    a = [Event(1, 10.0, "n1", "x", "a1"), Event(2, 30.0, "n1", "x", "a2")]
    b = [Event(1, 20.0, "n2", "x", "b1"), Event(2, 30.0, "n0", "x", "b2")]
    assert [e.text for e in merge(a, b)] == ["a1", "b1", "b2", "a2"]


def test_event_from_json_rejects_garbage():
    import pytest
    with pytest.raises(ValueError, match="bad event"):
        Event.from_json({"seq": "x"})
    with pytest.raises(ValueError, match="JSON object"):
        Event.from_json([1, 2])  # type: ignore[arg-type]
