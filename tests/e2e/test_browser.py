"""What a marketer does in a real browser: log in, import, find, open, export, switch language."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from playwright.async_api import expect

from accounts.schemas import MerchantOut
from tests.conftest import Jobs, make_merchant, make_owner
from tests.e2e.conftest import read_text, shot

PASSWORD = "correct horse battery"


async def _log_in(page: Any, base: str, email: str, password: str = PASSWORD) -> None:
    await page.goto(f"{base}/")
    await expect(page).to_have_url(re.compile(r"/login\?next="))
    await page.get_by_label("E-mail address").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Log in").click()


async def _shop() -> tuple[MerchantOut, str]:
    merchant = await make_merchant(name="Corner Bakery")
    owner = await make_owner(merchant, PASSWORD)
    return merchant, owner.email


async def test_wrong_password_shows_a_message(page: Any, live_server: str) -> None:
    _merchant, email = await _shop()
    await _log_in(page, live_server, email, "not the password")
    await expect(page.get_by_role("alert")).to_have_text("Wrong e-mail address or password.")
    await expect(page.get_by_label("E-mail address")).to_have_value(email)
    await shot(page, "login-error")


async def test_import_find_open_export(
    page: Any, live_server: str, jobs: Jobs, tmp_path: Path
) -> None:
    merchant, email = await _shop()
    await _log_in(page, live_server, email)
    await expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    await expect(page.locator(".brand")).to_contain_text("Corner Bakery")
    await shot(page, "dashboard-empty")

    # Import: three good rows and one with a broken address.
    csv_file = tmp_path / "customers.csv"
    csv_file.write_text(
        "email,first_name,last_name,city,country,customer_type\n"
        "zoe.quill@example.com,Zoë,Quill,Hamburg,DE,loyal\n"
        "max.muster@example.com,Max,Muster,Köln,DE,member\n"
        "not-an-address,Bad,Row,Berlin,DE,loyal\n"
        "lea.lind@example.com,Lea,Lind,Graz,AT,non_member\n",
        encoding="utf-8",
    )
    await page.get_by_role("link", name="Customers", exact=True).click()
    await page.get_by_role("link", name="Import", exact=True).click()
    await expect(page.get_by_role("heading", name="Import customers")).to_be_visible()
    await shot(page, "import-upload")
    await page.get_by_label("CSV or Excel file").set_input_files(str(csv_file))
    await page.get_by_role("button", name="Upload and preview").click()

    status = page.locator("#import-status")
    await expect(status).to_have_attribute("data-status", "previewed", timeout=20_000)
    await expect(page.get_by_test_id("rows-new")).to_have_text("3")
    await expect(page.get_by_test_id("rows-invalid")).to_have_text("1")
    await expect(page.get_by_test_id("issues")).to_contain_text("not-an-address")
    await shot(page, "import-preview")
    await page.get_by_role("button", name="Confirm and import").click()
    await expect(status).to_have_attribute("data-status", "done", timeout=20_000)
    await expect(page.get_by_test_id("import-done")).to_be_visible()
    await expect(page.get_by_test_id("issues")).to_contain_text("not a valid e-mail address")
    await shot(page, "import-report")
    async with page.expect_download() as report_info:
        await page.get_by_test_id("report-csv").click()
    report = read_text(await (await report_info.value).path())
    assert "not-an-address" in report

    # Find the imported customer by search (HTMX swaps only the table).
    await page.get_by_role("link", name="Go to your customers").click()
    await expect(page.get_by_test_id("result-count")).to_have_text("3 customers")
    await shot(page, "customers")
    await page.get_by_label("Search").fill("quill")
    await expect(page.get_by_test_id("result-count")).to_have_text("1 customer")
    await expect(page).to_have_url(re.compile(r"q=quill"))
    table = page.locator("#customer-table tbody")
    await expect(table).to_contain_text("zoe.quill@example.com")
    await expect(table).not_to_contain_text("max.muster@example.com")

    # Export keeps the filter.
    async with page.expect_download() as download_info:
        await page.get_by_test_id("export-csv").click()
    exported = read_text(await (await download_info.value).path())
    assert "zoe.quill@example.com" in exported
    assert "max.muster@example.com" not in exported

    # Open the customer: details and insights.
    await table.get_by_role("link", name="Zoë Quill").click()
    await expect(page.get_by_role("heading", name="Zoë Quill")).to_be_visible()
    await expect(page.get_by_test_id("lifetime-value")).to_have_text("€0.00")
    await page.get_by_label("Amount (EUR)").fill("42.50")
    await page.get_by_role("button", name="Add", exact=True).click()
    await expect(page.get_by_role("status")).to_contain_text("The purchase was recorded.")
    await expect(page.get_by_test_id("lifetime-value")).to_have_text("€42.50")
    await shot(page, "customer")

    await page.get_by_role("link", name="Settings").click()
    await expect(page.get_by_label("Shop name")).to_have_value("Corner Bakery")
    await shot(page, "settings")


async def test_german_through_the_language_switch(page: Any, live_server: str) -> None:
    _merchant, email = await _shop()
    await _log_in(page, live_server, email)
    await page.get_by_role("link", name="DE", exact=True).click()
    await expect(page.get_by_role("heading", name="Übersicht")).to_be_visible()
    await expect(page.get_by_role("link", name="Kunden", exact=True)).to_be_visible()
    await page.get_by_role("link", name="Kunden", exact=True).click()
    await expect(page.get_by_role("heading", name="Kunden")).to_be_visible()  # the cookie stays
    await expect(page.locator("html")).to_have_attribute("lang", "de")
    await shot(page, "customers-de")
    await page.get_by_role("link", name="EN", exact=True).click()
    await expect(page.get_by_role("heading", name="Customers")).to_be_visible()
