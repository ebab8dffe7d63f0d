"""The deliverability page in a real browser, at desktop and at phone width: reached from
the Settings tabs, its figures as the marketer counts them, and a campaign's pause reason."""

from __future__ import annotations

from typing import Any

from playwright.async_api import expect

from campaigns.tables import Campaign
from tests.campaigns.test_deliverability import a_send
from tests.conftest import make_merchant, make_owner
from tests.e2e.conftest import shot

PASSWORD = "correct horse battery"
PHONE = {"width": 390, "height": 844}


async def log_in(page: Any, live_server: str, email: str, path: str) -> None:
    await page.goto(f"{live_server}{path}")
    await page.get_by_label("E-mail address").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()


async def test_the_page_from_the_settings_tabs_at_desktop_and_phone_width(
    browser: Any, page: Any, live_server: str
) -> None:
    merchant = await make_merchant(name="Nordlicht Kaffee")
    owner = await make_owner(merchant, PASSWORD)
    # 1,000 accepted and 60 refused at once: 60 of 1,060 tried bounced hard (5.66 %).
    sent = await a_send(merchant, {"sent": 1000, "bounced": 60}, name="Advent offer")
    reason = "Paused: 5.66 % of recipients bounced hard (limit 5 %)."
    await Campaign.update({Campaign.status: "paused", Campaign.status_reason: reason}).where(
        Campaign.id == sent[0].campaign_id
    )
    other = await make_merchant(name="Someone Else")
    await a_send(other, {"sent": 3}, name="Not ours")

    await log_in(page, live_server, owner.email, "/settings")
    await page.get_by_role("link", name="Deliverability").click()
    await expect(page).to_have_url(f"{live_server}/settings/deliverability")
    await expect(page.get_by_test_id("total-sent")).to_have_text("1,000")
    await expect(page.get_by_test_id("total-hard")).to_have_text("60 5.66 %")
    await expect(page.get_by_test_id("total-complaints")).to_have_text("0 0 %")
    row = page.get_by_test_id("deliverability-row")
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text("Advent offer")
    await expect(row.get_by_test_id("pause-reason")).to_have_text(reason)
    await expect(page.get_by_text("Not ours")).to_have_count(0)
    await expect(page.get_by_test_id("deliverability-limits")).to_contain_text("0.3 %")
    await shot(page, "deliverability")

    phone = await browser.new_context(
        locale="en-US", viewport=PHONE, is_mobile=True, has_touch=True
    )
    phone.set_default_timeout(10_000)
    small = await phone.new_page()
    try:
        await log_in(small, live_server, owner.email, "/settings/deliverability")
        await expect(small.get_by_test_id("total-hard")).to_have_text("60 5.66 %")
        await expect(small.get_by_test_id("total-sent")).to_be_in_viewport()
        # Made for the phone: the page is no wider than the screen (the table scrolls
        # inside its frame).
        assert await small.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        await expect(small.get_by_test_id("deliverability-row")).to_contain_text("Advent offer")
        await shot(small, "deliverability-phone")
    finally:
        await phone.close()
