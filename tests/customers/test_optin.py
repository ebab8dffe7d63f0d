"""Double opt-in end to end: a real SMTP server (aiosmtpd), real jobs, the public pages."""

from __future__ import annotations

import re
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from accounts.schemas import MerchantOut
from customers.schemas import CustomerCreate, CustomerUpdate
from customers.services import consent, customers
from customers.services.suppression import is_suppressed
from customers.tables import ConsentEvent, Customer
from loyalmail.i18n import RECIPIENT_LOCALES
from loyalmail.settings import get_settings
from tests.conftest import Jobs, make_merchant
from tests.smtp import RefusingHandler, free_port, mail_to, smtp_settings_port


def link_in(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    match = re.search(r"https?://\S+/r/optin/\S+", body.get_content())
    assert match, body.get_content()
    return match.group(0)


def auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def test_optin_end_to_end_over_smtp(
    client: Any, merchant: MerchantOut, api_token: str, jobs: Jobs, smtp: Path
) -> None:
    address = f"claire.{merchant.slug}.{jobs.kind}@example.fr"
    created = await client.post(
        "/api/customers",
        json={"email": address, "first_name": "Claire", "locale": "fr"},
        headers={**auth(api_token), "user-agent": "integration/1.0"},
    )
    assert created.status_code == 201, created.text
    customer = created.json()
    assert customer["email_status"] == "pending"

    message = await mail_to(smtp, address)
    assert message["Subject"] == f"Veuillez confirmer votre adresse e-mail pour {merchant.name}"
    # No verified domain of its own: From the installation's address, answers to the shop.
    assert message["From"].addresses[0].addr_spec == get_settings().effective_fallback_from
    assert message["From"].addresses[0].display_name == merchant.sender_name
    assert message["Reply-To"].addresses[0].addr_spec == merchant.sender_email
    html = message.get_body(preferencelist=("html",))
    assert html is not None and "Confirmer mon adresse" in html.get_content()
    url = link_in(message)
    assert url.startswith(get_settings().base_url + "/r/optin/")
    path = urlparse(url).path

    # A GET (what a mail scanner does) shows the button and changes nothing.
    page = await client.get(path)
    assert page.status_code == 200
    assert "Confirmer mon adresse" in page.text and 'method="post"' in page.text
    assert merchant.name in page.text and 'lang="fr"' in page.text
    row = await Customer.select().where(Customer.id == customer["id"]).first()
    assert row is not None and row["email_status"] == "pending" and row["optin_sent_at"]

    done = await client.post(path, headers={"user-agent": "Firefox/130"})
    assert done.status_code == 200 and "Merci" in done.text
    again = await client.post(path, headers={"user-agent": "Firefox/130"})
    assert again.status_code == 200  # a second click is harmless

    confirmed = await client.get(f"/api/customers/{customer['id']}", headers=auth(api_token))
    assert confirmed.json()["email_status"] == "verified" and confirmed.json()["subscribed"]
    log = (
        await client.get(f"/api/customers/{customer['id']}/consent", headers=auth(api_token))
    ).json()
    assert [e["action"] for e in log] == ["requested", "confirmed"]
    assert log[0]["source"] == "api" and log[0]["actor"].startswith("token:")
    assert log[0]["user_agent"] == "integration/1.0"
    assert log[1]["source"] == "link" and log[1]["user_agent"] == "Firefox/130"
    assert log[1]["ip"] and log[1]["wording_version"] == customers.OPTIN_WORDING_VERSION

    # The job is idempotent: running it again for this request sends nothing.
    assert await consent.send_optin_message(customer["id"]) is False


async def test_resend_mails_again_and_confirmed_addresses_are_refused(
    client: Any, merchant: MerchantOut, api_token: str, jobs: Jobs, smtp: Path
) -> None:
    address = f"resend.{merchant.slug}.{jobs.kind}@example.com"
    created = await customers.create_customer(merchant.id, CustomerCreate(email=address))
    await mail_to(smtp, address)
    resent = await client.post(f"/api/customers/{created.id}/optin", headers=auth(api_token))
    assert resent.status_code == 200 and resent.json()["email_status"] == "pending"
    second = await mail_to(smtp, address, count=2)
    await client.post(urlparse(link_in(second)).path)
    refused = await client.post(f"/api/customers/{created.id}/optin", headers=auth(api_token))
    assert refused.status_code == 409 and "confirmed already" in refused.json()["detail"]


async def test_tampered_or_foreign_tokens_show_a_404_page_and_change_nothing(
    client: Any, merchant: MerchantOut, smtp: Path
) -> None:
    c = await customers.create_customer(
        merchant.id, CustomerCreate(email="tamper@example.com", locale="de")
    )
    good = urlparse(consent.optin_url(merchant.id, c.id, "tamper@example.com")).path
    forged = good[:-3] + ("abc" if not good.endswith("abc") else "xyz")
    other = await make_merchant()
    foreign = urlparse(consent.optin_url(other.id, c.id, "tamper@example.com")).path
    stale = urlparse(consent.optin_url(merchant.id, c.id, "previous@example.com")).path
    for path in (forged, foreign, stale, "/r/optin/nonsense"):
        for method in (client.get, client.post):
            response = await method(path, headers={"accept-language": "de-DE,de;q=0.9"})
            assert response.status_code == 404
            assert "Dieser Link ist ungültig" in response.text
    row = await Customer.select().where(Customer.id == c.id).first()
    assert row is not None and row["email_status"] == "pending"
    assert not await ConsentEvent.exists().where(
        (ConsentEvent.customer == c.id) & (ConsentEvent.action == "confirmed")
    )


async def test_resubscribing_waits_for_the_confirmation(
    client: Any, merchant: MerchantOut, smtp: Path
) -> None:
    c = await customers.create_customer(merchant.id, CustomerCreate(email="back@example.com"))
    await client.post(urlparse(consent.optin_url(merchant.id, c.id, "back@example.com")).path)
    await customers.update_customer(merchant.id, c.id, CustomerUpdate(subscribed=False))
    waiting = await customers.update_customer(merchant.id, c.id, CustomerUpdate(subscribed=True))
    assert not waiting.subscribed and waiting.email_status == "pending"
    await client.post(urlparse(consent.optin_url(merchant.id, c.id, "back@example.com")).path)
    back = await customers.get_customer(merchant.id, c.id)
    assert back.subscribed and back.email_status == "verified" and back.unsubscribed_at is None
    actions = [e.action for e in await consent.list_consent(merchant.id, c.id)]
    assert actions == ["requested", "confirmed", "withdrawn", "requested", "resubscribed"]


async def test_confirmation_lifts_the_suppression_of_an_erased_address(
    client: Any, merchant: MerchantOut, smtp: Path
) -> None:
    first = await customers.create_customer(merchant.id, CustomerCreate(email="gone@example.com"))
    await customers.erase_customer(merchant.id, first.id)
    assert await is_suppressed(merchant.id, "gone@example.com")
    fresh = await customers.create_customer(merchant.id, CustomerCreate(email="Gone@example.com"))
    assert fresh.email_status == "pending"
    assert await is_suppressed(merchant.id, "gone@example.com")  # until confirmed
    await client.post(urlparse(consent.optin_url(merchant.id, fresh.id, "gone@example.com")).path)
    assert not await is_suppressed(merchant.id, "gone@example.com")


LANGUAGE_CASES = [
    ("en", "de", "Please confirm your e-mail address"),
    ("de_AT", "en", "Bitte bestätigen Sie Ihre E-Mail-Adresse"),
    ("fr", "en", "Veuillez confirmer"),
    ("", "nb", "Bekreft e-postadressen din"),
    ("fi", "en", "Vahvista sähköpostiosoitteesi"),
    ("sr", "en", "Potvrdite svoju adresu"),
    ("it", "fi", "Vahvista sähköpostiosoitteesi"),  # unsupported → the shop's language
]


async def test_the_mail_speaks_the_customers_language(db: object) -> None:
    assert len(RECIPIENT_LOCALES) == 6
    for customer_locale, shop_locale, subject_start in LANGUAGE_CASES:
        shop = await make_merchant(default_locale=shop_locale, sender_email="", contact_email="")
        c = await customers.create_customer(
            shop.id,
            CustomerCreate(email="lang@example.com", locale=customer_locale, send_optin=False),
        )
        row = await Customer.select().where(Customer.id == c.id).first()
        assert row is not None
        message = consent.build_optin_email(row, shop)
        assert str(message["Subject"]).startswith(subject_start), customer_locale
        assert shop.name in str(message["Subject"])
        # Without a sender address of its own the shop sends from the installation's address.
        assert get_settings().mail_from in str(message["From"])
        assert "/r/optin/" in link_in(message)


async def test_an_address_that_does_not_exist_is_suppressed_not_retried(
    merchant: MerchantOut,
) -> None:
    from aiosmtpd.controller import Controller

    c = await customers.create_customer(
        merchant.id, CustomerCreate(email="nobody@example.com", send_optin=False)
    )
    # Pending as after a request, but with no job queued: this test sends by itself.
    await Customer.update({Customer.email_status: "pending"}).where(Customer.id == c.id)
    port = free_port()
    server = Controller(RefusingHandler(), hostname="127.0.0.1", port=port)
    server.start()
    try:
        with smtp_settings_port(port):
            assert await consent.send_optin_message(c.id) is False
    finally:
        server.stop()
    assert await is_suppressed(merchant.id, "nobody@example.com")
    row = await Customer.select().where(Customer.id == c.id).first()
    assert row is not None and row["optin_sent_at"] is None


# --- issue 20: the token reveals nothing, the footer, the line length ----------------------


def _payload(url: str) -> bytes:
    """The readable part of a confirmation link's token (itsdangerous: base64 JSON)."""
    import base64

    token = urlparse(url).path.rsplit("/", 1)[1]
    encoded = token.split(".")[0]
    return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))


