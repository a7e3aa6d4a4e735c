"""Moved to ``havm.api`` (app.py, auth.py, routes_v1.py, routes_internal.py, openapi.py).

Kept so that old imports of ``havm.daemon.api.make_app`` still work.
"""

from havm.api.app import MAX_BODY, make_app

__all__ = ["MAX_BODY", "make_app"]
