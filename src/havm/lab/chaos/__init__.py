"""``havm lab chaos``: a fault campaign against a lab cluster (in the spirit of Pacemaker's CTS).

- ``catalogue``: the faults, each an ``inject``/``undo`` pair of functions over the lab;
- ``schedule``: which faults each iteration injects, from a seed (pure);
- ``observer``: a thread outside the cluster sampling every node's QEMU processes;
- ``invariants``: the safety and liveness checks, pure over the recorded timeline;
- ``report``: figures, summary text and the JSON report;
- ``campaign``: the runner (lab up, iterations, recovery waits, teardown);
- ``fencehook``: the lab power switch's test hook (fail, slow, or lie: unsafe).
"""
