"""Who a recipient link is about: a signed token → the campaign's frozen recipient row → the
customer. The campaigns app owns ``campaign_recipient``, so the other apps (tracking's pages,
the customers' unsubscribe) learn the customer from here and never read that table."""

from __future__ import annotations

from datetime import datetime

import msgspec
from piccolo.columns.combination import Combinable

from campaigns.tables import Campaign, CampaignRecipient
from loyalmail import sql
from loyalmail.errors import NotFound, _
from tracking import tokens


class TokenRecipient(msgspec.Struct, frozen=True, kw_only=True):
    merchant_id: int
    campaign_id: int
    recipient_id: int
    #: None for recipient 0, a test send: its links name the sample person, nobody real.
    customer_id: int | None


def _not_valid() -> NotFound:
    return NotFound(_("This link is not valid."))


def _the_row(merchant_id: int, campaign_id: int, recipient_id: int) -> Combinable:
    """The recipient row, only when it is this merchant's and campaign's."""
    return (
        (CampaignRecipient.id == recipient_id)
        & (CampaignRecipient.campaign == campaign_id)
        & (CampaignRecipient.merchant == merchant_id)
    )


async def frozen_customer(merchant_id: int, campaign_id: int, recipient_id: int) -> int:
    """The customer of one of the campaign's recipient rows. NotFound when the row is not this
    merchant's and campaign's, or its customer was erased since (the row then keeps no one)."""
    frozen = (
        await CampaignRecipient.select(CampaignRecipient.customer)
        .where(_the_row(merchant_id, campaign_id, recipient_id))
        .first()
    )
    if frozen is None or frozen["customer"] is None:
        raise _not_valid()
    return int(frozen["customer"])


async def token_recipient(purpose: tokens.Purpose, token: str) -> TokenRecipient:
    """Read a ``purpose`` token; NotFound when it is tampered with, made for another purpose,
    or names a campaign or recipient row that is not (or no longer) the merchant's."""
    data = tokens.read(purpose, token)
    if data is None:
        raise _not_valid()
    if data.recipient_id == 0:
        if not await Campaign.exists().where(
            (Campaign.id == data.campaign_id) & (Campaign.merchant == data.merchant_id)
        ):
            raise _not_valid()
        customer_id = None
    else:
        customer_id = await frozen_customer(data.merchant_id, data.campaign_id, data.recipient_id)
    return TokenRecipient(
        merchant_id=data.merchant_id,
        campaign_id=data.campaign_id,
        recipient_id=data.recipient_id,
        customer_id=customer_id,
    )


async def sent_at(merchant_id: int, campaign_id: int, recipient_id: int) -> datetime | None:
    """When the recipient's message was handed over (None: not sent, or not this merchant's
    and campaign's row): the click redirect's "too soon to be a reader" check."""
    row = (
        await CampaignRecipient.select(CampaignRecipient.sent_at)
        .where(_the_row(merchant_id, campaign_id, recipient_id))
        .first()
    )
    return None if row is None else row["sent_at"]


#: (merchant, campaign, recipient) of the rows asked for (checked against each row).
RecipientKey = tuple[int, int, int]


async def sent_times(keys: list[RecipientKey]) -> dict[RecipientKey, datetime]:
    """When each of these recipients' messages was handed over (rows that are not the key's
    merchant's and campaign's, or not sent, are left out): the click's "too soon to be a
    reader" check for a whole batch of clicks in one query, on the open transaction."""
    if not keys:
        return {}
    ids = sorted({recipient for _, _, recipient in keys})
    rows = await sql.fetch(
        "SELECT id, merchant, campaign, sent_at FROM campaign_recipient"  # noqa: S608 - placeholders only
        f" WHERE id IN ({sql.placeholders(len(ids))}) AND sent_at IS NOT NULL",
        *ids,
    )
    wanted = set(keys)
    found: dict[RecipientKey, datetime] = {}
    for row in rows:
        key = (int(row["merchant"]), int(row["campaign"]), int(row["id"]))
        if key in wanted:
            found[key] = sql_time(row["sent_at"])
    return found


def sql_time(value: object) -> datetime:
    """A timestamp as loyalmail.sql returns it: a datetime from asyncpg, ISO text from
    SQLite."""
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


class RecipientPerson(msgspec.Struct, frozen=True, kw_only=True):
    """Who one of a campaign's recipient rows is, for the report's lists of people."""

    recipient_id: int
    #: The address the message went to; "" once the customer was erased.
    email: str
    #: The customer's name as it is now ("" when the customer has none, or is erased).
    name: str
    erased: bool


async def recipient_people(
    merchant_id: int, campaign_id: int, recipient_ids: list[int]
) -> dict[int, RecipientPerson]:
    """The campaign's rows among ``recipient_ids`` (a page of a report list: one query by the
    primary key, the customer joined for the name); ids of other campaigns or merchants are
    left out."""
    if not recipient_ids:
        return {}
    rows = await CampaignRecipient.select(
        CampaignRecipient.id,
        CampaignRecipient.email,
        CampaignRecipient.customer,
        CampaignRecipient.customer.first_name,
        CampaignRecipient.customer.last_name,
    ).where(
        CampaignRecipient.id.is_in(recipient_ids)
        & (CampaignRecipient.campaign == campaign_id)
        & (CampaignRecipient.merchant == merchant_id)
    )
    people = {}
    for row in rows:
        # Erasure empties the row's customer and address (campaigns.services.erasure).
        erased = row["customer"] is None
        name = f"{row['customer.first_name'] or ''} {row['customer.last_name'] or ''}".strip()
        people[int(row["id"])] = RecipientPerson(
            recipient_id=int(row["id"]),
            email="" if erased else str(row["email"]),
            name="" if erased else name,
            erased=erased,
        )
    return people
