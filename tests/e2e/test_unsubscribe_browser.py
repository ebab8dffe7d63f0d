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
