"""Pytest fixtures: a real Chromium (Debian's `/usr/bin/chromium`) driven by Playwright.

Playwright never downloads a browser here: it launches the system package through
`executable_path`, headless, with the flags that keep Chromium from calling home (this
network refuses those hosts). Screenshots are test artefacts under `artefacts_dir`
(gitignored `.artefacts/` at the repository root unless `PIGEON_TEST_ARTEFACTS` says
otherwise).
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

CHROMIUM = Path(os.environ.get("PIGEON_CHROMIUM", "/usr/bin/chromium"))
# --no-sandbox: tests run as root here. The rest stop background calls to Google's hosts.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-default-apps",
    "--disable-extensions",
    "--metrics-recording-only",
)
ARTEFACTS_ENV = "PIGEON_TEST_ARTEFACTS"
_REPO_ROOT = Path(__file__).resolve().parents[4]


def artefacts_dir() -> Path:
    """Where screenshots go (created on first use)."""
    folder = Path(os.environ.get(ARTEFACTS_ENV, _REPO_ROOT / ".artefacts")) / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def screenshot_path(name: str) -> Path:
    """A file name from a free-form label, under `artefacts_dir`."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return artefacts_dir() / f"{slug}.png"


async def screenshot(page: Page, name: str, *, full_page: bool = True) -> Path:
    """Save the page as a test artefact and return the file."""
    path = screenshot_path(name)
    await page.screenshot(path=str(path), full_page=full_page)
    return path


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    """One headless system Chromium for the session (fails clearly when it is missing)."""
    if not CHROMIUM.exists():  # noqa: ASYNC240 (once per session, a stat)
        pytest.fail(f"{CHROMIUM} is missing: run scripts/install-test-system-deps")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=list(CHROMIUM_ARGS)
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest_asyncio.fixture(loop_scope="session")
async def browser_context(browser: Browser) -> AsyncIterator[BrowserContext]:
    """A fresh profile (no cookies) for one test."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        yield context
    finally:
        await context.close()


@pytest_asyncio.fixture(loop_scope="session")
async def page(browser_context: BrowserContext) -> Page:
    """A page in the test's own profile."""
    return await browser_context.new_page()
