"""Alert hooks: run a script or POST a webhook when events happen (as Pacemaker's alerts)."""