async def test_the_confirmation_token_reveals_no_address(
    client: Any, merchant: MerchantOut, smtp: Path
) -> None:
    """Failed before: the token was [merchant, customer, "hidden.person@example.com"]."""
    c = await customers.create_customer(
        merchant.id, CustomerCreate(email="Hidden.Person@example.com", send_optin=False)
    )
    await Customer.update({Customer.email_status: "pending"}).where(Customer.id == c.id)
    url = consent.optin_url(merchant.id, c.id, "hidden.person@example.com")
    payload = _payload(url)
    assert b"@" not in payload and b"hidden" not in payload.lower(), payload
    assert b"example" not in payload
    path = urlparse(url).path
    assert (await client.get(path)).status_code == 200
    # The address changed since: the link no longer confirms anything.
    await customers.update_customer(merchant.id, c.id, CustomerUpdate(email="new@example.com"))
    assert (await client.post(path)).status_code == 404
    row = await Customer.select().where(Customer.id == c.id).first()
    assert row is not None and row["email_status"] == "pending"


async def test_links_of_the_old_format_work_until_they_expire(
    client: Any, merchant: MerchantOut, smtp: Path, monkeypatch: Any
) -> None:
    import time

    from loyalmail.security import signer

    c = await customers.create_customer(
        merchant.id, CustomerCreate(email="old@example.com", send_optin=False)
    )
    await Customer.update({Customer.email_status: "pending"}).where(Customer.id == c.id)
    claims = [merchant.id, c.id, "old@example.com"]
    sent_before = signer(consent.OPTIN_PURPOSE).dumps(claims)
    with monkeypatch.context() as patch:
        past = time.time() - consent.OPTIN_MAX_AGE_SECONDS - 60
        patch.setattr(time, "time", lambda: past)
        expired = signer(consent.OPTIN_PURPOSE).dumps(claims)
    stale = signer(consent.OPTIN_PURPOSE).dumps([merchant.id, c.id, "previous@example.com"])
    for token in (expired, stale):
        refused = await client.post(f"/r/optin/{token}")
        assert refused.status_code == 404
    assert (await client.get(f"/r/optin/{sent_before}")).status_code == 200
    done = await client.post(f"/r/optin/{sent_before}")
    assert done.status_code == 200
    row = await Customer.select().where(Customer.id == c.id).first()
    assert row is not None and row["email_status"] == "verified"

    # Today's tokens expire the same way.
    d = await customers.create_customer(
        merchant.id, CustomerCreate(email="later@example.com", send_optin=False)
    )
    with monkeypatch.context() as patch:
        past = time.time() - consent.OPTIN_MAX_AGE_SECONDS - 60
        patch.setattr(time, "time", lambda: past)
        late = consent.optin_url(merchant.id, d.id, "later@example.com")
    assert (await client.get(urlparse(late).path)).status_code == 404


