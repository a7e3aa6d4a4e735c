"""A real headless Chromium (Debian's, driven by Playwright) for the dashboard's tests.

No browser is ever downloaded: Playwright launches ``/usr/bin/chromium``
(``$HAVM_CHROMIUM`` to override), which scripts/setup.sh installs. The tests
skip, saying why, only when that browser or the playwright package is missing.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

CHROMIUM = os.environ.get("HAVM_CHROMIUM", "/usr/bin/chromium")


def browser_missing() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed (pip install -e '.[test]'; scripts/setup.sh does it)"
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)) and not shutil.which(CHROMIUM):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium; scripts/setup.sh does it)"
    return None


# Per module, not per session: while Playwright's sync API runs, its asyncio loop counts as
# running on the main thread, and a later test's asyncio.run() would fail.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    why = browser_missing()
    if why:
        pytest.skip(why)
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)  # ms for each expect(): as the page's steps below
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (no cookies) and page; JavaScript errors fail the test."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.set_default_timeout(30_000)  # ms, per step: generous for a loaded CI box; a step that is done goes on at once
    try:
        yield pg
    finally:
        ctx.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
