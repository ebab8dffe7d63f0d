"""A sending domain in a real browser, as an owner would do it: Settings → Sending domains,
add the domain, copy the records, publish them (here: in the test's own DNS server), check,
see "Verified"; then the campaign summary names the shop's own address, and the test send
it sends arrives signed for that domain, verified by dkimpy through DNS. Desktop and phone."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dkim
import msgspec
import pytest
from playwright.async_api import expect

from accounts import services as accounts
from accounts.schemas import Brand
from tests.campaigns.test_sending import ready
from tests.conftest import Jobs, make_merchant, make_owner
from tests.dns_server import Zone, dns_server, lookup_for
from tests.e2e.conftest import shot
from tests.e2e.test_composer_browser import PASSWORD, _log_in
from tests.smtp import raw_mails


@pytest.fixture
def zone() -> Iterator[Zone]:
    with dns_server() as served:
        yield served


async def test_add_publish_verify_and_send_as_the_shop(
    page: Any, live_server: str, jobs: Jobs, smtp: Path, zone: Zone
) -> None:
    merchant = await make_merchant(name="Fjord Bakeri")
    campaign_id, _addresses = await ready(merchant, 2)
    owner = await make_owner(merchant, PASSWORD)
    domain = f"{merchant.slug}.example"
    await _log_in(page, live_server, owner.email)

    await page.goto(f"{live_server}/settings/domains")
    await expect(page.get_by_test_id("sender-now")).to_contain_text("noreply@loyalmail.localhost")
    await page.get_by_label("Domain").fill(f"  {domain.upper()} ")
    await page.get_by_role("button", name="Add domain").click()
    await expect(page.get_by_text("The domain was added.")).to_be_visible()
    await expect(page.get_by_test_id("domain-status")).to_have_text("Not verified yet")
    dkim_card = page.get_by_test_id("record-dkim")
    name = (await dkim_card.locator("code").nth(0).text_content()).strip()
    value = (await dkim_card.locator("code").nth(1).text_content()).strip()
    assert name.endswith(f"._domainkey.{domain}") and value.startswith("v=DKIM1; k=rsa; p=")
    copy = dkim_card.get_by_role("button", name="Copy").nth(1)
    await copy.click()
    await expect(dkim_card.get_by_role("button", name="Copied")).to_be_visible()
    await shot(page, "sending-domain")

    await page.get_by_role("button", name="Check the records now").click()
    await expect(dkim_card.get_by_test_id("record-status")).to_have_text("Missing")
    zone.publish(name, value)
    await page.get_by_role("button", name="Check the records now").click()
    await expect(page.get_by_test_id("domain-status")).to_have_text("Verified")
    await expect(dkim_card.get_by_test_id("record-status")).to_have_text("Found")
    await page.set_viewport_size({"width": 390, "height": 844})
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width} px wide on a phone"
    await shot(page, "sending-domain-phone")
    await page.set_viewport_size({"width": 1280, "height": 860})

    # The shop moves its sender address onto the domain: its mail is its own now.
    shop = await accounts.get_merchant(merchant.id)
    values = {field: getattr(shop, field) for field in Brand.__struct_fields__}
    values["sender_email"] = f"post@{domain}"
    await accounts.update_brand(merchant.id, msgspec.convert(values, Brand))
    await page.goto(f"{live_server}/campaigns/{campaign_id}/summary")
    sender = page.get_by_test_id("summary-sender")
    await expect(sender).to_contain_text(f"post@{domain}")
    await expect(page.get_by_test_id("sender-fallback")).to_have_count(0)
    await page.get_by_role("button", name="Send the test").click()
    await expect(page.get_by_text("The test is on its way")).to_be_visible()
    await asyncio.to_thread(jobs.drain)
    to = f"To: {owner.email}".encode()
    [raw] = [m for m in await asyncio.to_thread(raw_mails, smtp) if to in m]
    assert dkim.verify(raw, dnsfunc=lookup_for(zone))
    assert re.search(rb"\bd=" + re.escape(domain.encode()) + rb";", raw.replace(b"\r\n ", b""))
