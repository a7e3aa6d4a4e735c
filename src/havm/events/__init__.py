"""Events: the append-only record of what happened (see log.py)."""

from havm.events.log import KINDS, Event, EventLog, merge

__all__ = ["KINDS", "Event", "EventLog", "merge"]
