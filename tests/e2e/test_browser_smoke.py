"""The browser fixture drives the system Chromium (no download, no network)."""

from __future__ import annotations

from playwright.async_api import Page

from pigeon_testing.browser import screenshot


async def test_system_chromium_renders_a_page(page: Page) -> None:
    await page.set_content("<main><h1>Pigeon</h1></main>")
    assert await page.inner_text("h1") == "Pigeon"
    path = await screenshot(page, "browser smoke")
    assert path.stat().st_size > 0
