"""Issue 21, finding 4, in a real browser: the marketer pages work under their Content
Security Policy. Chromium reports every refused script, style, image or frame on the console
("Refused to …"); walking the main pages — with a sent campaign, its report and the demo's
Outbox — must produce none."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from campaigns.sending import dispatch
from customers.tables import Customer
from loyalmail.settings import get_settings
from tests.campaigns.test_sending import (
    fast_sending,  # noqa: F401  (a fixture)
    ready,
)
from tests.conftest import Jobs, make_merchant, make_owner
from tests.e2e.test_composer_browser import PASSWORD, _log_in
from tests.e2e.test_tracking_browser import to_outbox
from tests.settings_env import settings_env


def _is_refusal(text: str) -> bool:
    return "Refused to" in text or "Content Security Policy" in text


@pytest.mark.usefixtures("fast_sending")
async def test_the_main_pages_run_under_the_policy_without_a_refusal(
    page: Any, live_server: str, jobs: Jobs, smtp: Path
) -> None:
    refusals: list[str] = []

    def on_console(message: Any) -> None:
        if _is_refusal(message.text):
            refusals.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: refusals.append(f"page error: {error}"))
    with settings_env({"LOYALMAIL_DEMO": "1", "LOYALMAIL_BASE_URL": live_server}):
        merchant = await make_merchant(name="Kiez Kaffee")
        campaign_id, addresses = await ready(merchant, 1)
        draft_id = (await ready(merchant, 0, pack=False))[0]
        owner = await make_owner(merchant, PASSWORD)
        await dispatch.send_now(merchant.id, campaign_id)
        await asyncio.to_thread(jobs.drain)
        await asyncio.to_thread(to_outbox, smtp, get_settings().outbox_dir, addresses[0])
        customer = await Customer.select(Customer.id).where(Customer.email == addresses[0]).first()
        assert customer is not None

        await _log_in(page, live_server, owner.email)
        walk = [
            "/",
            "/customers",
            f"/customers/{customer['id']}",
            "/customers/import",
            "/customers/signup",
            "/customers/signup/print",
            "/segments",
            "/campaigns",
            "/campaigns/new",
            f"/campaigns/{draft_id}/design",
            f"/campaigns/{draft_id}/summary",
            f"/campaigns/{campaign_id}/report",
            "/quota",
            "/settings",
            "/settings/tokens",
            "/settings/domains",
            "/outbox",
        ]
        for path in walk:
            response = await page.goto(f"{live_server}{path}")
            assert response is not None and response.status == 200, path
            policy = await response.header_value("content-security-policy") or ""
            assert "script-src 'self';" in policy, path  # the walk is under the policy
            await page.wait_for_load_state("networkidle")

        # The composer's script ran: its editor is on the page; the summary's sandboxed
        # preview frame shows the newsletter; the Outbox shows the sent mail in its frame.
        await page.goto(f"{live_server}/campaigns/{draft_id}/design")
        composer = page.get_by_test_id("composer")
        await expect(composer.get_by_test_id("block").first).to_be_visible()
        await page.goto(f"{live_server}/campaigns/{draft_id}/summary")
        preview = page.frame_locator("[data-testid=preview-frame]")
        await expect(preview.locator("body")).to_contain_text("Kiez Kaffee")
        await page.goto(f"{live_server}/outbox")
        await page.get_by_role("link", name="winter is here").first.click()
        await expect(page.frame_locator("iframe.mailview").locator("a").first).to_be_attached()
        await page.wait_for_load_state("networkidle")
        # The segment builder's script built its form (htmx and the module both ran).
        await page.goto(f"{live_server}/segments")
        await expect(page.get_by_test_id("root-group")).to_be_visible()
        await page.wait_for_load_state("networkidle")
    assert refusals == []
