"""The marketer's pages, through the whole app: what a user sees and what the forms do."""

from __future__ import annotations

import dataclasses
import re
import secrets
import smtplib
import socket
from decimal import Decimal
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from accounts import services as accounts
from accounts.domains import feedback_id
from accounts.schemas import MerchantOut, UserOut
from campaigns.sending.mime import DkimKey
from customers.schemas import CustomerCreate, PurchaseCreate
from customers.services import customers as customer_service
from customers.services import purchases
from loyalmail.catcher import read_outbox
from loyalmail.settings import get_settings, reset_settings_cache
from tests.conftest import login, login_csrf_of, make_merchant, make_owner
from tests.settings_env import settings_env


@pytest.fixture(autouse=True)
def _browser_accept_header(request: pytest.FixtureRequest) -> None:
    # Pages answer errors as HTML only to callers that accept HTML, as a browser does.
    if "client" in request.fixturenames:
        client = request.getfixturevalue("client")
        client.headers["accept"] = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"


async def _customer(merchant: MerchantOut, **values: Any) -> Any:
    data = {"email": f"c{id(values)}@example.com", "send_optin": False, **values}
    return await customer_service.create_customer(merchant.id, CustomerCreate(**data))


def _csrf_of(html: str) -> str:
    found = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert found, "the layout carries the CSRF token"
    return found.group(1)


async def test_login_page_and_wrong_password(client: Any, owner: UserOut) -> None:
    page = await client.get("/login")
    assert page.status_code == 200 and 'name="password"' in page.text
    form = {"email": owner.email, "password": "not it at all", "_csrf": login_csrf_of(page.text)}
    wrong = await client.post("/login", data=form)
    assert wrong.status_code == 400
    assert "Wrong e-mail address or password." in wrong.text
    assert owner.email in wrong.text  # the address is kept in the form


async def test_pages_redirect_to_login_when_logged_out(client: Any) -> None:
    response = await client.get("/customers?q=x", follow_redirects=False)
    assert response.status_code in (302, 303, 307)
    assert response.headers["location"].startswith("/login?next=")


async def test_layout_has_navigation_csrf_and_htmx(
    client: Any, merchant: MerchantOut, owner: UserOut
) -> None:
    csrf = await login(client, owner)
    html = (await client.get("/")).text
    for label in ("Dashboard", "Customers", "Segments", "Campaigns", "Quota", "Settings"):
        assert f">{label}</a>" in html
    assert ">Outbox</a>" not in html  # only in demo mode
    assert merchant.name in html
    assert _csrf_of(html) == csrf
    assert "X-CSRF-Token" in html and "/static/htmx.min.js" in html
    assert 'href="/quota" data-testid="quota-left"' in html  # the quota card leads there
    assert (await client.get("/static/htmx.min.js")).status_code == 200
    later = await client.get("/campaigns")
    assert later.status_code == 200 and "Not available yet" not in later.text
    quota = await client.get("/quota")
    assert quota.status_code == 200 and "Not available yet" not in quota.text
    segments = await client.get("/segments")
    assert segments.status_code == 200 and "Predefined groups" in segments.text


async def test_logout_ends_the_session(client: Any, owner: UserOut) -> None:
    csrf = await login(client, owner)
    response = await client.post("/logout", headers={"x-csrf-token": csrf}, follow_redirects=False)
    assert response.status_code == 303
    client.cookies.clear()
    assert (await client.get("/", follow_redirects=False)).status_code in (302, 303, 307)


async def test_language_switch_sets_cookie_and_german_pages(
    client: Any, merchant: MerchantOut, owner: UserOut
) -> None:
    await login(client, owner)
    switch = await client.get("/language?lang=de&next=/customers", follow_redirects=False)
    assert switch.status_code == 303 and switch.headers["location"] == "/customers"
    assert "lm_lang=de" in switch.headers["set-cookie"]
    html = (await client.get("/customers")).text
    assert "Kunden" in html and "Abmelden" in html
    evil = await client.get("/language?lang=de&next=//evil.example", follow_redirects=False)
    assert evil.headers["location"] == "/"
    client.cookies.set("lm_lang", "en")


async def test_dashboard_shows_figures(client: Any, merchant: MerchantOut, owner: UserOut) -> None:
    shopper = await _customer(merchant, email="top@example.com", first_name="Tina")
    await purchases.add_purchase(merchant.id, shopper.id, PurchaseCreate(amount=Decimal("1234.5")))
    await login(client, owner)
    html = (await client.get("/")).text
    assert "Tina" in html
    assert "€1,234.50" in html


