"""The documentation's screenshots of the dashboard, and the UI they show.

``docs/img/dashboard-*.png`` are taken from a real lab cluster by
tests/web/test_dashboard_lab.py when run with HAVM_SCREENSHOTS=1; that run
also writes ``docs/img/dashboard-ui.sha256``, the digest of the dashboard's
files (src/havm/web/static and pages) the pictures were taken with, so a unit test can
tell when the UI changed and the pictures are out of date.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
IMG = REPO / "docs" / "img"
DIGEST_FILE = IMG / "dashboard-ui.sha256"
WEB = REPO / "src" / "havm" / "web"
PAGES = ("login", "overview", "vm")
REFRESH = "HAVM_SCREENSHOTS=1 .venv/bin/pytest tests/web/test_dashboard_lab.py"


def ui_digest() -> str:
    """SHA-256 over the names and contents of the dashboard's static files."""
    h = hashlib.sha256()
    for p in sorted([*(WEB / "static").iterdir(), *(WEB / "pages").iterdir()]):
        if p.is_file():
            h.update(f"{p.parent.name}/{p.name}".encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def wanted() -> bool:
    return os.environ.get("HAVM_SCREENSHOTS") == "1"


def screenshot(page: Any, name: str) -> None:
    """With HAVM_SCREENSHOTS=1: docs/img/dashboard-NAME.png of this page, and the UI's digest."""
    if not wanted():
        return
    assert name in PAGES, name
    toast = page.locator("#toast")
    if toast.count():  # a passing notice is not part of the page
        toast.evaluate("el => { el.hidden = true; }")
    page.screenshot(path=str(IMG / f"dashboard-{name}.png"), full_page=True)
    DIGEST_FILE.write_text(ui_digest() + "\n")
