"""The dashboard's pages on the API's aiohttp app: ``setup(app, daemon)``.

Routes (role ``public``: they are files; the data comes from the authenticated API):
  GET /                      the overview (nodes, links, quorum, resources, actions, history)
  GET /login                 the token login page
  GET /resources/{id}        a resource's (VM's) detail page
  GET /static/{file}         the pages' CSS and JavaScript modules

Pages are ``pages/layout.html`` (header, confirmation dialog) around a page's
own ``<main>`` (``pages/<page>.html``); the login page stands alone. Every
answer carries a strict Content-Security-Policy: scripts and styles only from
this daemon (no inline code, no CDN), no framing.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from havm.api.table import Route, add_routes

if TYPE_CHECKING:
    from havm.daemon.node import NodeDaemon

HERE = Path(str(resources.files("havm.web")))
STATIC = HERE / "static"
PAGES = HERE / "pages"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
TYPES = {".js": "text/javascript", ".css": "text/css"}


@cache
def page_html(name: str) -> bytes:
    """The full HTML of page ``name`` (overview, resource, login)."""
    main = (PAGES / f"{name}.html").read_text(encoding="utf-8")
    if name == "login":
        return main.encode()
    layout = (PAGES / "layout.html").read_text(encoding="utf-8")
    return (layout.replace("{{title}}", name).replace("{{script}}", f"{name}.js")
            .replace("{{main}}", main)).encode()


def _html(name: str) -> web.Response:
    return web.Response(body=page_html(name), content_type="text/html", charset="utf-8",
                        headers=SECURITY_HEADERS)


def _static(name: str) -> web.Response:
    path = (STATIC / name).resolve()
    if path.parent != STATIC.resolve() or path.suffix not in TYPES or not path.is_file():  # no ../ escapes
        raise web.HTTPNotFound(text=f"no such file: {name}")
    return web.Response(body=path.read_bytes(), content_type=TYPES[path.suffix], charset="utf-8",
                        headers=SECURITY_HEADERS)


def setup(app: web.Application, daemon: NodeDaemon | Any) -> None:
    """Add the dashboard's routes to ``app`` (the pages need nothing of the daemon)."""

    async def overview(request: web.Request) -> web.StreamResponse:
        return _html("overview")

    async def login(request: web.Request) -> web.StreamResponse:
        return _html("login")

    async def resource(request: web.Request) -> web.StreamResponse:
        return _html("resource")

    async def static(request: web.Request) -> web.StreamResponse:
        return _static(request.match_info["name"])

    def public(path: str, handler: Any, summary: str) -> Route:
        return Route("GET", path, handler, summary, "public", tag="dashboard", content_type="text/html",
                     in_spec=False)

    add_routes(app, [
        public("/", overview, "The dashboard's overview page"),
        public("/login", login, "The dashboard's login page"),
        public("/resources/{id}", resource, "The dashboard's page of one resource"),
        public("/static/{name}", static, "The dashboard's CSS and JavaScript modules"),
    ])
