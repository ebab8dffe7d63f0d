"""Recipient-facing details of issue 20, item 7, through the whole app on both engines:
personal pages are never cached or indexed, HEAD on a recipient page answers like its GET
and changes nothing, and a broken or forged link answers the recipient pages' 404 page in
the recipient's language (else the browser's, else English). Each failed before: no
noindex/nofollow and a shared-cacheable web version, HEAD answered 405, the 404s were plain
text (the web version's and the click's) or ignored whom a signed link names."""

from __future__ import annotations

import html as html_lib
from typing import Any
from urllib.parse import urlparse

from accounts.schemas import MerchantOut
from customers.schemas import CustomerCreate
from customers.services import consent, customers
from customers.tables import ConsentEvent, Customer
from tests.campaigns.test_bounces import Sent, sent_messages
from tests.tracking.test_unsubscribe import customer_of
from tracking import tokens
from tracking.tables import TrackingEvent

FRENCH = {"accept-language": "fr-CH,fr;q=0.9,en;q=0.5"}
NOT_VALID = {
    "en": "This link is not valid",
    "de": "Dieser Link ist ungültig",
    "fr": "Ce lien n’est pas valide",
    "nb": "Denne lenken er ikke gyldig",
    "fi": "Linkki ei ole voimassa",
    "sr": "Ovaj link nije važeći",
}


def token(sent: Sent, purpose: tokens.Purpose, **changes: int) -> str:
    values = {
        "merchant_id": sent.merchant.id,
        "campaign_id": sent.campaign_id,
        "recipient_id": sent.recipient_id,
    }
    values.update(changes)
    return tokens.make(purpose, tokens.TokenData(**values))


def recipient_urls(sent: Sent) -> dict[str, str]:
    unsubscribe = token(sent, "unsubscribe")
    return {
        "view": f"/r/view/{token(sent, 'view')}",
        "unsubscribe": f"/r/unsubscribe/{unsubscribe}",
        "preferences": f"/r/preferences/{unsubscribe}",
    }


async def optin_path(merchant: MerchantOut, locale: str = "fi") -> tuple[int, str]:
    c = await customers.create_customer(
        merchant.id,
        CustomerCreate(email=f"optin.{locale}@example.com", locale=locale, send_optin=False),
    )
    await Customer.update({Customer.email_status: "pending"}).where(Customer.id == c.id)
    return c.id, urlparse(consent.optin_url(merchant.id, c.id, f"optin.{locale}@example.com")).path


def assert_private(response: Any) -> None:
    assert response.headers["cache-control"] == "private, no-store", response.headers
    assert response.headers["x-robots-tag"] == "noindex, nofollow", response.headers
    assert response.headers["referrer-policy"] == "no-referrer"


def robots_meta(text: str) -> bool:
    return '<meta name="robots" content="noindex, nofollow">' in text


async def test_personal_pages_are_never_cached_or_indexed(
    client: Any, merchant: MerchantOut
) -> None:
    sent = (await sent_messages(merchant, 1))[0]
    _id, optin = await optin_path(merchant)
    for name, path in {**recipient_urls(sent), "optin": optin}.items():
        page = await client.get(path)
        assert page.status_code == 200, (name, page.text[:300])
        assert_private(page)
        assert robots_meta(page.text), name


async def test_head_answers_like_get_and_changes_nothing(
    client: Any, merchant: MerchantOut
) -> None:
    sent = (await sent_messages(merchant, 1))[0]
    customer_id, optin = await optin_path(merchant)
    paths = {**recipient_urls(sent), "optin": optin}
    for name, path in paths.items():
        got = await client.get(path)
        head = await client.head(path)
        assert head.status_code == got.status_code == 200, (name, head.status_code)
        assert head.content == b"", name
        for header in ("content-type", "cache-control", "x-robots-tag", "content-security-policy"):
            assert head.headers.get(header) == got.headers.get(header), (name, header)
        assert head.headers["content-length"] == str(len(got.content)), name
    # Nobody was unsubscribed, confirmed or counted.
    row = await customer_of(sent)
    assert row["subscribed"] is True
    assert not await ConsentEvent.exists().where(ConsentEvent.customer == row["id"])
    assert not await TrackingEvent.exists().where(TrackingEvent.campaign == sent.campaign_id)
    pending = await Customer.select().where(Customer.id == customer_id).first()
    assert pending is not None and pending["email_status"] == "pending"
    # A broken link answers HEAD with its 404 too.
    broken = await client.head("/r/unsubscribe/forged.token")
    assert broken.status_code == 404 and broken.content == b""


async def test_a_forged_link_answers_the_recipient_page_in_the_browsers_language(
    client: Any, merchant: MerchantOut
) -> None:
    sent = (await sent_messages(merchant, 1))[0]
    _id, optin = await optin_path(merchant)
    good = {**recipient_urls(sent), "optin": optin}
    forged = {name: path[:-4] + "AAAA" for name, path in good.items()}
    forged["click"] = f"/r/c/{token(sent, 'click')[:-4]}AAAA/0"
    forged["made-up"] = "/r/c/nonsense/1"
    for name, path in forged.items():
        for headers, locale in ((FRENCH, "fr"), ({}, "en"), ({"accept-language": "it"}, "en")):
            page = await client.get(path, headers=headers)
            assert page.status_code == 404, (name, page.status_code)
            assert page.headers["content-type"].startswith("text/html"), name
            text = html_lib.unescape(page.text)
            assert NOT_VALID[locale] in text, (name, locale, text[:300])
            assert f'<html lang="{locale}">' in page.text, name
            assert "<main>" in page.text and robots_meta(page.text)
            assert_private(page)
            assert sent.merchant.name not in text  # a forged link names no shop


async def test_a_signed_link_that_leads_nowhere_speaks_the_recipients_language(
    client: Any, merchant: MerchantOut
) -> None:
    sent = (await sent_messages(merchant, 1))[0]  # the customers speak German
    # A link number the campaign does not have: the token names the recipient.
    click = await client.get(f"/r/c/{token(sent, 'click')}/999", headers=FRENCH)
    assert click.status_code == 404
    assert NOT_VALID["de"] in click.text and '<html lang="de">' in click.text
    assert merchant.name in html_lib.unescape(click.text)  # the shop's brand
    assert not await TrackingEvent.exists().where(TrackingEvent.campaign == sent.campaign_id)
    # A head request for it as well.
    assert (await client.head(f"/r/c/{token(sent, 'click')}/999")).status_code == 404

    # A recipient row that is gone: the shop is known, so its brand, in the browser's language.
    gone = token(sent, "view", recipient_id=sent.recipient_id + 1000)
    view = await client.get(f"/r/view/{gone}", headers=FRENCH)
    assert view.status_code == 404 and NOT_VALID["fr"] in view.text
    assert merchant.name in html_lib.unescape(view.text)
    unsubscribe = token(sent, "unsubscribe", campaign_id=sent.campaign_id + 1000)
    for path in (f"/r/unsubscribe/{unsubscribe}", f"/r/preferences/{unsubscribe}"):
        page = await client.get(path)  # no Accept-Language: the shop's language (en)
        assert page.status_code == 404 and NOT_VALID["en"] in page.text, path

    # An opt-in link whose address changed since: the customer's language (Finnish).
    customer_id, optin = await optin_path(merchant, "fi")
    await Customer.update({Customer.email_normalized: "changed@example.com"}).where(
        Customer.id == customer_id
    )
    stale = await client.get(optin, headers=FRENCH)
    assert stale.status_code == 404
    assert NOT_VALID["fi"] in stale.text and '<html lang="fi">' in stale.text
