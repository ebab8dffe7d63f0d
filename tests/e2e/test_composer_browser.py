"""The campaign composer in a real browser: a marketer creates a campaign, personalises the
subject, chooses a target group and a layout, edits the blocks, sees a refused placeholder
next to its field, uploads a picture, saves, and previews as a German and a French customer
at desktop and mobile widths."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import Any

import msgspec
from playwright.async_api import expect

from accounts.schemas import MerchantOut
from campaigns import services
from customers.schemas import CustomerCreate
from customers.services import customers
from customers.tables import Customer
from loyalmail.settings import get_settings
from tests.campaigns.test_api import branded
from tests.conftest import make_merchant, make_owner
from tests.e2e.conftest import shot

PASSWORD = "correct horse battery"
SUBJECT = "{{ salutation }} – we have an offer for you!"
#: The README's picture of the design step is replaced only when asked for.
DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "composer.png"


def _png() -> bytes:
    """A small picture in autumn colours, as a marketer would upload it."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (240, 120), (200, 110, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


async def _subscriber(merchant: MerchantOut, email: str, **values: Any) -> int:
    created = await customers.create_customer(
        merchant.id, CustomerCreate(email=email, send_optin=False, **values)
    )
    # What a confirmed opt-in would have written: only such addresses are in a target group.
    await Customer.update({Customer.email_status: "verified", Customer.subscribed: True}).where(
        Customer.id == created.id
    )
    return created.id


async def _log_in(page: Any, base: str, email: str) -> None:
    await page.goto(f"{base}/")
    await expect(page).to_have_url(re.compile(r"/login\?next="))
    await page.get_by_label("E-mail address").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()


async def _brand_frame_is_visible(frame: Any, merchant_name: str, unsubscribe: str) -> None:
    await expect(frame.get_by_text(merchant_name).first).to_be_visible()
    await expect(frame.get_by_role("link", name=unsubscribe)).to_be_visible()


