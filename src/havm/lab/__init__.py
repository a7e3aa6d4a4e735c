"""The local lab: an N-node havm cluster of real havmd processes on one machine.

As root each node lives in its own network namespace, wired to the others by
veth pairs and one bridge per link in a "switch" namespace; otherwise each
node gets its own loopback address. ``havm.lab.lab`` creates and removes labs,
``havm.lab.control`` injects faults, ``havm.lab.state`` records everything in
``LABDIR/lab.json`` and resolves ``havm --lab DIR`` (``nodes_of``, ``socket_of``).
"""
