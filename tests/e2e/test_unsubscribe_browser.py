"""A recipient in a real browser: the unsubscribe link's page, its one button, the undo."""

from __future__ import annotations

from typing import Any

from playwright.async_api import expect

from accounts.schemas import MerchantOut
from customers.tables import Customer
from tests.e2e.conftest import shot
from tests.tracking.test_unsubscribe import customer_of, link, one


async def test_unsubscribe_with_the_button_then_undo(
    page: Any, live_server: str, merchant: MerchantOut
) -> None:
    sent = await one(merchant)
    await Customer.update({Customer.locale: "en"}).where(Customer.email_normalized == sent.address)
    await page.goto(live_server + link(sent))
    await expect(
        page.get_by_role("heading", name="Unsubscribe from the newsletter")
    ).to_be_visible()
    await expect(page.locator(".brand")).to_have_text(merchant.name)
    assert (await customer_of(sent))["subscribed"] is True  # opening the link changed nothing
    await shot(page, "unsubscribe")

    await page.get_by_role("button", name="Unsubscribe").click()
    await expect(page.get_by_role("heading", name="You are unsubscribed")).to_be_visible()
    assert (await customer_of(sent))["subscribed"] is False

    await page.get_by_role("button", name="Subscribe me again").click()
    await expect(page.get_by_role("heading", name="You are subscribed again")).to_be_visible()
    assert (await customer_of(sent))["subscribed"] is True


async def test_pause_from_the_preference_page_on_a_phone(
    page: Any, live_server: str, merchant: MerchantOut
) -> None:
    sent = await one(merchant)  # a German customer
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.goto(live_server + link(sent))
    await page.get_by_role("link", name="Stattdessen die Newsletter pausieren").click()
    await expect(page.get_by_role("heading", name="Ihre Newsletter-Einstellungen")).to_be_visible()
    assert (await customer_of(sent))["subscribed"] is True
    # Nothing wider than the phone: no sideways scrolling.
    assert await page.evaluate("document.documentElement.scrollWidth") <= 390
    await shot(page, "preferences")

    await page.get_by_label("6 Monate").check()
    await page.get_by_role("button", name="Newsletter pausieren").click()
    await expect(page.get_by_role("status")).to_contain_text("pausiert")
    row = await customer_of(sent)
    assert row["subscribed"] is False and row["paused_until"] is not None
    assert 175 < (row["paused_until"] - row["unsubscribed_at"]).days < 186

    await page.get_by_role("button", name="Löschung beantragen").click()
    await expect(page.get_by_test_id("erasure-requested")).to_be_visible()
    row = await customer_of(sent)
    assert row["erasure_requested_at"] is not None and row["paused_until"] is None
