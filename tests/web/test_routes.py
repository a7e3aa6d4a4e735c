"""The dashboard's routes on the API app (no browser): pages and files are public,
served with a strict CSP, nothing outside the package is; the data stays behind auth.
And the docs' screenshots were taken with today's UI."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.api.fake import FakeDaemon, api_client
from tests.web.screens import DIGEST_FILE, IMG, PAGES, REFRESH, WEB, ui_digest


def get_all(tmp_path: Path, paths: list[str]) -> dict[str, tuple[int, dict[str, str], bytes]]:
    async def body() -> dict[str, tuple[int, dict[str, str], bytes]]:
        out = {}
        async with api_client(FakeDaemon(tmp_path)) as c:
            for p in paths:
                r = await c.get(p, allow_redirects=False)
                out[p] = (r.status, dict(r.headers), await r.read())
        return out

    with ThreadPoolExecutor(1) as pool:  # a browser test's event loop may run on this thread
        return pool.submit(asyncio.run, body()).result()


def test_pages_and_files_are_served_without_a_token_with_a_strict_policy(tmp_path: Path) -> None:
    paths = ["/", "/login", "/resources/vm1", "/static/dashboard.css", "/static/overview.js"]
    got = get_all(tmp_path, paths)
    for p in paths:
        status, headers, body = got[p]
        assert status == 200, (p, body[:200])
        assert "default-src 'self'" in headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"
    assert got["/"][1]["Content-Type"].startswith("text/html")
    assert b'<script type="module" src="/static/overview.js">' in got["/"][2]
    assert b'src="/static/resource.js"' in got["/resources/vm1"][2]
    assert b'id="token"' in got["/login"][2]
    assert got["/static/overview.js"][1]["Content-Type"].startswith("text/javascript")


def test_nothing_outside_the_dashboards_files_is_served_and_the_data_needs_a_token(tmp_path: Path) -> None:
    got = get_all(tmp_path, ["/static/..%2Froutes.py", "/static/..%2Fpages%2Flogin.html", "/static/nothing.js", "/static/", "/v1/status",
                             "/v1/events/stream"])
    assert got["/static/..%2Froutes.py"][0] == 404
    assert got["/static/..%2Fpages%2Flogin.html"][0] == 404
    assert got["/static/nothing.js"][0] == 404
    assert got["/static/"][0] in (401, 404)  # no such route: anonymous callers learn nothing
    assert got["/v1/status"][0] == 401
    assert got["/v1/events/stream"][0] == 401


def test_no_page_loads_anything_from_another_site() -> None:
    for f in [*(WEB / "static").iterdir(), *(WEB / "pages").iterdir()]:
        text = f.read_text()
        for bad in ("http://", "https://", "//cdn", "<script>", "style=\""):
            assert bad not in text, f"{f.name} has {bad!r}: everything comes from havmd, no inline code"


def test_the_docs_screenshots_were_taken_with_todays_ui() -> None:
    for name in PAGES:
        assert (IMG / f"dashboard-{name}.png").is_file(), f"docs/img/dashboard-{name}.png is missing: {REFRESH}"
    assert DIGEST_FILE.read_text().strip() == ui_digest(), (
        f"the dashboard changed since docs/img was taken: run {REFRESH} (as root) and commit docs/img")
