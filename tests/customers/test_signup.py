"""The public sign-up page and its QR code: a visitor signs up, confirms by e-mail (a real
aiosmtpd server, real jobs), and nothing about who is a customer leaks."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import qrcode
from babel.messages.pofile import read_po

from accounts.schemas import MerchantOut, UserOut
from customers.controllers.signup import FIELD_MESSAGES, REASON_MESSAGES
from customers.schemas import CustomerCreate
from customers.services import customers, signup
from customers.tables import ConsentEvent, Customer
from loyalmail.i18n import LOCALE_DIR, RECIPIENT_LOCALES, visitor_recipient_locale
from tests.conftest import Jobs, login, make_merchant
from tests.customers.test_optin import link_in
from tests.settings_env import settings_env
from tests.smtp import mail_to, mails_to

PAGES = Path(__file__).resolve().parents[2] / "customers" / "pages"
FIREFOX = "Mozilla/5.0 (Android 14; Mobile; rv:130.0) Gecko/130.0 Firefox/130.0"


def form(email: str, **fields: str) -> dict[str, str]:
    return {"email": email, "consent": "yes", "leave_empty": "", **fields}


async def row_of(merchant: MerchantOut, address: str) -> dict[str, Any] | None:
    row: dict[str, Any] | None = (
        await Customer.select()
        .where((Customer.merchant == merchant.id) & (Customer.email_normalized == address))
        .first()
    )
    return row


async def events_of(merchant: MerchantOut) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = (
        await ConsentEvent.select()
        .where(ConsentEvent.merchant == merchant.id)
        .order_by(ConsentEvent.id)
    )
    return rows


# --- the sign-up, end to end -------------------------------------------------------------


async def test_a_qr_sign_up_becomes_a_confirmed_subscriber_through_double_optin(
    client: Any, jobs: Jobs, smtp: Path
) -> None:
    merchant = await make_merchant(privacy_policy_url="https://shop.example/privacy")
    address = f"lea.{merchant.slug}.{jobs.kind}@example.fr"
    path = f"/r/signup/{merchant.slug}?src=qr"
    shown = await client.get(path, headers={"accept-language": "fr-FR,fr;q=0.9,en;q=0.5"})
    assert shown.status_code == 200
    assert f"Inscrivez-vous aux actualités de {merchant.name}" in shown.text
    assert 'href="https://shop.example/privacy"' in shown.text  # beside the consent box
    assert 'name="src" value="qr"' in shown.text

    done = await client.post(
        f"/r/signup/{merchant.slug}?lang=fr&src=qr",
        data=form(
            address,
            src="qr",
            first_name="Léa",
            last_name="Martin",
            birth_date="1990-04-02",
            locale="fr",
            postal_code="75011",
        ),
        headers={"user-agent": FIREFOX},
    )
    assert done.status_code == 200 and "Consultez votre boîte de réception" in done.text

    row = await row_of(merchant, address)
    assert row is not None
    assert (row["email_status"], row["source"], row["locale"]) == ("pending", "qr", "fr")
    assert (row["first_name"], row["last_name"], row["postal_code"]) == ("Léa", "Martin", "75011")
    assert str(row["birth_date"]) == "1990-04-02"
    [requested] = await events_of(merchant)
    assert (requested["action"], requested["source"]) == ("requested", "qr")
    assert requested["ip"] and requested["user_agent"] == FIREFOX
    assert requested["wording_version"] == signup.SIGNUP_WORDING_VERSION

    message = await mail_to(smtp, address)
    assert str(message["Subject"]).startswith("Veuillez confirmer")
    confirm = urlparse(link_in(message)).path
    assert "Confirmer mon adresse" in (await client.get(confirm)).text
    assert (await client.post(confirm, headers={"user-agent": FIREFOX})).status_code == 200
    row = await row_of(merchant, address)
    assert row is not None and row["email_status"] == "verified" and row["subscribed"]
    assert [e["action"] for e in await events_of(merchant)] == ["requested", "confirmed"]


async def test_the_plain_address_records_the_form_as_source(
    client: Any, merchant: MerchantOut, smtp: Path
) -> None:
    done = await client.post(f"/r/signup/{merchant.slug}", data=form("Form@Example.com"))
    assert done.status_code == 200 and "Please check your inbox" in done.text
    row = await row_of(merchant, "form@example.com")
    assert row is not None and row["source"] == "form" and row["email_status"] == "pending"
    assert row["locale"] == merchant.default_locale  # the page's language, nothing chosen
    assert [(e["action"], e["source"]) for e in await events_of(merchant)] == [
        ("requested", "form")
    ]


# --- what creates nothing ----------------------------------------------------------------


async def test_a_bot_filling_the_honeypot_is_told_success_and_nothing_is_stored(
    client: Any, merchant: MerchantOut
) -> None:
    answer = await client.post(
        f"/r/signup/{merchant.slug}", data=form("bot@example.com", leave_empty="http://spam")
    )
    assert answer.status_code == 200 and "Please check your inbox" in answer.text
    assert await row_of(merchant, "bot@example.com") is None
    assert await events_of(merchant) == []


async def test_without_the_consent_box_nothing_is_stored_and_the_entries_stay(
    client: Any, merchant: MerchantOut
) -> None:
    values = form("nobox@example.com", first_name="Jürgen", postal_code="10115")
    values.pop("consent")
    answer = await client.post(
        f"/r/signup/{merchant.slug}", data=values, headers={"accept-language": "de"}
    )
    assert answer.status_code == 422
    assert "Bitte setzen Sie das Häkchen" in answer.text
    assert 'value="nobox@example.com"' in answer.text and 'value="Jürgen"' in answer.text
    assert 'value="10115"' in answer.text
    assert await row_of(merchant, "nobox@example.com") is None
    assert await events_of(merchant) == []


async def test_bad_entries_are_each_marked_and_nothing_is_stored(
    client: Any, merchant: MerchantOut
) -> None:
    answer = await client.post(
        f"/r/signup/{merchant.slug}",
        data=form("not-an-address", first_name="x" * 101, birth_date="2999-01-01"),
    )
    assert answer.status_code == 422
    assert "Please enter a valid e-mail address." in answer.text
    assert "This is too long." in answer.text
    assert "Please enter a valid birth date, or leave the field empty." in answer.text
    assert 'value="not-an-address"' in answer.text
    assert await Customer.count().where(Customer.merchant == merchant.id) == 0
    assert await events_of(merchant) == []


# --- addresses the shop knows: nothing leaks, nothing is overwritten, no mail-bombing ----


async def test_a_known_address_gets_the_same_page_and_keeps_the_shops_data(
    client: Any, merchant: MerchantOut, jobs: Jobs, smtp: Path
) -> None:
    path = f"/r/signup/{merchant.slug}"
    address = f"known.{merchant.slug}.{jobs.kind}@example.com"
    known = await customers.create_customer(
        merchant.id,
        CustomerCreate(email=address, first_name="Karin", birth_date=None, send_optin=False),
    )
    fresh = await client.post(path, data=form(f"fresh.{jobs.kind}@example.com"))

    again = await client.post(
        path, data=form(address, first_name="Mallory", last_name="X", birth_date="2000-01-01")
    )
    assert again.status_code == fresh.status_code == 200
    assert again.text == fresh.text  # the same answer: the page tells nobody who is a customer
    row = await row_of(merchant, address)
    assert row is not None
    # Anonymous input never overwrites, nor fills in, what the shop holds.
    assert (row["first_name"], row["last_name"], row["birth_date"]) == ("Karin", "", None)
    assert row["email_status"] == "pending" and row["source"] == "marketer"
    await mail_to(smtp, address)

    # Sent again within the hour: no second e-mail, no second request, the same page.
    third = await client.post(path, data=form(address))
    assert third.text == fresh.text
    jobs.drain()
    assert len(mails_to(smtp, address)) == 1
    known_events = [e for e in await events_of(merchant) if e["customer"] == known.id]
    assert [(e["action"], e["source"]) for e in known_events] == [("requested", "form")]
    assert known_events[0]["wording_version"] == signup.SIGNUP_WORDING_VERSION


async def test_a_confirmed_subscriber_is_sent_nothing_and_sees_the_same_page(
    client: Any, merchant: MerchantOut, jobs: Jobs, smtp: Path
) -> None:
    path = f"/r/signup/{merchant.slug}"
    address = f"loyal.{merchant.slug}.{jobs.kind}@example.com"
    created = await customers.create_customer(merchant.id, CustomerCreate(email=address))
    await client.post(urlparse(link_in(await mail_to(smtp, address))).path)
    before = await events_of(merchant)

    answer = await client.post(path, data=form(address, first_name="Someone"))
    assert answer.status_code == 200 and "Please check your inbox" in answer.text
    jobs.drain()
    assert len(mails_to(smtp, address)) == 1  # only the first opt-in
    assert await events_of(merchant) == before
    confirmed = await customers.get_customer(merchant.id, created.id)
    assert confirmed.email_status == "verified" and confirmed.subscribed


async def test_an_unsubscribed_address_can_sign_up_again_through_the_optin(
    client: Any, merchant: MerchantOut, smtp: Path
) -> None:
    from customers.schemas import CustomerUpdate

    address = f"back.{merchant.slug}@example.com"
    created = await customers.create_customer(merchant.id, CustomerCreate(email=address))
    await client.post(urlparse(link_in(await mail_to(smtp, address))).path)
    await customers.update_customer(merchant.id, created.id, CustomerUpdate(subscribed=False))
    # The first opt-in is older than the window: a new sign-up asks again.
    await Customer.update({Customer.optin_sent_at: None}).where(Customer.id == created.id)
    await ConsentEvent.delete().where(
        (ConsentEvent.customer == created.id) & (ConsentEvent.action == "requested")
    )
    await client.post(f"/r/signup/{merchant.slug}", data=form(address))
    second = await mail_to(smtp, address, count=2)
    await client.post(urlparse(link_in(second)).path)
    back = await customers.get_customer(merchant.id, created.id)
    assert back.subscribed and back.email_status == "verified"


async def test_a_confirmation_racing_the_sign_up_still_gets_the_quiet_answer(
    merchant: MerchantOut, monkeypatch: pytest.MonkeyPatch
) -> None:
    from customers.schemas import SignupCreate
    from customers.services import consent
    from loyalmail.errors import Conflict

    address = f"race.{merchant.slug}@example.com"
    await customers.create_customer(merchant.id, CustomerCreate(email=address, send_optin=False))

    async def confirmed_meanwhile(*args: object, **kwargs: object) -> None:
        raise Conflict("This address is confirmed already; no confirmation e-mail is needed.")

    monkeypatch.setattr(consent, "request_optin", confirmed_meanwhile)
    data = SignupCreate(email=address, consent=True)
    assert await signup.sign_up(merchant.slug, data) == "confirmed_already"


# --- the page itself ---------------------------------------------------------------------


async def test_an_unknown_shop_is_a_404_page_in_the_browsers_language(client: Any) -> None:
    for method in (client.get, client.post):
        answer = await method("/r/signup/no-such-shop", headers={"accept-language": "de-AT"})
        assert answer.status_code == 404 and "Diese Seite gibt es nicht" in answer.text
        assert "noindex" in answer.headers["x-robots-tag"]


async def test_the_page_is_locked_down_unindexed_and_without_referrer(
    client: Any, merchant: MerchantOut
) -> None:
    answer = await client.get(f"/r/signup/{merchant.slug}")
    csp = answer.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "form-action 'self'" in csp
    assert "frame-ancestors 'none'" in csp and "script-src" not in csp
    assert answer.headers["x-robots-tag"] == "noindex, nofollow"
    assert answer.headers["referrer-policy"] == "no-referrer"
    assert answer.headers["cache-control"] == "private, no-store"
    assert '<meta name="robots" content="noindex, nofollow">' in answer.text
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in answer.text
    assert "<script" not in answer.text


async def test_the_page_speaks_the_visitors_language(client: Any, db: object) -> None:
    shop = await make_merchant(default_locale="nb", brand_color="#aa3300")
    path = f"/r/signup/{shop.slug}"
    cases = [
        ({"accept-language": "de-DE,de;q=0.9"}, "", "Neuigkeiten von", "de"),
        ({"accept-language": "fr-CH, en;q=0.4"}, "", "Inscrivez-vous", "fr"),
        ({"accept-language": "de"}, "?lang=fi", "Tilaa uutiset kaupalta", "fi"),
        ({"accept-language": "sr-Latn-RS"}, "", "Prijavite se za novosti", "sr"),
        ({"accept-language": "it-IT"}, "", "Meld deg på nyheter", "nb"),  # → the shop's
    ]
    for headers, query, text, lang in cases:
        answer = await client.get(path + query, headers=headers)
        assert text in answer.text and f'<html lang="{lang}">' in answer.text, (headers, query)
        assert f'<option value="{lang}" lang="{lang}" selected>' in answer.text
    assert "--brand: #aa3300" in answer.text and shop.name in answer.text


def test_visitor_language_negotiation() -> None:
    assert visitor_recipient_locale("", "no-NO,en;q=0.5", "de") == "nb"
    assert visitor_recipient_locale("xx", "", "fi_FI") == "fi"
    assert visitor_recipient_locale("sr", "de", "en") == "sr"
    assert visitor_recipient_locale("", "", "it") == "en"


def test_every_sign_up_text_is_translated_into_every_recipient_language() -> None:
    wanted = (
        {
            message
            for page in PAGES.glob("signup*.html")
            if page.name != "signup_qr.html"  # the marketer's page: messages.po
            for message in re.findall(r'\bt\("([^"]+)"', page.read_text(encoding="utf-8"))
        }
        | set(FIELD_MESSAGES.values())
        | set(REASON_MESSAGES.values())
    )
    assert "Please check your inbox" in wanted and len(wanted) > 20
    # Words that are the same in a language (German "optional") may equal the English.
    same = {("de", "optional")}
    for locale in RECIPIENT_LOCALES:
        with (LOCALE_DIR / locale / "LC_MESSAGES" / "email.po").open("rb") as po_file:
            catalog = read_po(po_file, locale=locale)
        missing = [m for m in wanted if not getattr(catalog.get(m), "string", "")]
        assert not missing, f"{locale}: {missing}"
        if locale != "en":
            copies = [
                m
                for m in wanted
                if getattr(catalog.get(m), "string", "") == m and (locale, m) not in same
            ]
            assert not copies, f"{locale} has English copies: {copies}"


# --- rate limits ------------------------------------------------------------------------


async def test_sign_ups_have_a_small_budget_per_address_and_none_per_shop(
    db: object, merchant: MerchantOut
) -> None:
    from litestar.testing import AsyncTestClient

    from loyalmail.app import create_app

    limits = {"LOYALMAIL_SIGNUP_RATE_PER_IP": "2", "LOYALMAIL_PUBLIC_RATE_PER_TOKEN": "2"}
    path = f"/r/signup/{merchant.slug}"
    with settings_env(limits):
        async with AsyncTestClient(app=create_app(use_pool=False)) as client:
            # Looking is not signing up, and the shop's page is no token: no budget of 2.
            assert [(await client.get(path)).status_code for _ in range(4)] == [200] * 4
            sent = [
                (await client.post(path, data={"email": "x", "consent": ""})).status_code
                for _ in range(3)
            ]
            assert sent == [422, 422, 429]


# --- the marketer's page, the print view and the download ---------------------------------


def dark_modules(svg: str) -> set[tuple[int, int]]:
    """The black squares of qrcode's path image: one ``Mx,yH…V…H…z`` per module."""
    root = ET.fromstring(svg)
    paths = [el.get("d", "") for el in root.iter() if el.tag.endswith("path")]
    return {(int(x), int(y)) for d in paths for x, y in re.findall(r"M(\d+),(\d+)H", d)}


