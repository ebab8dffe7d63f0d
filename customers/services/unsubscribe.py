"""Unsubscribing with the link of a campaign message (RFC 8058 one-click) and its undo.

The campaigns app resolves the link's token to (merchant, customer); this module changes the
customer and writes the consent log. Both directions are conditional UPDATEs, so of two
simultaneous clicks only one changes the row and only that one logs: a repeated click is
harmless and logs nothing.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

import msgspec

from accounts import services as accounts
from customers.schemas import ConsentAction, ConsentSource
from customers.services.customers import _insert_consent, customer_row, now, transaction
from customers.tables import Customer
from loyalmail.i18n import recipient_locale

SOURCE: ConsentSource = "unsubscribe"
#: A mail to the recipient's unsubscribe address (List-Unsubscribe's mailto:, loyalmail.inbound).
MAIL_SOURCE: ConsentSource = "mail"
#: How long after unsubscribing the undo works: it mends a mistaken click. Later the link
#: (in a forwarded or old message, in anybody's hands) must not subscribe anyone again;
#: that takes a fresh opt-in.
UNDO_WINDOW = timedelta(hours=1)

#: What an undo did: subscribed again; nothing, because they still are; or nothing, because
#: the address is no longer confirmed or is suppressed, which only a fresh opt-in can mend.
Resubscribed = Literal["resubscribed", "subscribed_already", "refused"]


class UnsubscribePage(msgspec.Struct, kw_only=True):
    """What the public unsubscribe page shows: the merchant's brand in the recipient's
    language. The field names match :class:`~customers.services.consent.OptinPage`, whose
    page layout this page shares."""

    locale: str
    subscribed: bool
    shop_name: str
    logo_url: str
    brand_color: str
    privacy_policy_url: str
    website_url: str
    #: The shop's, for the dates a page shows.
    time_zone: str


async def describe_unsubscribe(merchant_id: int, customer_id: int | None) -> UnsubscribePage:
    """Reads only. ``customer_id`` None is a test send's sample person: the shop's language,
    and always "subscribed" so the page can be tried out."""
    merchant = await accounts.get_merchant(merchant_id)
    wanted, subscribed = "", True
    if customer_id is not None:
        row = await customer_row(merchant_id, customer_id)
        wanted, subscribed = str(row["locale"] or ""), bool(row["subscribed"])
    return UnsubscribePage(
        locale=recipient_locale(wanted, merchant.default_locale),
        subscribed=subscribed,
        shop_name=merchant.name,
        logo_url=merchant.logo_url,
        brand_color=merchant.brand_color,
        privacy_policy_url=merchant.privacy_policy_url,
        website_url=merchant.website_url,
        time_zone=merchant.time_zone,
    )


async def unsubscribe(
    merchant_id: int, customer_id: int, *, ip: str = "", user_agent: str = ""
) -> bool:
    """Unsubscribe at once (no confirmation: RFC 8058 wants one click). Returns whether
    anything changed; "withdrawn" is logged only then."""
    async with transaction():
        row = await customer_row(merchant_id, customer_id)
        return await _switch(row, subscribed=False, ip=ip, user_agent=user_agent)


async def unsubscribe_by_mail(merchant_id: int, customer_id: int, *, user_agent: str = "") -> bool:
    """:func:`unsubscribe`, for a mail to the recipient's unsubscribe address: logged with the
    source "mail" (and the mail's User-Agent)."""
    async with transaction():
        row = await customer_row(merchant_id, customer_id)
        return await _switch(
            row, subscribed=False, ip="", user_agent=user_agent, source=MAIL_SOURCE
        )


async def resubscribe(
    merchant_id: int, customer_id: int, *, ip: str = "", user_agent: str = ""
) -> Resubscribed:
    """The undo of :func:`unsubscribe`, within :data:`UNDO_WINDOW` of it. Only a confirmed
    (verified), unsuppressed address is subscribed again: the earlier opt-in still stands for
    it. Anything else needs a fresh opt-in, which this link cannot give."""
    async with transaction():
        row = await customer_row(merchant_id, customer_id)
        if row["subscribed"]:
            return "subscribed_already"
        changed = await _switch(row, subscribed=True, ip=ip, user_agent=user_agent)
    return "resubscribed" if changed else "refused"


async def _switch(
    row: dict[str, Any],
    *,
    subscribed: bool,
    ip: str,
    user_agent: str,
    source: ConsentSource = SOURCE,
) -> bool:
    """Set ``subscribed`` with one conditional UPDATE (only from the other state, and back
    only within the undo window for a confirmed, unsuppressed address) and log it when the
    row changed: of two clicks at once, one changes it and logs."""
    merchant_id, customer_id, moment = int(row["merchant"]), int(row["id"]), now()
    rule = (
        (Customer.id == customer_id)
        & (Customer.merchant == merchant_id)
        & (Customer.subscribed == (not subscribed))
    )
    if subscribed:
        rule = (
            rule
            & (Customer.email_status == "verified")
            & (Customer.suppressed == False)  # noqa: E712
            & (Customer.unsubscribed_at >= moment - UNDO_WINDOW)
        )
    changed = (
        await Customer.update(
            {
                Customer.subscribed: subscribed,
                Customer.unsubscribed_at: None if subscribed else moment,
                Customer.updated_at: moment,
            }
        )
        .where(rule)
        .returning(Customer.id)
    )
    if changed:
        action: ConsentAction = "resubscribed" if subscribed else "withdrawn"
        await _insert_consent(
            merchant_id, customer_id, action, source, row["email"], ip, user_agent, ""
        )
    return bool(changed)


__all__ = [
    "Resubscribed",
    "UnsubscribePage",
    "describe_unsubscribe",
    "resubscribe",
    "unsubscribe",
    "unsubscribe_by_mail",
]
