"""The demo's promise, in a real browser: a campaign really sent over SMTP, the recipient's
message opened from the Outbox (its pixel loads), a link clicked (the click redirect), a
one-click unsubscribe as a mail client sends it; the campaign report shows each of them."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from campaigns.sending import dispatch
from loyalmail.settings import get_settings
from tests.campaigns.test_sending import (
    fast_sending,  # noqa: F401  (a fixture)
    ready,
)
from tests.conftest import Jobs, make_merchant, make_owner
from tests.e2e.conftest import BROWSER_ARGS, CHROMIUM, shot
from tests.e2e.test_composer_browser import PASSWORD, _log_in
from tests.settings_env import settings_env
from tests.tracking.test_redirects import events_of, sent_an_hour_ago

#: A desktop Chrome: the headless browser's own agent names itself, and would be flagged
#: as a machine (tracking.machines), as it should be.
DESKTOP_CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float = 10.0) -> None:
    for _ in range(int(seconds * 10)):
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not within {seconds} s")


def to_outbox(caught: Path, outbox: Path, address: str) -> None:
    """The messages to ``address`` the tests' SMTP server caught, into the demo's outbox."""
    outbox.mkdir(parents=True, exist_ok=True)
    for message in caught.glob("*.eml"):
        if address in message.read_text(errors="replace"):
            shutil.copy(message, outbox / message.name)


async def kinds(campaign_id: int) -> list[tuple[str, bool]]:
    return [(e["kind"], e["machine"]) for e in await events_of(campaign_id)]


@pytest.mark.usefixtures("fast_sending")
async def test_open_click_and_unsubscribe_from_the_outbox_show_in_the_report(
    playwright: Any, live_server: str, jobs: Jobs, smtp: Path
) -> None:
    # A browser of its own: a context's user agent does not reach the sandboxed frame's
    # image requests, only the browser-wide switch does.
    desktop = await playwright.chromium.launch(
        executable_path=CHROMIUM,
        headless=True,
        args=[*BROWSER_ARGS, f"--user-agent={DESKTOP_CHROME}"],
    )
    context = await desktop.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = await context.new_page()
    try:
        with settings_env({"LOYALMAIL_DEMO": "1", "LOYALMAIL_BASE_URL": live_server}):
            merchant = await make_merchant(name="Kiez Kaffee")
            campaign_id, addresses = await ready(merchant, 1)
            owner = await make_owner(merchant, PASSWORD)
            await dispatch.send_now(merchant.id, campaign_id)
            await asyncio.to_thread(jobs.drain)
            # The send went to the tests' SMTP server; the demo's outbox shows what it caught.
            await asyncio.to_thread(to_outbox, smtp, get_settings().outbox_dir, addresses[0])
            # Read an hour later: a click within seconds of delivery is a scanner's.
            await sent_an_hour_ago(campaign_id)

            await _log_in(page, live_server, owner.email)
            await page.goto(f"{live_server}/outbox")
            await page.get_by_role("link", name="winter is here").first.click()
            await expect(page.locator("[data-check='one-click-yes']")).to_be_visible()
            await eventually(lambda: _has(campaign_id, ("open", False)))

            mail = page.frame_locator("iframe.mailview")
            link = mail.locator("a[href*='/r/c/']").first
            async with context.expect_page() as opened:
                await link.click()
            await (await opened.value).close()  # it went on to the shop's site (no network)
            await eventually(lambda: _has(campaign_id, ("click", False)))

            await page.get_by_role("button", name="Unsubscribe with one click").click()
            await expect(page.get_by_role("heading", name="Sie sind abgemeldet")).to_be_visible()

            await page.goto(f"{live_server}/campaigns/{campaign_id}/report")
            await expect(page.get_by_test_id("report-recipients")).to_have_text("1")
            await expect(page.get_by_test_id("report-opens")).to_contain_text("1")
            await expect(page.get_by_test_id("report-clicks")).to_contain_text("1")
            await expect(page.get_by_test_id("report-unsubscribes")).to_have_text("1")
            await shot(page, "campaign_report")
    finally:
        await context.close()
        await desktop.close()


async def _has(campaign_id: int, wanted: tuple[str, bool]) -> bool:
    return wanted in await kinds(campaign_id)