async def test_customer_list_search_filter_and_htmx_partial(
    client: Any, merchant: MerchantOut, owner: UserOut
) -> None:
    await _customer(merchant, email="anna@example.com", first_name="Anna", city="Berlin")
    await _customer(
        merchant, email="bert@example.com", first_name="Bert", customer_type="loyal", city="Wien"
    )
    await login(client, owner)
    full = await client.get("/customers")
    assert "anna@example.com" in full.text and "bert@example.com" in full.text
    found = await client.get("/customers?q=anna", headers={"HX-Request": "true"})
    assert "anna@example.com" in found.text and "bert@example.com" not in found.text
    assert "<html" not in found.text  # only the table is swapped in
    assert "export.csv?q=anna" in found.text  # the export keeps the filter
    loyal = await client.get("/customers?customer_type=loyal")
    assert "bert@example.com" in loyal.text and "anna@example.com" not in loyal.text
    bad = await client.get("/customers?customer_type=nonsense")
    assert bad.status_code == 200 and "The search or filter is not valid." in bad.text
    sorted_page = await client.get("/customers?sort=email&order=asc")
    assert sorted_page.text.index("anna@example.com") < sorted_page.text.index("bert@example.com")


async def test_user_input_is_escaped(client: Any, merchant: MerchantOut, owner: UserOut) -> None:
    evil = await _customer(merchant, email="x@example.com", first_name="<script>alert(1)</script>")
    await login(client, owner)
    for path in ("/customers", f"/customers/{evil.id}", "/"):
        html = (await client.get(path)).text
        assert "<script>alert(1)</script>" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


async def test_add_customer_form_shows_field_errors_and_keeps_values(
    client: Any, merchant: MerchantOut, owner: UserOut
) -> None:
    csrf = await login(client, owner)
    form = await client.get("/customers/new")
    assert form.status_code == 200 and 'name="email"' in form.text
    bad = await client.post(
        "/customers/new",
        headers={"x-csrf-token": csrf},
        data={"email": "not-an-address", "first_name": "Kept", "country": "Germany"},
    )
    assert bad.status_code == 422
    assert 'value="Kept"' in bad.text
    assert "two-letter country code" in bad.text
    invalid = await client.post(
        "/customers/new",
        headers={"x-csrf-token": csrf},
        data={"email": "nope", "first_name": "Kept"},
    )
    assert invalid.status_code == 422 and "This is not a valid e-mail address." in invalid.text
    created = await client.post(
        "/customers/new",
        headers={"x-csrf-token": csrf},
        data={"email": "new@example.com", "first_name": "Nina", "country": "de"},
        follow_redirects=False,
    )
    assert created.status_code == 303
    detail = await client.get(created.headers["location"])
    assert "Nina" in detail.text and "Germany" in detail.text
    assert "The customer was added." in detail.text
    duplicate = await client.post(
        "/customers/new", headers={"x-csrf-token": csrf}, data={"email": "NEW@example.com"}
    )
    assert duplicate.status_code == 409
    assert "exists already" in duplicate.text


async def test_edit_customer(client: Any, merchant: MerchantOut, owner: UserOut) -> None:
    customer = await _customer(merchant, email="edit@example.com", first_name="Old")
    csrf = await login(client, owner)
    form = await client.get(f"/customers/{customer.id}/edit")
    assert 'value="Old"' in form.text
    saved = await client.post(
        f"/customers/{customer.id}/edit",
        headers={"x-csrf-token": csrf},
        data={
            "email": "edit@example.com",
            "first_name": "New",
            "customer_type": "loyal",
            "subscribed": "on",
            "custom_fields": "shoe size: 42",
            "birth_date": "1990-05-31",
        },
        follow_redirects=False,
    )
    assert saved.status_code == 303, saved.text
    changed = await customer_service.get_customer(merchant.id, customer.id)
    assert changed.first_name == "New" and changed.customer_type == "loyal"
    assert changed.custom_fields == {"shoe size": "42"}
    bad_date = await client.post(
        f"/customers/{customer.id}/edit",
        headers={"x-csrf-token": csrf},
        data={"email": "edit@example.com", "birth_date": "31.05.1990"},
    )
    assert bad_date.status_code == 422 and "Enter a date such as 1990-05-31." in bad_date.text


