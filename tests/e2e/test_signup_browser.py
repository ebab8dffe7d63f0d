"""A visitor on a phone: the shop's sign-up page from its QR code, the form, the inbox page,
then the confirmation link from the e-mail — all in a real browser."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from playwright.async_api import expect

from accounts.schemas import MerchantOut
from customers.tables import ConsentEvent, Customer
from tests.conftest import Jobs
from tests.customers.test_optin import link_in
from tests.e2e.conftest import shot
from tests.smtp import mail_to

PHONE = {"width": 390, "height": 844}


async def test_sign_up_on_a_phone_then_confirm_from_the_email(
    browser: Any, live_server: str, merchant: MerchantOut, jobs: Jobs, smtp: Path
) -> None:
    context = await browser.new_context(
        locale="de-DE", viewport=PHONE, is_mobile=True, has_touch=True
    )
    context.set_default_timeout(10_000)
    page = await context.new_page()
    address = f"handy.{merchant.slug}.{jobs.kind}@example.de"
    try:
        await page.goto(f"{live_server}/r/signup/{merchant.slug}?src=qr")
        await expect(
            page.get_by_role("heading", name=f"Neuigkeiten von {merchant.name} abonnieren")
        ).to_be_visible()
        # Made for the phone: nothing wider than the screen, the honeypot out of sight.
        assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        await expect(page.locator("#f-trap")).not_to_be_in_viewport()
        await shot(page, "signup")

        # Sent without the consent box: the message, and what was typed is still there.
        await page.get_by_label("E-Mail-Adresse").fill(address)
        await page.get_by_label("Vorname").fill("Hanna")
        await page.get_by_label("Geburtsdatum").fill("1991-07-14")
        await page.get_by_role("button", name="Anmelden").click()
        await expect(page.get_by_text("Bitte setzen Sie das Häkchen")).to_be_visible()
        await expect(page.get_by_label("Vorname")).to_have_value("Hanna")
        assert not await Customer.exists().where(Customer.merchant == merchant.id)

        await page.get_by_label("Ich möchte Neuigkeiten").check()
        await page.get_by_role("button", name="Anmelden").click()
        await expect(
            page.get_by_role("heading", name="Bitte sehen Sie in Ihrem Posteingang nach")
        ).to_be_visible()
        row = (
            await Customer.select()
            .where((Customer.merchant == merchant.id) & (Customer.email_normalized == address))
            .first()
        )
        assert row is not None and row["source"] == "qr" and row["locale"] == "de"
        assert row["first_name"] == "Hanna" and row["email_status"] == "pending"
        event = await ConsentEvent.select().where(ConsentEvent.customer == row["id"]).first()
        assert event is not None and "Chrome" in event["user_agent"] and event["ip"]

        link = link_in(await mail_to(smtp, address))
        await page.goto(live_server + urlparse(link).path)
        await page.get_by_role("button", name="Meine Adresse bestätigen").click()
        await expect(page.get_by_role("status")).to_contain_text("Vielen Dank")
        confirmed = await Customer.select().where(Customer.id == row["id"]).first()
        assert confirmed is not None and confirmed["email_status"] == "verified"
    finally:
        await context.close()
