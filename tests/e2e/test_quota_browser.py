"""The quota in a real browser: the dashboard card shows what is left and leads to the quota
page, which shows the month's allowance, the packs, the test sends and the history."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from babel import dates
from playwright.async_api import expect

from accounts.schemas import MerchantOut
from customers.tables import Customer
from quota import services as quota
from quota.services.common import Month
from tests.conftest import make_merchant, make_owner
from tests.e2e.conftest import shot

PASSWORD = "correct horse battery"
#: The README's picture of the quota page is replaced only when asked for.
DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "quota.png"


async def _loyal_customers(merchant: MerchantOut, count: int) -> None:
    """Written straight into the table: hundreds of customers, quickly, in chunks that stay
    under the databases' limits on statement parameters."""
    rows = [
        Customer(
            merchant=merchant.id,
            email=f"loyal{n}@example.com",
            email_normalized=f"loyal{n}@example.com",
            customer_type="loyal",
            # Confirmed by the customers themselves: what the allowance counts.
            email_status="verified",
            confirmed_by_recipient=True,
        )
        for n in range(count)
    ]
    for start in range(0, count, 100):
        await Customer.insert(*rows[start : start + 100])


async def test_the_dashboard_card_leads_to_the_quota_page(page: Any, live_server: str) -> None:
    merchant = await make_merchant(name="Corner Bakery")
    owner = await make_owner(merchant, PASSWORD)
    month = Month.containing(datetime.now(UTC), merchant.time_zone)
    # A shop in its first month: the allowance is 2 × the loyal customers it has now.
    await _loyal_customers(merchant, 430)
    await quota.buy_pack(merchant.id, "INV-2026-0042")
    send = await quota.reserve(merchant.id, 140, key="campaign:1", purpose="Autumn sale")
    # 100 messages went out; the send ended and gave the other 40 back.
    await quota.spend(merchant.id, send.id, [f"reader{n}" for n in range(100)])
    await quota.release_rest(merchant.id, send.id)
    expires = dates.format_date(month.last_day, "long", locale="en")
    name = dates.get_month_names("wide", context="stand-alone", locale="en")[month.month]

    await page.goto(f"{live_server}/")
    await expect(page).to_have_url(re.compile(r"/login\?next="))
    await page.get_by_label("E-mail address").fill(owner.email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    card = page.get_by_test_id("quota-left")
    await expect(card.locator(".value")).to_have_text("10,760")
    await expect(card).to_contain_text(f"760 of {name}'s allowance, expiring {expires}")
    await expect(card).to_contain_text("packs: 10,000")

    await card.click()
    await expect(page).to_have_url(f"{live_server}/quota")
    await expect(page.get_by_role("heading", name="Quota", exact=True)).to_be_visible()
    await expect(page.get_by_test_id("quota-available")).to_have_text("10,760")
    allowance = page.get_by_test_id("quota-allowance")
    await expect(allowance).to_contain_text("860")
    await expect(allowance).to_contain_text("2 units for each of your 430 loyal customers")
    await expect(page.get_by_test_id("quota-packs")).to_contain_text("INV-2026-0042")
    await expect(page.get_by_test_id("quota-test-sends")).to_contain_text("0 of 10")
    forecast = page.get_by_test_id("quota-forecast")
    await expect(forecast).to_contain_text("At today's 430 loyal customers")
    await expect(forecast).to_contain_text("will be 860 units")
    history = page.get_by_test_id("quota-history").locator("tbody tr")
    await expect(history.first).to_contain_text("Given back")
    await expect(history.first).to_contain_text("+40")
    await expect(history.nth(1)).to_contain_text("Autumn sale · 100 spent, 40 given back")
    await expect(page.get_by_test_id("quota-history")).to_contain_text("Pack bought")
    await shot(page, "quota")

    await page.get_by_role("link", name="DE", exact=True).click()
    await expect(page.get_by_role("heading", name="Kontingent", exact=True)).to_be_visible()
    await expect(page.get_by_test_id("quota-available")).to_have_text("10.760")
    await expect(page.get_by_test_id("quota-history")).to_contain_text("Paket gekauft")
    await page.get_by_role("link", name="EN", exact=True).click()
    await expect(page.get_by_role("heading", name="Quota", exact=True)).to_be_visible()

    if os.environ.get("LOYALMAIL_DOCS_SCREENSHOTS") == "1":
        await page.screenshot(path=str(DOCS_SCREENSHOT), full_page=True)
