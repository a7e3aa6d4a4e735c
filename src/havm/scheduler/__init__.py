"""The scheduler: a pure policy engine from (config, state) to a transition.

``plan(spec, state)`` decides placement and the action DAG; nothing here reads
a clock, a socket or a file except ``state_file`` (used by the CLI edge).
"""

from havm.scheduler.apply import apply
from havm.scheduler.model import ClusterSpec, NodeState, ResourceState, State
from havm.scheduler.plan import plan
from havm.scheduler.transition import Action, Transition

__all__ = ["Action", "ClusterSpec", "NodeState", "ResourceState", "State", "Transition", "apply", "plan"]
