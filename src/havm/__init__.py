"""havm: a high-availability cluster manager for virtual machines.

The package layout is the system's diagram (see docs/architecture.md):
config -> membership -> store -> scheduler -> controller -> executor -> agents,
with fencing beside the controller, and cli/api/lab at the edges.
"""

__version__ = "0.1.0"
