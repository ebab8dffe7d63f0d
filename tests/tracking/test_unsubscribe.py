"""One-click unsubscribe (RFC 8058) from a campaign message's link: POST acts, GET only shows
the page, the undo subscribes again; on both engines, without any credentials."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from babel.messages.pofile import read_po

from accounts.schemas import MerchantOut
from customers.services import customers
from customers.services.suppression import suppress
from customers.services.unsubscribe import UNDO_WINDOW
from customers.tables import ConsentEvent, Customer
from loyalmail.i18n import LOCALE_DIR, RECIPIENT_LOCALES
from tests.campaigns.test_bounces import Sent, sent_messages
from tests.conftest import make_merchant
from tracking import tokens
from tracking.tables import TrackingEvent

ONE_CLICK = {"List-Unsubscribe": "One-Click"}
GERMAN = {"accept-language": "de-DE,de;q=0.9"}


def link(sent: Sent, purpose: tokens.Purpose = "unsubscribe", **changes: int) -> str:
    values = {
        "merchant_id": sent.merchant.id,
        "campaign_id": sent.campaign_id,
        "recipient_id": sent.recipient_id,
    }
    values.update(changes)
    return f"/r/unsubscribe/{tokens.make(purpose, tokens.TokenData(**values))}"


async def customer_of(sent: Sent) -> dict[str, Any]:
    row = (
        await Customer.select()
        .where(
            (Customer.merchant == sent.merchant.id) & (Customer.email_normalized == sent.address)
        )
        .first()
    )
    assert row is not None
    return row


async def consent_log(sent: Sent) -> list[dict[str, Any]]:
    customer = await customer_of(sent)
    return list(
        await ConsentEvent.select()
        .where(ConsentEvent.customer == customer["id"])
        .order_by(ConsentEvent.id)
    )


async def one(merchant: MerchantOut) -> Sent:
    return (await sent_messages(merchant, 1))[0]


async def test_one_click_post_unsubscribes_once_and_answers_200(
    client: Any, merchant: MerchantOut
) -> None:
    first, second = await sent_messages(merchant, 2)
    assert not client.cookies  # no session, no CSRF token: the signed link is enough
    headers = {"user-agent": "MailClient/1.0"}
    done = await client.post(link(first), data=ONE_CLICK, headers=headers, follow_redirects=False)
    assert done.status_code == 200, done.text
    assert "Sie sind abgemeldet" in done.text and "/undo" in done.text
    row = await customer_of(first)
    assert row["subscribed"] is False and row["unsubscribed_at"] is not None
    log = await consent_log(first)
    assert [(e["action"], e["source"]) for e in log] == [("withdrawn", "unsubscribe")]
    assert log[0]["user_agent"] == "MailClient/1.0" and log[0]["ip"]

    again = await client.post(link(first), data=ONE_CLICK, follow_redirects=False)
    assert again.status_code == 200
    assert len(await consent_log(first)) == 1  # nothing more to do, nothing more logged
    # The campaign report's unsubscribe: one event, for this recipient.
    recorded = await TrackingEvent.select(TrackingEvent.kind, TrackingEvent.recipient).where(
        TrackingEvent.campaign == first.campaign_id
    )
    assert recorded == [{"kind": "unsubscribe", "recipient": first.recipient_id}]

    # RFC 8058 allows multipart/form-data too.
    multipart = await client.post(link(second), files={"List-Unsubscribe": (None, "One-Click")})
    assert multipart.status_code == 200
    assert (await customer_of(second))["subscribed"] is False


async def test_a_post_without_the_one_click_field_is_400_and_changes_nothing(
    client: Any, merchant: MerchantOut
) -> None:
    sent = await one(merchant)
    for body in (
        {},
        {"data": {"List-Unsubscribe": "one-click"}},
        {"data": {"unsubscribe": "One-Click"}},
        {"json": ONE_CLICK},
    ):
        response = await client.post(link(sent), **body)
        assert response.status_code == 400, body
        assert "List-Unsubscribe=One-Click" in response.text
    assert (await customer_of(sent))["subscribed"] is True
    assert await consent_log(sent) == []


async def test_get_shows_the_button_in_the_recipients_language_and_changes_nothing(
    client: Any, merchant: MerchantOut
) -> None:
    sent = await one(merchant)  # a German customer of an English-speaking shop
    page = await client.get(link(sent))
    assert page.status_code == 200
    assert 'lang="de"' in page.text and merchant.name in page.text
    assert "Vom Newsletter abmelden" in page.text and ">Abmelden</button>" in page.text
    assert f'action="{link(sent)}"' in page.text and 'method="post"' in page.text
    assert 'name="List-Unsubscribe" value="One-Click"' in page.text
    assert '<meta name="robots" content="noindex, nofollow">' in page.text
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp and "form-action 'self'" in csp
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "private, no-store"
    assert (await customer_of(sent))["subscribed"] is True
    assert await consent_log(sent) == []

    customer = await customer_of(sent)
    await Customer.update({Customer.locale: "fr"}).where(Customer.id == customer["id"])
    assert "Se désabonner de la newsletter" in (await client.get(link(sent))).text
    await Customer.update({Customer.locale: ""}).where(Customer.id == customer["id"])
    assert "Unsubscribe from the newsletter" in (await client.get(link(sent))).text  # the shop's


async def test_bad_or_foreign_tokens_are_404_and_change_nothing(
    client: Any, merchant: MerchantOut
) -> None:
    sent, erased = await sent_messages(merchant, 2)
    other = await one(await make_merchant())
    good = link(sent)
    await customers.erase_customer(merchant.id, (await customer_of(erased))["id"])
    paths = [
        good[:-3] + ("abc" if not good.endswith("abc") else "xyz"),  # tampered
        good[:-10],  # truncated
        link(sent, "click"),  # made for another purpose
        link(sent, "view"),
        link(sent, recipient_id=other.recipient_id),  # another merchant's recipient, A's token
        link(sent, merchant_id=other.merchant.id),  # A's recipient under another merchant
        link(sent, campaign_id=other.campaign_id),
        link(sent, recipient_id=erased.recipient_id),  # the customer was erased since
        "/r/unsubscribe/nonsense",
    ]
    for path in paths:
        for response in (
            await client.get(path, headers=GERMAN),
            await client.post(path, data=ONE_CLICK, headers=GERMAN),
            await client.post(f"{path}/undo", headers=GERMAN),
        ):
            assert response.status_code == 404, path
            assert "Dieser Link ist ungültig" in response.text
            assert "default-src 'none'" in response.headers["content-security-policy"]
    for still in (sent, other):
        assert (await customer_of(still))["subscribed"] is True
        assert await consent_log(still) == []


async def test_undo_subscribes_again_only_a_confirmed_unsuppressed_address(
    client: Any, merchant: MerchantOut
) -> None:
    back, bounced = await sent_messages(merchant, 2)
    await client.post(link(back), data=ONE_CLICK)
    # The page of the link shows an unsubscribed recipient the undo, not the button again.
    shown = (await client.get(link(back))).text
    assert "Sie sind abgemeldet" in shown and f'action="{link(back)}/undo"' in shown
    undone = await client.post(f"{link(back)}/undo", headers={"user-agent": "Firefox/130"})
    assert undone.status_code == 200 and "Sie sind wieder angemeldet" in undone.text
    row = await customer_of(back)
    assert row["subscribed"] is True and row["unsubscribed_at"] is None
    log = await consent_log(back)
    assert [(e["action"], e["source"]) for e in log] == [
        ("withdrawn", "unsubscribe"),
        ("resubscribed", "unsubscribe"),
    ]
    assert log[1]["user_agent"] == "Firefox/130"
    assert (await client.post(f"{link(back)}/undo")).status_code == 200
    assert len(await consent_log(back)) == 2  # subscribed already: nothing logged

    await client.post(link(bounced), data=ONE_CLICK)
    await suppress(merchant.id, bounced.address, "bounced")
    refused = await client.post(f"{link(bounced)}/undo")
    assert refused.status_code == 200 and "nicht wieder angemeldet werden" in refused.text
    assert (await customer_of(bounced))["subscribed"] is False
    assert [e["action"] for e in await consent_log(bounced)] == ["withdrawn"]


async def test_the_undo_mends_a_mistaken_click_not_an_old_unsubscribe(
    client: Any, merchant: MerchantOut
) -> None:
    sent = await one(merchant)
    await client.post(link(sent), data=ONE_CLICK)
    # Two hours later the link (a forwarded message, say) cannot subscribe them again.
    earlier = datetime.now(UTC) - UNDO_WINDOW - timedelta(hours=1)
    await Customer.update({Customer.unsubscribed_at: earlier}).where(
        (Customer.merchant == merchant.id) & (Customer.email_normalized == sent.address)
    )
    refused = await client.post(f"{link(sent)}/undo")
    assert refused.status_code == 200 and "nicht wieder angemeldet werden" in refused.text
    assert (await customer_of(sent))["subscribed"] is False
    assert [e["action"] for e in await consent_log(sent)] == ["withdrawn"]


async def test_a_test_sends_link_shows_the_page_and_changes_nothing(
    client: Any, merchant: MerchantOut
) -> None:
    sent = await one(merchant)
    sample = link(sent, recipient_id=0)  # a test send's links name recipient 0
    page = await client.get(sample)
    assert page.status_code == 200 and "Unsubscribe from the newsletter" in page.text
    assert (await client.post(sample, data=ONE_CLICK)).status_code == 200
    assert (await client.post(f"{sample}/undo")).status_code == 200
    assert (await customer_of(sent))["subscribed"] is True
    assert not await ConsentEvent.exists().where(ConsentEvent.merchant == merchant.id)


def test_every_unsubscribe_page_text_is_translated_into_every_recipient_language() -> None:
    pages = Path(__file__).resolve().parents[2] / "tracking" / "pages"
    wanted = {
        message
        for page in pages.glob("*.html")
        for message in re.findall(r'\bt\("([^"]+)"', page.read_text(encoding="utf-8"))
    }
    assert "Subscribe me again" in wanted
    for locale in RECIPIENT_LOCALES:
        with (LOCALE_DIR / locale / "LC_MESSAGES" / "email.po").open("rb") as po_file:
            catalog = read_po(po_file, locale=locale)
        missing = [m for m in wanted if not getattr(catalog.get(m), "string", "")]
        assert not missing, f"{locale}: {missing}"
