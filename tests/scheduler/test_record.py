"""The records' dataclass-like guarantees (scheduler/record.py): what the frozen
dataclasses they replaced gave, and what any faster way of building records must keep."""

import copy
import pickle

import pytest

from havm.scheduler.model import NodeState, ResourceState, State, frozen_map


def test_replace_changes_only_the_named_fields() -> None:
    rec = ResourceState(failcount=2)
    new = rec.replace(role=None, failed=True)
    assert (new.role, new.failcount, new.failed) == (None, 2, True)
    assert rec == ResourceState(failcount=2)  # the original is untouched


def test_replace_refuses_unknown_fields() -> None:
    with pytest.raises(TypeError, match="no field"):
        NodeState().replace(bogus=1)


def test_records_are_immutable() -> None:
    rec = NodeState()
    with pytest.raises(AttributeError, match="immutable"):
        rec.status = "offline"
    with pytest.raises(AttributeError, match="immutable"):
        del rec.status


def test_equality_and_hash_by_value_within_one_class() -> None:
    assert ResourceState(failcount=1) == ResourceState(failcount=1)
    assert hash(ResourceState(failcount=1)) == hash(ResourceState(failcount=1))
    assert ResourceState(failcount=1) != ResourceState(failcount=2)
    assert NodeState() != ResourceState()


def test_pickle_and_copy_round_trip() -> None:
    rec = ResourceState(role="promoted", failcount=3, last_failure=5.0)
    assert pickle.loads(pickle.dumps(rec)) == rec
    assert copy.deepcopy(rec) == rec and copy.copy(rec) == rec
    state = State(now=1.0, nodes=frozen_map({"n1": NodeState()}))
    assert state.replace(now=2.0).nodes is state.nodes
