"""The web dashboard served by havmd on its API port (docs/dashboard.md).

Static HTML, CSS and JavaScript modules shipped as package data (no build
step, no CDN); ``routes.setup(app, daemon)`` adds the pages to the API's
aiohttp application. The pages hold no data: everything they show comes from
the REST API (``/v1/...``) and its event stream, with the caller's token.
"""
