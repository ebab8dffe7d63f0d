"""Keys past 2^31 on PostgreSQL (the 64-bit keys migrations of 2026-12-07): with every
high-volume sequence moved beyond the largest 32-bit integer, a customer buys, a campaign is
frozen and sent, its message opened and clicked, a bounce recorded and an unsubscribe
logged: every row lands with its large key, and every message goes out once."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from accounts.schemas import MerchantOut
from campaigns.bounces.services import BounceEvent, record
from campaigns.sending import dispatch
from campaigns.tables import CampaignBounce, CampaignRecipient
from customers.schemas import PurchaseCreate
from customers.services.purchases import add_purchase
from customers.tables import ConsentEvent, Customer
from loyalmail import database
from tests.campaigns.test_sending import ready, received
from tests.conftest import Jobs
from tests.smtp import mails_to
from tests.tracking.test_redirects import BROWSER, events_of, paths, sent_an_hour_ago
from tracking.tables import TrackingPerson

#: One past the largest value a 32-bit key can hold.
PAST_INT4 = 2**31

#: The sequences of the tables that grow with every send, sale and event.
SEQUENCES = [
    "campaign_recipient_id_seq",
    "campaign_bounce_id_seq",
    "tracking_event_id_seq",
    "tracking_person_id_seq",
    "purchase_id_seq",
    "consent_event_id_seq",
]


async def move_past_int4() -> None:
    # Forward only: other tests of the session keep working with whatever they get next.
    for sequence in SEQUENCES:
        # pg_sequence_last_value takes the name as a value: no name is written into the SQL.
        await Customer.raw(
            "SELECT setval({}, GREATEST(COALESCE(pg_sequence_last_value({}::regclass), 1), {}))",
            sequence,
            sequence,
            PAST_INT4 + 100,
        )


async def test_every_growing_key_works_past_2_to_the_31(
    client: Any, merchant: MerchantOut, jobs: Jobs, smtp: Path
) -> None:
    if not database.is_postgres():
        pytest.skip("SQLite's INTEGER PRIMARY KEY is 64 bits: there is no 32-bit limit to pass")
    await move_past_int4()

    campaign_id, addresses = await ready(merchant, 3)
    buyer = await Customer.select(Customer.id).where(Customer.merchant == merchant.id).first()
    assert buyer is not None
    bought = await add_purchase(merchant.id, buyer["id"], PurchaseCreate(amount=Decimal("12.50")))
    assert bought.id > PAST_INT4

    await dispatch.send_now(merchant.id, campaign_id)
    await asyncio.to_thread(jobs.drain)
    assert await asyncio.to_thread(received, smtp, addresses) == dict.fromkeys(addresses, 1)
    rows = await CampaignRecipient.select(
        CampaignRecipient.id, CampaignRecipient.status, CampaignRecipient.email
    ).where(CampaignRecipient.campaign == campaign_id)
    assert {row["status"] for row in rows} == {"sent"}
    assert all(row["id"] > PAST_INT4 for row in rows)

    message = (await asyncio.to_thread(mails_to, smtp, addresses[0]))[0]
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    await sent_an_hour_ago(campaign_id)
    (pixel,) = paths(html, "o")
    assert (await client.get(pixel, headers=BROWSER)).status_code == 200
    clicked = await client.get(paths(html, "c")[0], headers=BROWSER, follow_redirects=False)
    assert clicked.status_code == 302
    first = next(row["id"] for row in rows if row["email"] == addresses[0])
    events = await events_of(campaign_id)
    assert [(e["kind"], e["recipient"]) for e in events] == [("open", first), ("click", first)]
    assert all(e["id"] > PAST_INT4 for e in events)
    person = await TrackingPerson.select().where(TrackingPerson.campaign == campaign_id).first()
    assert person is not None and person["id"] > PAST_INT4
    assert (person["recipient"], person["opens"], person["clicks"]) == (first, 1, 1)

    bounce = BounceEvent(
        label=addresses[0],
        kind="hard",
        addresses=(addresses[0],),
        message_id=str(message["Message-ID"]),
        return_paths=(),
        event_id="dsn:large-ids",
        source="dsn",
        status="5.1.1",
    )
    assert (await record(bounce)).result == "recorded"
    stored = await CampaignBounce.select().where(CampaignBounce.campaign == campaign_id).first()
    assert stored is not None
    assert stored["id"] > PAST_INT4 and stored["recipient"] == first

    # The second person leaves with one click, as a mail client posts to the message's own
    # List-Unsubscribe URL: the consent log's entry has a large key too.
    other = (await asyncio.to_thread(mails_to, smtp, addresses[1]))[0]
    https = next(u for u in str(other["List-Unsubscribe"]).split(",") if "http" in u)
    path = "/r/" + https.strip(" <>").split("/r/", 1)[1]
    left = await client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert left.status_code == 200
    consent = await ConsentEvent.select(ConsentEvent.id, ConsentEvent.action).where(
        ConsentEvent.merchant == merchant.id
    )
    assert [row["action"] for row in consent] == ["withdrawn"]
    assert consent[0]["id"] > PAST_INT4
