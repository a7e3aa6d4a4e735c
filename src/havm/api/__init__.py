"""havmd's HTTP API: the public REST API (/v1), the peers' signed routes (/internal).

``app.make_app(daemon, trusted)`` builds the aiohttp application; route modules
plug in through ``app.ROUTE_MODULES`` (see docs/api.md).
"""