async def test_customer_page_insights_activity_purchase_and_erase(
    client: Any, merchant: MerchantOut, owner: UserOut
) -> None:
    customer = await _customer(merchant, email="page@example.com", first_name="Paula")
    await purchases.add_purchase(merchant.id, customer.id, PurchaseCreate(amount=Decimal("10")))
    csrf = await login(client, owner)
    added = await client.post(
        f"/customers/{customer.id}/purchases",
        headers={"x-csrf-token": csrf},
        data={"kind": "purchase", "amount": "25,50", "reference": "R-77"},
        follow_redirects=False,
    )
    assert added.status_code == 303
    page = await client.get(f"/customers/{customer.id}")
    assert "€35.50" in page.text and "R-77" in page.text
    by_amount = await client.get(
        f"/customers/{customer.id}/activity?sort=amount&order=asc", headers={"HX-Request": "1"}
    )
    assert by_amount.text.index("€10.00") < by_amount.text.index("€25.50")
    bad = await client.post(
        f"/customers/{customer.id}/purchases",
        headers={"x-csrf-token": csrf},
        data={"amount": "lots"},
    )
    assert bad.status_code == 422 and "Enter an amount such as 19.90." in bad.text
    german = await client.get(f"/customers/{customer.id}?lang=de")
    assert "35,50" in german.text and "Kundenwert" in german.text

    confirm = await client.get(f"/customers/{customer.id}/erase")
    assert "cannot be undone" in confirm.text
    unconfirmed = await client.post(
        f"/customers/{customer.id}/erase", headers={"x-csrf-token": csrf}
    )
    assert unconfirmed.status_code == 422
    erased = await client.post(
        f"/customers/{customer.id}/erase",
        headers={"x-csrf-token": csrf},
        data={"confirm": "erase"},
        follow_redirects=False,
    )
    assert erased.status_code == 303
    gone = await client.get(f"/customers/{customer.id}")
    assert gone.status_code == 404 and "Not found" in gone.text


async def test_another_merchants_customer_is_a_404_page(client: Any, owner: UserOut) -> None:
    other = await make_merchant(name="Elsewhere")
    theirs = await _customer(other, email="theirs@example.com")
    await login(client, owner)
    for path in (f"/customers/{theirs.id}", f"/customers/{theirs.id}/edit"):
        response = await client.get(path)
        assert response.status_code == 404 and "theirs@example.com" not in response.text


async def test_forms_without_csrf_are_refused(
    client: Any, merchant: MerchantOut, owner: UserOut
) -> None:
    await login(client, owner)
    response = await client.post(
        "/customers/new", data={"email": "csrf@example.com"}, headers={"x-csrf-token": "forged"}
    )
    assert response.status_code == 403
    assert "did not come from this site" in response.text


async def test_settings_brand_form_owner_and_staff(
    client: Any, merchant: MerchantOut, owner: UserOut
) -> None:
    csrf = await login(client, owner)
    page = await client.get("/settings")
    assert page.status_code == 200 and 'name="privacy_policy_url"' in page.text
    values = {"name": "Renamed Shop", "time_zone": "Europe/Vienna"}
    values.update(currency="eur", country="at", brand_color="#aa3300", default_locale="de")
    saved = await client.post(
        "/settings", data=values, headers={"x-csrf-token": csrf}, follow_redirects=False
    )
    assert saved.status_code == 303
    stored = await accounts.get_merchant(merchant.id)
    assert (stored.name, stored.country, stored.time_zone) == (
        "Renamed Shop",
        "AT",
        "Europe/Vienna",
    )
    bad = await client.post(
        "/settings",
        data={**values, "time_zone": "Mars/Base", "logo_url": "ftp://x", "name": ""},
        headers={"x-csrf-token": csrf},
    )
    assert bad.status_code == 422
    assert "This field is required." in bad.text and "https://" in bad.text

    staff = await accounts.create_user(
        merchant.id, f"staff-{merchant.slug}@example.com", "correct horse battery", role="staff"
    )
    client.cookies.clear()
    staff_csrf = await login(client, staff)
    read_only = await client.get("/settings")
    assert "<fieldset disabled>" in read_only.text
    refused = await client.post("/settings", data=values, headers={"x-csrf-token": staff_csrf})
    assert refused.status_code == 403
    assert (await client.get("/settings/tokens")).status_code == 403