def expected_modules(data: str) -> set[tuple[int, int]]:
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=4)
    code.add_data(data)
    code.make(fit=True)
    return {(x, y) for y, row in enumerate(code.get_matrix()) for x, dark in enumerate(row) if dark}


async def test_the_marketer_gets_the_address_the_qr_code_and_a_print_view(
    client: Any, owner: UserOut
) -> None:
    from accounts import services as accounts
    from accounts.schemas import Brand
    from loyalmail.settings import get_settings

    shop = await accounts.get_merchant(owner.merchant_id)
    values = {name: getattr(shop, name) for name in Brand.__struct_fields__}
    # The test shop's profile is complete; this one has no privacy-policy link yet.
    merchant = await accounts.update_brand(shop.id, Brand(**{**values, "privacy_policy_url": ""}))
    assert (await client.get("/customers/signup-qr.svg")).status_code in (302, 303, 401)
    await login(client, owner)
    url = f"{get_settings().base_url}/r/signup/{merchant.slug}"

    listing = await client.get("/customers")
    assert 'href="/customers/signup"' in listing.text

    shown = await client.get("/customers/signup")
    assert shown.status_code == 200
    assert f">{url}</a>" in shown.text and f"{url}?src=qr" in shown.text
    inline = re.search(r"<svg.*?</svg>", shown.text, re.S)
    assert inline is not None and dark_modules(inline.group(0)) == expected_modules(f"{url}?src=qr")
    assert "no privacy-policy link yet" in shown.text

    download = await client.get("/customers/signup-qr.svg")
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("image/svg+xml")
    assert f"signup-qr-{merchant.slug}.svg" in download.headers["content-disposition"]
    assert dark_modules(download.text) == expected_modules(f"{url}?src=qr")
    assert dark_modules(download.text) != expected_modules(url)  # the QR one, with ?src=qr

    printed = await client.get("/customers/signup/print")
    assert printed.status_code == 200 and "@media print" in printed.text
    assert merchant.name in printed.text and "Get our news by e-mail" in printed.text
    assert url in printed.text and "<svg" in printed.text


async def test_the_print_view_speaks_the_shops_language(client: Any, db: object) -> None:
    from tests.conftest import make_owner

    shop = await make_merchant(default_locale="de")
    await login(client, await make_owner(shop))
    printed = await client.get("/customers/signup/print")
    assert "Unsere Neuigkeiten per E-Mail" in printed.text and '<html lang="de">' in printed.text
    german = await client.get("/customers/signup?lang=de")
    assert "<h1>Anmeldeseite & QR-Code</h1>" in german.text
