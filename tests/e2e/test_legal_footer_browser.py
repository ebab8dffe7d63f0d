"""The legal footer in a real browser: a shop without an address opens the summary of its
campaign, reads what is missing, follows the link to the settings field, fills it in — and
until the footer is complete no button sends (issue 20, item 5; failed before: the summary
said "Nothing is missing" and offered "Send now")."""

from __future__ import annotations

import re
from typing import Any

from playwright.async_api import expect

from tests.campaigns.test_sending import a_campaign, people
from tests.conftest import make_merchant, make_owner
from tests.e2e.conftest import shot
from tests.e2e.test_composer_browser import PASSWORD, _log_in


async def test_the_summary_names_the_missing_footer_and_links_to_the_field(
    page: Any, live_server: str
) -> None:
    merchant = await make_merchant(name="Ohne Adresse", street="", postal_code="", city="")
    await people(merchant, 2)
    campaign_id = await a_campaign(merchant)
    owner = await make_owner(merchant, PASSWORD)
    await _log_in(page, live_server, owner.email)

    await page.goto(f"{live_server}/campaigns/{campaign_id}/summary")
    problems = page.get_by_test_id("summary-problems")
    await expect(problems).to_be_visible()
    gaps = page.get_by_test_id("legal-gap")
    await expect(gaps).to_have_count(3)
    await expect(problems).to_contain_text("The legal footer needs the shop's street and number.")
    await expect(problems).to_contain_text("The legal footer needs the shop's postal code.")
    await expect(problems).to_contain_text("The legal footer needs the shop's city.")
    await expect(page.get_by_test_id("summary-ready")).to_have_count(0)
    await expect(page.get_by_test_id("legal-footer-rule")).to_contain_text("test send")
    # No way to send: neither button is there, nor any enabled one that would.
    await expect(page.get_by_role("button", name=re.compile("^Send now"))).to_have_count(0)
    schedule = page.get_by_role("button", name=re.compile("^(Schedule|Reschedule)$"))
    await expect(schedule).to_have_count(0)
    await expect(page.get_by_role("button", name="Send the test")).to_be_enabled()
    await shot(page, "summary-legal-footer")

    # The street's link leads to the street field of the brand settings.
    await gaps.filter(has_text="street").get_by_role("link", name="Fix it").click()
    await expect(page).to_have_url(re.compile(r"/settings#field-street$"))
    street = page.locator("#field-street")
    await expect(street).to_be_visible()
    await expect(street).to_be_in_viewport()
    assert await street.get_attribute("name") == "street"
    await expect(page.get_by_test_id("legal-gaps")).to_be_visible()

    # Filled in and saved, the summary is ready and offers the send.
    await street.fill("Oranienstraße 42")
    await page.locator("#field-postal_code").fill("10999")
    await page.locator("#field-city").fill("Berlin")
    await page.get_by_role("button", name="Save").click()
    await expect(page).to_have_url(re.compile(r"/settings\?notice=saved$"))
    await expect(page.get_by_test_id("legal-gaps")).to_have_count(0)
    await page.goto(f"{live_server}/campaigns/{campaign_id}/summary")
    await expect(page.get_by_test_id("summary-ready")).to_be_visible()
    await expect(page.get_by_role("button", name="Send now to 2 recipients")).to_be_enabled()