FOOTER_LABELS = {
    "en": ("Publisher", "Privacy policy"),
    "de": ("Herausgeber", "Datenschutzerklärung"),
    "fr": None,
    "nb": None,
    "fi": None,
    "sr": None,
}


async def test_the_optin_mail_carries_the_legal_footer_in_every_language(db: object) -> None:
    """Failed before: the opt-in mail had no address, imprint or privacy link."""
    from loyalmail.i18n import email_gettext

    shop = await make_merchant(
        street="Oranienstraße 42",
        postal_code="10999",
        city="Berlin",
        country="DE",
        publisher="Nordlicht Kaffeerösterei GmbH",
        imprint="Amtsgericht Charlottenburg HRB 123456 B",
        privacy_policy_url="https://nordlicht.example/datenschutz",
    )
    for locale in RECIPIENT_LOCALES:
        c = await customers.create_customer(
            shop.id,
            CustomerCreate(email=f"footer.{locale}@example.com", locale=locale, send_optin=False),
        )
        row = await Customer.select().where(Customer.id == c.id).first()
        assert row is not None
        message = consent.build_optin_email(row, shop)
        publisher = email_gettext(locale, "Publisher")
        privacy = email_gettext(locale, "Privacy policy")
        if FOOTER_LABELS[locale]:
            assert (publisher, privacy) == FOOTER_LABELS[locale]
        text = message.get_body(preferencelist=("plain",))
        html = message.get_body(preferencelist=("html",))
        assert text is not None and html is not None
        plain, markup = text.get_content(), html.get_content()
        for wanted in (
            "Oranienstraße 42, 10999 Berlin",
            "Amtsgericht Charlottenburg HRB 123456 B",
            f"{publisher}: Nordlicht Kaffeerösterei GmbH",
            f"{privacy}: https://nordlicht.example/datenschutz",
        ):
            assert wanted in plain, (locale, wanted)
        assert 'href="https://nordlicht.example/datenschutz"' in markup, locale
        assert f">{privacy}</a>" in markup.replace("&#x27;", "'"), locale
        assert "Amtsgericht Charlottenburg HRB 123456 B" in markup


