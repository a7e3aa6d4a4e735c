"""The OpenAPI description matches the router: every /v1 route is described, every path exists."""

from __future__ import annotations

import asyncio
from pathlib import Path

from havm.api.app import make_app
from havm.api.openapi import spec
from havm.api.table import ROUTES
from tests.api.fake import FakeDaemon, api_client


def test_every_v1_route_is_described_and_every_description_is_routed(tmp_path: Path) -> None:
    app = make_app(FakeDaemon(tmp_path), trusted=False)  # type: ignore[arg-type]
    routed = {(r.method, r.resource.canonical) for r in app.router.routes()
              if r.resource is not None and r.resource.canonical.startswith("/v1/") and r.method != "HEAD"}
    doc = spec(app[ROUTES])
    described = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    assert routed == described
    for path, ops in doc["paths"].items():
        for op in ops.values():
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == {seg[1:-1] for seg in path.split("/") if seg.startswith("{")}, path


def test_the_description_is_served_without_a_token_and_loads_in_schemathesis(tmp_path: Path) -> None:
    import schemathesis

    async def body() -> dict[str, object]:
        async with api_client(FakeDaemon(tmp_path)) as c:
            r = await c.get("/v1/openapi.json")
            assert r.status == 200
            return await r.json()  # type: ignore[no-any-return]

    doc = asyncio.run(body())
    assert doc["openapi"].startswith("3.")  # type: ignore[union-attr]
    schema = schemathesis.openapi.from_dict(doc)
    ops = [op for op in schema.get_all_operations()]
    assert len(ops) == sum(len(v) for v in doc["paths"].values())  # type: ignore[attr-defined]