async def test_api_tokens_page_shows_token_once_and_revokes(
    client: Any, merchant: MerchantOut, owner: UserOut
) -> None:
    csrf = await login(client, owner)
    created = await client.post(
        "/settings/tokens", headers={"x-csrf-token": csrf}, data={"name": "Till"}
    )
    token = re.search(r'data-testid="new-token">(lm_[^<]+)<', created.text)
    assert token and created.headers["cache-control"] == "no-store"
    listing = await client.get("/settings/tokens")
    assert token.group(1) not in listing.text and "Till" in listing.text
    api = await client.get("/api/merchant", headers={"authorization": f"Bearer {token.group(1)}"})
    assert api.status_code == 200
    (listed,) = [t for t in await accounts.list_api_tokens(merchant.id) if t.name == "Till"]
    revoked = await client.post(
        f"/settings/tokens/{listed.id}/revoke",
        headers={"x-csrf-token": csrf},
        follow_redirects=False,
    )
    assert revoked.status_code == 303
    api = await client.get("/api/merchant", headers={"authorization": f"Bearer {token.group(1)}"})
    assert api.status_code == 401


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def demo_mode(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("LOYALMAIL_DEMO", "1")
    reset_settings_cache()
    yield get_settings()
    monkeypatch.delenv("LOYALMAIL_DEMO")
    reset_settings_cache()


async def test_outbox_shows_caught_mail_sandboxed(
    client: Any, merchant: MerchantOut, owner: UserOut, demo_mode: Any
) -> None:
    from loyalmail.catcher import start_catcher

    port = _free_port()
    catcher = start_catcher(demo_mode.outbox_dir, port=port)
    try:
        message = EmailMessage()
        message["From"] = "news@shop.example"
        message["To"] = "reader@example.com"
        message["Subject"] = "Hello <b>reader</b>"
        message["Feedback-ID"] = feedback_id("optin", merchant.id)
        message.set_content("Plain words for the reader.")
        message.add_alternative(
            '<p onclick="x()">Rich words</p><script>alert("pwned")</script>', subtype="html"
        )
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            smtp.send_message(message)
    finally:
        catcher.stop()
    await login(client, owner)
    listing = await client.get("/outbox")
    assert listing.status_code == 200 and "reader@example.com" in listing.text
    assert "Hello &lt;b&gt;reader&lt;/b&gt;" in listing.text
    mail_id = re.search(r'href="/outbox/([0-9a-f-]+)"', listing.text)
    assert mail_id
    detail = await client.get(f"/outbox/{mail_id.group(1)}")
    assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in detail.text
    assert "srcdoc=" in detail.text and "allow-scripts" not in detail.text
    assert '<script>alert("pwned")</script>' not in detail.text
    assert "Plain words for the reader." in detail.text
    assert 'data-check="dkim-unsigned"' in detail.text
    assert 'data-check="one-click-no"' in detail.text
    assert (await client.get("/outbox/..%2Fsecret_key")).status_code == 404


async def test_outbox_verifies_the_dkim_signature_and_the_one_click_headers(
    client: Any, merchant: MerchantOut, owner: UserOut, demo_mode: Any, tmp_path: Path
) -> None:
    from loyalmail.catcher import start_catcher
    from loyalmail.demo import demo_dkim_key
    from tests.loyalmail.test_mail_checks import LISTS, message

    key = DkimKey("shop.example", "demo", demo_dkim_key(tmp_path).read_bytes())
    settings = {
        "LOYALMAIL_FALLBACK_FROM": "news@shop.example",
        "LOYALMAIL_DKIM_DOMAIN": key.domain,
        "LOYALMAIL_DKIM_SELECTOR": key.selector,
        "LOYALMAIL_DKIM_PRIVATE_KEY_FILE": str(tmp_path / "dkim-demo.pem"),
    }
    port = _free_port()
    catcher = start_catcher(demo_mode.outbox_dir, port=port)
    try:
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            lists = dataclasses.replace(LISTS, feedback_id=feedback_id("1", merchant.id))
            smtp.sendmail("news@shop.example", ["anna@example.com"], message(key, lists))
    finally:
        catcher.stop()
    await login(client, owner)
    with settings_env(settings):
        listing = await client.get("/outbox")
        ids = re.findall(r'href="/outbox/([0-9a-f-]+)"', listing.text)
        pages = [(await client.get(f"/outbox/{mail_id}")).text for mail_id in ids]
    detail = next(page for page in pages if "anna@example.com" in page)
    assert 'data-check="dkim-verified"' in detail and "d=shop.example s=demo" in detail
    assert 'data-check="one-click-yes"' in detail


def _mail(subject: str, *feedback_ids: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "news@shop.example"
    message["To"] = "reader@example.com"
    message["Subject"] = subject
    for value in feedback_ids:
        message["Feedback-ID"] = value
    message.set_content("Words.")
    return message


async def test_outbox_shows_each_merchant_only_its_own_mail(
    client: Any, merchant: MerchantOut, owner: UserOut, demo_mode: Any
) -> None:
    """Issue 21, finding 8: with the demo flag, the Outbox listed every merchant's mail to
    every merchant. A message belongs to the merchant of the Feedback-ID our sender set."""
    from loyalmail.catcher import start_catcher

    other = await make_merchant()
    other_owner = await make_owner(other)
    # This run's own tag: the outbox folder may hold mail of other tests and of this test
    # on another engine, filed under the same merchant ids (a CI run picked up such an "Ours").
    tag = f" [{secrets.token_hex(4)}]"
    port = _free_port()
    catcher = start_catcher(demo_mode.outbox_dir, port=port)
    try:
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            smtp.send_message(_mail("Ours" + tag, feedback_id("optin", merchant.id)))
            smtp.send_message(_mail("Theirs" + tag, feedback_id("12", other.id)))
            smtp.send_message(_mail("Nobody's: no Feedback-ID" + tag))
            smtp.send_message(
                _mail(
                    "Nobody's: two Feedback-IDs" + tag,
                    feedback_id("optin", other.id),
                    feedback_id("optin", merchant.id),
                )
            )
            smtp.send_message(
                _mail(
                    "Nobody's: another installation" + tag, f"optin:{merchant.id}:elsewhere.example"
                )
            )
    finally:
        catcher.stop()
    caught = {
        str(m["Subject"]).removesuffix(tag): mail_id
        for mail_id, m in read_outbox(demo_mode.outbox_dir)
        if str(m["Subject"]).endswith(tag)
    }
    assert len(caught) == 5

    async def seen_by(user: UserOut) -> tuple[str, dict[str, int]]:
        client.cookies.clear()
        await login(client, user)
        listing = (await client.get("/outbox")).text
        details = {
            subject: (await client.get(f"/outbox/{mail_id}")).status_code
            for subject, mail_id in caught.items()
        }
        return listing, details

    listing, details = await seen_by(owner)
    assert f"Ours{tag}" in listing and f"Theirs{tag}" not in listing
    assert "Nobody" not in listing
    assert details["Ours"] == 200
    assert {s for s, status in details.items() if status == 404} == set(caught) - {"Ours"}
    listing, details = await seen_by(other_owner)
    assert f"Theirs{tag}" in listing and f"Ours{tag}" not in listing
    assert "Nobody" not in listing
    assert {s for s, status in details.items() if status == 200} == {"Theirs"}


async def test_outbox_is_404_outside_demo_mode(client: Any, owner: UserOut) -> None:
    await login(client, owner)
    assert (await client.get("/outbox")).status_code == 404


async def test_every_page_text_has_a_german_translation() -> None:
    """Every _() text of the pages and of the messages they show has a German entry."""
    from babel.messages.extract import extract_from_dir
    from babel.messages.pofile import read_po

    from loyalmail.i18n import LOCALE_DIR

    with (LOCALE_DIR / "de" / "LC_MESSAGES" / "messages.po").open("rb") as po_file:
        catalog = read_po(po_file, locale="de")
    missing = []
    method_map = [("**/pages/**.html", "jinja2"), ("**.py", "python")]
    for root in (
        "loyalmail",
        "accounts",
        "customers",
        "segments",
        "quota",
        "campaigns",
        "tracking",
    ):
        for _file, _line, message, _comments, _context in extract_from_dir(
            root,
            method_map=method_map,
            options_map={"**/pages/**.html": {"extensions": "jinja2.ext.i18n"}},
        ):
            msgid = message[0] if isinstance(message, tuple) else message
            entry = catalog.get(msgid)
            if msgid and (entry is None or not entry.string or not all(entry.string)):
                missing.append(msgid)
    assert not missing, f"{len(missing)} page texts without German: {missing[:10]}"
