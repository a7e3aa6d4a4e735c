"""``GET /metrics``: Prometheus' text format on the API port, for the ``read`` role.

Prometheus scrapes each node with a read token (``authorization: {credentials:
...}`` or ``bearer_token_file`` in its scrape config, docs/metrics.md); the unix
socket answers too (trusted). The answer is built from snapshots taken here,
on the control loop, without waiting on peers: a scrape never blocks on a
dead node.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from aiohttp import web

from havm import __version__
from havm.api.table import Route, add_routes
from havm.metrics.collect import MetricsInput, collect
from havm.metrics.exposition import CONTENT_TYPE, render

if TYPE_CHECKING:
    from havm.daemon.node import NodeDaemon


def metrics_input(daemon: NodeDaemon, now: float | None = None) -> MetricsInput:
    return MetricsInput(
        node=daemon.node, config=daemon.config, view=daemon.view(), version=daemon.replica.version,
        local=daemon.local.report(), recorded=daemon.metrics.snapshot(), alerts=daemon.alerts.counts(),
        started_at=daemon.started_at, now=time.time() if now is None else now, havm_version=__version__)


def setup(app: web.Application, daemon: NodeDaemon) -> None:
    async def metrics(request: web.Request) -> web.Response:
        text = render(collect(metrics_input(daemon)))
        return web.Response(body=text.encode(), headers={"Content-Type": CONTENT_TYPE})

    add_routes(app, [Route("GET", "/metrics", metrics, "Prometheus metrics of this node (text format 0.0.4)",
                           "read", tag="metrics", content_type="text/plain",
                           # Prometheus' own format, not part of the JSON API's description
                           in_spec=False)])