LONG_TEXTS = {
    "en": "Wonderful Long-Named Coffee Roasters of the Northern Lights and Fjords",
    "de": "Nordlicht Kaffeerösterei und Konditorei Müller-Lüdenscheidt Größenwahn",
    "fr": "Torréfacteurs Crème Brûlée Château Élysée Ça Déjà Été Là Garçon",
    "nb": "Fjordbakeriet Ærlig Øl og Åpen Kaffebrenneri på Tromsø Bryggeriet",
    "fi": "Pohjoisen Revontulien Kahvipaahtimo Ääkköset Öljy Hyvää Päivää",
    "sr": "Đurđevdanska Pržionica Kafe Čačak Šabac Žabalj Ćuprija Džamija",
}


async def test_every_line_of_the_optin_mail_over_smtp_fits_rfc_2045(
    merchant: MerchantOut, smtp: Path
) -> None:
    """Failed before: quoted-printable lines of 78 characters (the default policy's)."""
    from email import message_from_bytes
    from email.policy import default

    from tests.smtp import raw_mails

    shop = await make_merchant(
        name=" ".join(LONG_TEXTS.values())[:190],
        sender_name="Nordlicht Kaffeerösterei – Neuigkeiten",
        imprint=" · ".join(LONG_TEXTS.values()),
        publisher=LONG_TEXTS["de"],
    )
    addresses = []
    for locale, long_text in LONG_TEXTS.items():
        address = f"lines.{locale}.{shop.slug}@example.com"
        first, _space, last = long_text.partition(" ")
        c = await customers.create_customer(
            shop.id,
            CustomerCreate(
                email=address, locale=locale, first_name=first, last_name=last, send_optin=False
            ),
        )
        await Customer.update({Customer.email_status: "pending"}).where(Customer.id == c.id)
        assert await consent.send_optin_message(c.id)
        addresses.append(address)
    raws = [raw for raw in await _wait_raw(smtp, len(addresses), raw_mails)]
    mine = [raw for raw in raws if any(a.encode() in raw for a in addresses)]
    assert len(mine) == len(addresses)
    for raw in mine:
        head, _blank, body = raw.partition(b"\r\n\r\n")
        # RFC 5322: header lines at most 78 characters; RFC 2045: body lines at most 76.
        assert all(len(line) <= 78 for line in head.split(b"\r\n")), head
        too_long = [line for line in body.split(b"\r\n") if len(line) > 76]
        assert not too_long, too_long[:3]
        parsed = message_from_bytes(raw, policy=default)
        encodings = {part.get("Content-Transfer-Encoding") for part in parsed.walk()}
        assert encodings & {"quoted-printable", "base64"}, encodings


async def _wait_raw(outbox: Path, count: int, read: Any) -> list[bytes]:
    import asyncio

    async with asyncio.timeout(20):
        while True:
            found = await asyncio.to_thread(read, outbox)
            if len(found) >= count:
                return list(found)
            await asyncio.sleep(0.05)
