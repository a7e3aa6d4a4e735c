"""havm.agents: how havm runs one resource on one node.

- ``base``: the ``Agent`` interface, OCF return codes (``OCF``), ``AgentResult``.
- ``dummy``: a state file (for tests).
- ``qemu``: a QEMU VM over QMP (``qmp``, ``process``, ``vmspec``, ``migrate``,
  ``xen_config`` for classic xm/xl files, ``observe`` for outside observers).
"""
