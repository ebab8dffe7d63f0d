"""The hostile-input corpus, part 4: quota abuse through the API. A campaign one short of the
quota, a pack recorded twice at the same instant, a send and a pack purchase at the same
instant. Refused means nothing frozen, nothing reserved; a repeat records nothing twice.

Proven elsewhere (see hostile_payloads.py): the 11th test send, a pack recorded twice in a
row, two campaigns at once, erasure while a send is queued
(tests/campaigns/test_sending.py::test_erasure_while_queued_forgets_the_recipient_and_sends_nothing_to_them).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from accounts import services as accounts
from accounts.schemas import MerchantOut
from campaigns.sending import dispatch
from campaigns.tables import Campaign, CampaignBatch, CampaignRecipient
from customers.tables import Customer
from quota import services as quota
from quota.services.common import Month
from tests.campaigns.test_api import auth, branded
from tests.conftest import make_merchant
from tests.quota.test_api import OPERATOR, operator_token  # noqa: F401 (a fixture)


@pytest.fixture(autouse=True)
def _no_workers(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The batches' jobs go nowhere: these tests are about what dispatch freezes and reserves."""

    async def nowhere(campaign_id: int, batches: list[int]) -> None:
        pass

    monkeypatch.setattr(dispatch, "enqueue_batches", nowhere)
    yield


async def shop_of(client: Any, people: int, loyal: int) -> tuple[MerchantOut, dict[str, str], int]:
    """A shop with ``people`` verified customers, an allowance of 2 × ``loyal`` this month and a
    campaign to all of them."""
    merchant = await branded(await make_merchant())
    h = auth((await accounts.create_api_token(merchant.id, "t")).token)
    for n in range(people):
        made = await client.post(
            "/api/customers",
            json={"email": f"q{n}.{merchant.slug}@example.com", "send_optin": False},
            headers=h,
        )
        assert made.status_code == 201, made.text
    await Customer.update({Customer.email_status: "verified", Customer.subscribed: True}).where(
        Customer.merchant == merchant.id
    )
    now = datetime.now(UTC)
    await quota.grant_allowance(
        merchant.id, Month.containing(now, merchant.time_zone), loyal, counted_at=now
    )
    created = await client.post(
        "/api/campaigns",
        json={"name": "Q", "subject": "Hi", "audience": {"predefined": "all_customers"}},
        headers=h,
    )
    assert created.status_code == 201, created.text
    return merchant, h, int(created.json()["id"])


async def nothing_frozen(campaign_id: int) -> None:
    assert await CampaignRecipient.count().where(CampaignRecipient.campaign == campaign_id) == 0
    assert await CampaignBatch.count().where(CampaignBatch.campaign == campaign_id) == 0
    row = await Campaign.select(Campaign.status).where(Campaign.id == campaign_id).first()
    assert row is not None and row["status"] == "draft"


async def test_a_campaign_one_short_of_the_quota_is_refused_and_freezes_nothing(
    client: Any,
) -> None:
    merchant, h, campaign_id = await shop_of(client, people=3, loyal=1)  # 3 people, 2 sends
    before = await quota.overview(merchant.id)
    refused = await client.post(f"/api/campaigns/{campaign_id}/send", headers=h)
    assert refused.status_code == 409, refused.text
    extra = refused.json()["extra"]
    assert (extra["needed"], extra["available"], extra["short_by"]) == (3, 2, 1)
    assert "10,000" in extra["how_to_buy"]
    await nothing_frozen(campaign_id)
    assert await quota.reservation_by_key(merchant.id, f"campaign:{campaign_id}") is None
    assert await quota.overview(merchant.id) == before
    # With a pack bought, the same send goes through: all three frozen and reserved.
    await quota.buy_pack(merchant.id, reference=f"pack-{merchant.slug}")
    sent = await client.post(f"/api/campaigns/{campaign_id}/send", headers=h)
    assert sent.status_code == 202, sent.text
    reservation = await quota.reservation_by_key(merchant.id, f"campaign:{campaign_id}")
    assert reservation is not None and reservation.units == 3
    assert await CampaignRecipient.count().where(CampaignRecipient.campaign == campaign_id) == 3


async def test_a_pack_recorded_twice_at_the_same_instant_counts_once(
    client: Any,
    operator_token: str,  # noqa: F811
) -> None:
    merchant = await make_merchant()
    path = f"/api/operator/merchants/{merchant.slug}/quota/packs"
    answers = await asyncio.gather(
        *(
            client.post(path, json={"reference": "psp-twice", "packs": 1}, headers=auth(OPERATOR))
            for _ in range(4)
        )
    )
    assert sorted(a.status_code for a in answers) == [200, 200, 200, 201], [a.text for a in answers]
    assert [a.json()["created"] for a in answers].count(True) == 1
    assert (await quota.overview(merchant.id)).packs_available == 10_000


async def test_a_send_and_a_pack_purchase_at_the_same_instant_never_overspend(
    client: Any,
    operator_token: str,  # noqa: F811
) -> None:
    merchant, h, campaign_id = await shop_of(client, people=3, loyal=1)
    pack_path = f"/api/operator/merchants/{merchant.slug}/quota/packs"
    send, pack = await asyncio.gather(
        client.post(f"/api/campaigns/{campaign_id}/send", headers=h),
        client.post(pack_path, json={"reference": "psp-race", "packs": 1}, headers=auth(OPERATOR)),
    )
    assert pack.status_code == 201, pack.text
    overview = await quota.overview(merchant.id)
    reservation = await quota.reservation_by_key(merchant.id, f"campaign:{campaign_id}")
    if send.status_code == 409:  # the send came first: refused whole
        await nothing_frozen(campaign_id)
        assert reservation is None
        assert overview.available == 2 + 10_000
    else:  # the pack came first: all three frozen and reserved, the allowance spent first
        assert send.status_code == 202, send.text
        assert reservation is not None and reservation.units == 3
        frozen = await CampaignRecipient.count().where(CampaignRecipient.campaign == campaign_id)
        assert frozen == 3
        assert overview.available == 2 + 10_000 - 3
