"""Browser tests: the real app in a uvicorn thread, driven by Playwright on Debian's chromium.

The server thread shares the test engine (``db``) and the broker of the ``jobs`` fixture, so
imports run on a real dramatiq worker. Playwright's async API runs on the tests' event loop.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from piccolo.engine.base import Engine

from tests.conftest import service_missing

CHROMIUM = os.environ.get("LOYALMAIL_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path("/tmp/loyalmail-shots")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def live_server(db: Engine) -> Iterator[str]:
    """The whole app on a free 127.0.0.1 port; yields its base URL."""
    import uvicorn

    from loyalmail.app import create_app

    port = _free_port()
    config = uvicorn.Config(
        create_app(use_pool=False),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="e2e-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the app server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _require_chromium() -> None:
    if not Path(CHROMIUM).is_file():
        service_missing("Chromium", f"{CHROMIUM} does not exist (set LOYALMAIL_CHROMIUM)")


def _shot_path(name: str) -> str:
    SHOTS.mkdir(parents=True, exist_ok=True)
    return str(SHOTS / f"{name}.png")


def read_text(path: str | Path) -> str:
    """A downloaded file's text (CSV exports start with a byte-order mark for Excel)."""
    return Path(path).read_text(encoding="utf-8-sig")


BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="session")
async def playwright() -> AsyncIterator[object]:
    """Playwright itself, for a test that launches a browser with switches of its own."""
    _require_chromium()
    from playwright.async_api import async_playwright

    async with async_playwright() as running:
        yield running


@pytest.fixture(scope="session")
async def browser(playwright: object) -> AsyncIterator[object]:
    chromium = await playwright.chromium.launch(  # type: ignore[attr-defined]
        executable_path=CHROMIUM, headless=True, args=BROWSER_ARGS
    )
    try:
        yield chromium
    finally:
        await chromium.close()


@pytest.fixture
async def page(browser: object) -> AsyncIterator[object]:
    context = await browser.new_context(  # type: ignore[attr-defined]
        locale="en-US", viewport={"width": 1280, "height": 860}, accept_downloads=True
    )
    context.set_default_timeout(10_000)
    tab = await context.new_page()
    try:
        yield tab
    finally:
        await context.close()


async def shot(page: object, name: str) -> None:
    """Keep a picture of a main page for the README and for a look by a human."""
    await page.screenshot(path=_shot_path(name), full_page=True)  # type: ignore[attr-defined]