async def test_compose_personalise_and_preview_as_customers(page: Any, live_server: str) -> None:
    merchant = await branded(await make_merchant(name="Kiez Kaffee"))
    owner = await make_owner(merchant, PASSWORD)
    anna = await _subscriber(
        merchant,
        "anna.mueller@example.de",
        first_name="Anna",
        last_name="Müller",
        gender="female",
        locale="de",
    )
    pierre = await _subscriber(
        merchant,
        "pierre.dupont@example.fr",
        first_name="Pierre",
        last_name="Dupont",
        gender="male",
        locale="fr",
    )

    # Uploaded pictures are addressed with the configured base URL, as a mail client needs;
    # this test's server listens elsewhere, so the browser is pointed at it.
    base_url = get_settings().base_url.rstrip("/")

    async def from_live_server(route: Any) -> None:
        path = route.request.url[len(base_url) :]
        await route.fulfill(response=await route.fetch(url=f"{live_server}{path}"))

    await page.route(f"{base_url}/media/**", from_live_server)
    await _log_in(page, live_server, owner.email)
    await page.get_by_role("link", name="Campaigns", exact=True).click()
    await expect(page.get_by_test_id("campaigns-empty")).to_contain_text("No campaigns yet")

    # A new draft from its name; the composer opens on the basics.
    await page.get_by_role("link", name="New campaign").first.click()
    await page.get_by_label("Name of the campaign").fill("Autumn offer")
    await page.get_by_role("button", name="Create draft").click()
    await expect(page).to_have_url(re.compile(r"/campaigns/\d+\?notice=campaign_created$"))
    campaign_id = int(re.findall(r"/campaigns/(\d+)", page.url)[0])
    await expect(page.get_by_role("status")).to_have_text(
        "The draft was created. Start with the subject."
    )

    # Basics: a personalised subject.
    # The fields' names start with their label; the hint after it is part of the name too.
    await page.get_by_role("textbox", name=re.compile(r"^Subject")).fill(SUBJECT)
    await page.get_by_role("textbox", name=re.compile(r"^Preheader")).fill("Only this week")
    await page.get_by_role("button", name="Save and continue").click()
    await expect(page).to_have_url(re.compile(rf"/campaigns/{campaign_id}/audience\?notice=saved"))

    # Target group: the predefined groups with their live counts.
    everyone = page.get_by_test_id("audience-all_customers")
    await expect(everyone.get_by_test_id("audience-count")).to_have_text("2")
    await everyone.get_by_role("radio").check()
    await page.get_by_role("button", name="Save and continue").click()

    # Layout: "Offer"; the blocks of the draft stay.
    await expect(page).to_have_url(re.compile(rf"/campaigns/{campaign_id}/layout\?notice=saved"))
    await page.get_by_test_id("layout-offer").get_by_role("radio").check()
    await page.get_by_role("button", name="Save and continue").click()
    await expect(page).to_have_url(re.compile(rf"/campaigns/{campaign_id}/design\?notice=saved"))

    # Design: the classic starter blocks, edited.
    composer = page.get_by_test_id("composer")
    blocks = composer.get_by_test_id("block")
    await expect(blocks).to_have_count(3)
    frame = page.frame_locator("[data-testid=preview-frame]")
    await expect(frame.get_by_text("Hello Alex Example,")).to_be_visible()
    text_block = composer.locator("[data-testid=block][data-type=text]")
    markdown = text_block.get_by_label("Text", exact=True)
    await markdown.fill("Our autumn sale starts today, ")
    await markdown.press("End")
    await composer.get_by_role("button", name="First name").click()
    await markdown.press("End")
    await markdown.press_sequentially("! ")
    await text_block.get_by_role("button", name="Bold").click()
    await page.keyboard.type("20 % off")
    await expect(markdown).to_have_value(
        "Our autumn sale starts today, {{ first_name }}! **20 % off**"
    )
    await expect(frame.locator("strong", has_text="20 % off")).to_be_visible()
    await expect(frame.get_by_text("Our autumn sale starts today, Alex!")).to_be_visible()

    # A typo in a placeholder: the message appears next to the field, saving is refused.
    await markdown.press("End")
    await markdown.press_sequentially(" {{ frist_name }}")
    refusal = "Unknown placeholder “frist_name” at line 1, column 62."
    await expect(text_block).to_contain_text(refusal)
    await expect(markdown).to_have_attribute("aria-invalid", "true")
    await expect(page.get_by_test_id("preview-status")).to_contain_text(
        "The newsletter cannot be shown yet."
    )
    await composer.get_by_role("button", name="Save", exact=True).click()
    await expect(page.get_by_test_id("save-error")).to_contain_text(
        "The campaign has problems; nothing was saved."
    )
    await expect(page.get_by_test_id("save-status")).to_have_text("Unsaved changes")
    for _ in " {{ frist_name }}":
        await markdown.press("Backspace")
    await expect(text_block).not_to_contain_text(refusal)
    await expect(page.get_by_test_id("save-error")).to_be_empty()

    # A picture: uploaded to the media library, added below the text, moved up once.
    await composer.get_by_role("button", name="+ Image").click()
    await expect(blocks).to_have_count(4)
    image = composer.locator("[data-testid=block][data-type=image]")
    await expect(image).to_contain_text("This field is required.")
    await image.get_by_label("Upload a picture").set_input_files(
        files=[{"name": "pixel.png", "mimeType": "image/png", "buffer": _png()}]
    )
    await expect(image.get_by_label("Image address")).to_have_value(re.compile(r"^/media/"))
    await image.get_by_label("Alternative text").fill("Autumn leaves")
    await image.get_by_label("Width in pixels (40–600)").fill("240")
    await image.get_by_role("button", name="Move up").click()
    await expect(blocks.nth(2)).to_have_attribute("data-type", "image")
    uploaded = await image.get_by_label("Image address").input_value()
    picture = frame.get_by_role("img", name="Autumn leaves")
    await expect(picture).to_have_attribute("src", re.compile(re.escape(uploaded) + "$"))
    await expect(picture).to_have_js_property("naturalWidth", 240)  # it really loads

    await composer.get_by_role("button", name="Save", exact=True).click()
    await expect(page.get_by_test_id("save-status")).to_have_text("All changes are saved.")
    stored = await services.get_campaign(merchant.id, campaign_id)
    saved = msgspec.to_builtins(stored.blocks)
    assert [block["type"] for block in saved] == ["heading", "text", "image", "button"]
    assert saved[1]["markdown"] == "Our autumn sale starts today, {{ first_name }}! **20 % off**"
    assert saved[2]["src"].startswith("/media/") and saved[2]["alt"] == "Autumn leaves"
    assert saved[2]["width"] == 240
    assert (stored.subject, stored.layout) == (SUBJECT, "offer")

    # Preview as the German customer, then the French one, at desktop and mobile widths.
    await page.get_by_label("Preview as").select_option(str(anna))
    subject = page.get_by_test_id("preview-subject")
    await expect(subject).to_have_text("Sehr geehrte Frau Müller – we have an offer for you!")
    await expect(page.get_by_test_id("preview-language")).to_have_text("German")
    await expect(page.locator("[data-role=preview-language]")).to_be_disabled()
    await expect(frame.get_by_text("Sehr geehrte Frau Müller,")).to_be_visible()
    await expect(frame.get_by_text("Our autumn sale starts today, Anna!")).to_be_visible()
    preview_frame = page.get_by_test_id("preview-frame")
    await expect(preview_frame).to_have_css("width", "640px")
    await _brand_frame_is_visible(frame, "Kiez Kaffee", "Abmelden")
    await shot(page, "composer-design")
    await page.get_by_text("Mobile", exact=True).click()
    await expect(preview_frame).to_have_css("width", "375px")
    await _brand_frame_is_visible(frame, "Kiez Kaffee", "Abmelden")

    await page.get_by_label("Preview as").select_option(str(pierre))
    await expect(subject).to_have_text("Cher Monsieur Dupont – we have an offer for you!")
    await expect(frame.get_by_text("Cher Monsieur Dupont,")).to_be_visible()
    await _brand_frame_is_visible(frame, "Kiez Kaffee", "Se désabonner")
    await page.get_by_text("Desktop", exact=True).click()
    await expect(preview_frame).to_have_css("width", "640px")
    await _brand_frame_is_visible(frame, "Kiez Kaffee", "Se désabonner")
    await shot(page, "composer-french")

    # The sample person, in a language of the marketer's choice.
    await page.get_by_label("Preview as").select_option("")
    language = page.locator("[data-role=preview-language]")
    await expect(language).to_be_enabled()
    await language.select_option("fi")
    await expect(page.get_by_test_id("preview-language")).to_have_text("Finnish")
    await _brand_frame_is_visible(frame, "Kiez Kaffee", "Peru tilaus")

    # The summary: what goes out to whom, a test send, and sending now or at a time.
    await composer.get_by_role("link", name="Save and continue").click()
    await expect(page).to_have_url(re.compile(rf"/campaigns/{campaign_id}/summary$"))
    summary = page.get_by_test_id("summary")
    await expect(summary).to_contain_text(SUBJECT)
    await expect(summary).to_contain_text("All customers")
    await expect(page.get_by_test_id("summary-recipients")).to_have_text("2 recipients")
    await expect(page.get_by_test_id("summary-ready")).to_be_visible()
    # A test send to the marketer's own login address, then the real one, now or scheduled.
    await expect(page.get_by_role("button", name=re.compile("send", re.IGNORECASE))).to_have_text(
        ["Send the test", "Send now to 2 recipients"]
    )
    await expect(page.get_by_test_id("schedule").get_by_role("button")).to_have_text("Schedule")
    await expect(page.get_by_test_id("test-send").get_by_role("checkbox")).to_be_checked()
    await shot(page, "composer-summary")

    # The list shows the draft.
    await page.get_by_role("link", name="← Campaigns").click()
    row = page.get_by_test_id("campaign-row")
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text("Autumn offer")
    await expect(row).to_contain_text("All customers")
    await expect(row).to_contain_text("Draft")

    if os.environ.get("LOYALMAIL_DOCS_SCREENSHOTS") == "1":
        # The README's picture: the design step as the German customer, opened fresh so no
        # notice sits above it.
        await page.goto(f"{live_server}/campaigns/{campaign_id}/design")
        # Chosen in the page, so the browser fetches the picture through the route above.
        await page.get_by_label("Preview as").select_option(str(anna))
        await expect(frame.get_by_text("Sehr geehrte Frau Müller,")).to_be_visible()
        await expect(picture).to_have_js_property("naturalWidth", 240)
        await expect(page.get_by_test_id("save-status")).to_have_text("All changes are saved.")
        await page.screenshot(path=str(DOCS_SCREENSHOT))
