"""What a user does on the dashboard, as steps the tests share (Playwright, sync API)."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

LIVE_TIMEOUT = 40_000  # ms: the page is loaded and its event stream connected (a loaded CI box)


def log_in(page: Any, base: str, token: str) -> None:
    """Sign in on the login page with ``token`` and wait for the overview to be live."""
    page.goto(base + "/login")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(base + "/")
    expect(page.locator("#connection")).to_have_text("live", timeout=LIVE_TIMEOUT)


def mark_page(page: Any) -> None:
    """Tag this page load: ``assert_not_reloaded`` later proves the page was never reloaded."""
    page.evaluate("window.__havmTestMark = 'same page'")


def assert_not_reloaded(page: Any) -> None:
    assert page.evaluate("window.__havmTestMark") == "same page", "the page was reloaded"


def resource_row(page: Any, rid: str) -> Any:
    return page.locator(f'#resources tr[data-resource="{rid}"]')


def node_row(page: Any, name: str) -> Any:
    return page.locator(f'#nodes tr[data-node="{name}"]')


def confirm(page: Any, target: str | None = None) -> None:
    """Answer the confirmation dialog: choose ``target`` if asked, then Confirm."""
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    if target is not None:
        dialog.get_by_label("Target node").select_option(target)
    dialog.get_by_role("button", name="Confirm").click()
    expect(dialog).to_be_hidden()


def migrate_with_a_click(page: Any, base: str, rid: str, home: str, target: str, timeout: float) -> None:
    """From the overview: open ``rid``'s page, Migrate, confirm ``target``, see it there (``timeout`` ms)."""
    page.get_by_role("link", name=rid).click()
    page.wait_for_url(f"{base}/resources/{rid}")
    expect(page.locator('#placement [data-key="node"]')).to_have_text(home)
    mark_page(page)
    page.get_by_role("button", name=f"Migrate {rid}").click()
    expect(page.get_by_role("dialog")).to_contain_text(f"live-migrate {rid}?")
    confirm(page, target)
    expect(page.locator('#placement [data-key="node"]')).to_have_text(target, timeout=timeout)
