"""Deliverability on SQLite and PostgreSQL: the figures of the last 30 days (API and page) as
a person would count them by hand, another merchant's never among them, and the campaign
that pauses itself: hard bounces from a real SMTP server (aiosmtpd) through the real
workers, complaints through the signed bounce webhook."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from accounts import services as accounts
from accounts.schemas import MerchantOut
from campaigns.sending import dispatch
from campaigns.sending.deliverability import (
    deliverability,
    minimum_sample,
    pause_if_over_limits,
)
from campaigns.sending.progress import progress
from campaigns.tables import Campaign, CampaignBounce, CampaignRecipient
from loyalmail.settings import SettingsError, load_settings
from tests.campaigns.test_api import auth
from tests.campaigns.test_bounces import JSON, SECRET, Sent, event, post_report, signed
from tests.campaigns.test_dsn import sample
from tests.campaigns.test_sending import ready
from tests.conftest import Jobs, login, make_merchant, make_owner
from tests.settings_env import settings_env
from tests.smtp import Recorder, recording_server

COMPLAINED = re.compile(r"Paused: ([0-9.]+) % of recipients complained \(limit 0\.3 %\)\.")
BOUNCED = re.compile(r"Paused: ([0-9.]+) % of recipients bounced hard \(limit 5 %\)\.")


@pytest.fixture
def webhooks() -> Iterator[None]:
    with settings_env({"LOYALMAIL_BOUNCE_WEBHOOK_SECRET": SECRET}):
        yield


async def a_send(
    merchant: MerchantOut,
    statuses: dict[str, int],
    *,
    name: str = "Winter",
    status: str = "sending",
    started: datetime | None = None,
) -> list[Sent]:
    """A campaign whose recipients stand as ``statuses`` says (e.g. 6 sent, 2 bounced), as
    the send pipeline leaves them (tests/campaigns/test_sending.py sends for real); the sent
    ones, whom later reports can be about."""
    created = await Campaign.insert(
        Campaign(
            merchant=merchant.id,
            name=name,
            status=status,
            started_at=started or datetime.now(UTC) - timedelta(hours=1),
        )
    )
    campaign_id = int(created[0]["id"])
    tag = uuid.uuid4().hex[:8]
    rows = [
        CampaignRecipient(
            campaign=campaign_id,
            merchant=merchant.id,
            email=f"{state}{n}.{tag}@example.com",
            email_normalized=f"{state}{n}.{tag}@example.com",
            status=state,
            attempts=1,
            sent_at=datetime.now(UTC) if state == "sent" else None,
        )
        for state, count in statuses.items()
        for n in range(count)
    ]
    for start in range(0, len(rows), 200):
        await CampaignRecipient.insert(*rows[start : start + 200])
    sent = (
        await CampaignRecipient.select(CampaignRecipient.id, CampaignRecipient.email_normalized)
        .where((CampaignRecipient.campaign == campaign_id) & (CampaignRecipient.status == "sent"))
        .order_by(CampaignRecipient.id)
    )
    return [Sent(merchant, campaign_id, int(r["id"]), str(r["email_normalized"])) for r in sent]


async def report(client: Any, sent: Sent, kind: str) -> None:
    """A provider's webhook event about ``sent``: hard, soft or complaint."""
    fields: dict[str, Any] = (
        {"type": "complaint", "bounce_type": None, "status": "", "diagnostic": "abuse"}
        if kind == "complaint"
        else {"bounce_type": kind}
    )
    body = msgspec.json.encode({"events": [event(sent, **fields)]})
    answer = await client.post(
        "/api/webhooks/bounces", content=body, headers={**JSON, **signed(body)}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["processed"] == 1, answer.text


async def in_german(client: Any, path: str) -> Any:
    await client.get("/language?lang=de&next=/", follow_redirects=False)
    try:
        return await client.get(path)
    finally:
        await client.get("/language?lang=en&next=/", follow_redirects=False)


async def state_of(campaign_id: int) -> tuple[str, str]:
    row = await Campaign.select(Campaign.status, Campaign.status_reason).where(
        Campaign.id == campaign_id
    )
    return str(row[0]["status"]), str(row[0]["status_reason"])


# --- the settings ----------------------------------------------------------------------------


def test_the_limits_are_settings_with_gmails_defaults() -> None:
    settings = load_settings({})
    assert (settings.pause_complaint_rate, settings.pause_hard_bounce_rate) == (0.003, 0.05)
    custom = {"LOYALMAIL_PAUSE_COMPLAINT_RATE": "0.001", "LOYALMAIL_PAUSE_HARD_BOUNCE_RATE": "0"}
    settings = load_settings(custom)
    assert (settings.pause_complaint_rate, settings.pause_hard_bounce_rate) == (0.001, 0.0)
    for wrong in ("1.5", "-0.1", "nan"):
        with pytest.raises(SettingsError, match="PAUSE_COMPLAINT_RATE"):
            load_settings({"LOYALMAIL_PAUSE_COMPLAINT_RATE": wrong})
    # One complaint among the first 50 is 2 %: the rate counts from 1,000 accepted messages.
    assert (minimum_sample(0.003), minimum_sample(0.05), minimum_sample(0.5)) == (1000, 100, 100)


# --- the figures -----------------------------------------------------------------------------


async def test_the_api_and_the_page_show_the_figures_counted_by_hand(
    client: Any, webhooks: None
) -> None:
    merchant = await make_merchant(name="Fjord Bakeri")
    owner = await make_owner(merchant)
    token = await login_token(merchant)
    # Spring: 6 accepted, 2 refused at once (hard), 1 given up (soft), 1 skipped (not tried);
    # later, one accepted message bounced hard, one soft, and one recipient complained.
    spring = await a_send(
        merchant, {"sent": 6, "bounced": 2, "failed": 1, "skipped": 1}, name="Spring", status="sent"
    )
    await report(client, spring[0], "hard")
    await report(client, spring[1], "soft")
    await report(client, spring[2], "complaint")
    await report(client, spring[2], "complaint")  # another report of the same complaint
    # Summer: 4 accepted, nothing else. Autumn: 40 days ago, outside the window.
    await a_send(merchant, {"sent": 4}, name="Summer", status="sent")
    old = datetime.now(UTC) - timedelta(days=40)
    await a_send(merchant, {"sent": 5, "bounced": 5}, name="Autumn", status="sent", started=old)
    # Another shop's campaign, with the worst figures: never in this shop's.
    other = await make_merchant(name="Other Shop")
    await a_send(other, {"sent": 1, "bounced": 9}, name="Foreign campaign", status="sent")

    answer = await client.get("/api/deliverability", headers=auth(token))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["days"] == 30
    assert (body["complaint_limit"], body["hard_bounce_limit"]) == (0.003, 0.05)
    assert [c["name"] for c in body["campaigns"]] == ["Summer", "Spring"]
    spring_row = body["campaigns"][1]["figures"]
    # Tried: 6 + 2 + 1 = 9. Hard: 2 + 1 of 9. Soft: 1 + 1 of 9. Complaints: 1 of 6 sent.
    assert spring_row == {
        "sent": 6,
        "tried": 9,
        "hard_bounces": 3,
        "hard_bounce_rate": 0.333333,
        "soft_bounces": 2,
        "soft_bounce_rate": 0.222222,
        "complaints": 1,
        "complaint_rate": 0.166667,
    }
    # In all: 10 sent of 13 tried; 3 hard, 2 soft, 1 complaint.
    assert body["totals"] == {
        "sent": 10,
        "tried": 13,
        "hard_bounces": 3,
        "hard_bounce_rate": 0.230769,
        "soft_bounces": 2,
        "soft_bounce_rate": 0.153846,
        "complaints": 1,
        "complaint_rate": 0.1,
    }

    await login(client, owner)
    shown = await client.get("/settings/deliverability")
    assert shown.status_code == 200
    text = shown.text
    assert 'href="/settings/deliverability"' in text  # the Settings tab
    assert re.search(r'data-testid="total-sent">10<', text)
    assert re.search(r'data-testid="total-hard">3 <small>23\.08 %</small>', text)
    assert re.search(r'data-testid="total-soft">2 <small>15\.38 %</small>', text)
    assert re.search(r'data-testid="total-complaints">1 <small>10 %</small>', text)
    assert re.search(r'data-testid="row-hard">3 <small>33\.33 %</small>', text)
    assert "Spring" in text and "Summer" in text
    assert "Autumn" not in text and "Foreign campaign" not in text
    assert "0.3 %" in text and "5 %" in text  # the limits
    german = await in_german(client, "/settings/deliverability")
    assert "Zustellbarkeit" in german.text and "Harte Bounces" in german.text

    # The other shop sees its own, and nothing of this one.
    other_token = await login_token(other)
    theirs = (await client.get("/api/deliverability", headers=auth(other_token))).json()
    assert [c["name"] for c in theirs["campaigns"]] == ["Foreign campaign"]
    assert (theirs["totals"]["sent"], theirs["totals"]["hard_bounces"]) == (1, 9)


async def login_token(merchant: MerchantOut) -> str:
    return (await accounts.create_api_token(merchant.id, "deliverability")).token


async def test_without_campaigns_the_figures_are_zero(merchant: MerchantOut) -> None:
    figures = await deliverability(merchant.id)
    assert figures.campaigns == [] and figures.totals.sent == 0
    assert figures.totals.complaint_rate == 0.0


# --- the auto-pause: complaints --------------------------------------------------------------


async def test_complaints_pause_a_running_campaign_once_past_the_limit_and_not_before(
    client: Any, merchant: MerchantOut, webhooks: None
) -> None:
    sent = await a_send(merchant, {"sent": 1000, "queued": 500})
    campaign_id = sent[0].campaign_id
    for n in range(3):  # 3 of 1,000 is 0.3 %: at the limit, not past it
        await report(client, sent[n], "complaint")
        assert await state_of(campaign_id) == ("sending", "")
    # The fourth (0.4 %) comes as a feedback loop's ARF report, the MTA's path.
    arf = sample("yahoo_arf.eml", recipient=sent[3].address, message_id=sent[3].message_id)
    answer = await post_report(client, arf)
    assert answer.status_code == 200 and answer.json()["processed"] == 1, answer.text
    status, reason = await state_of(campaign_id)
    assert status == "paused"
    assert reason == "Paused: 0.4 % of recipients complained (limit 0.3 %)."
    assert COMPLAINED.fullmatch(reason)
    # The marketer sees it on the campaign's page, in the page's language too.
    owner = await make_owner(merchant)
    await login(client, owner)
    shown = await client.get(f"/campaigns/{campaign_id}/sending")
    assert "0.4 % of recipients complained (limit 0.3 %)" in shown.text
    german = await in_german(client, f"/campaigns/{campaign_id}/sending")
    assert "Angehalten: 0.4 % der Empfänger haben sich beschwert (Grenze 0.3 %)." in german.text


async def test_one_complaint_among_the_first_messages_does_not_stop_a_campaign(
    client: Any, merchant: MerchantOut, webhooks: None
) -> None:
    sent = await a_send(merchant, {"sent": 50, "queued": 950})
    await report(client, sent[0], "complaint")  # 2 % of 50, but only 50 messages so far
    await report(client, sent[1], "hard")  # a late hard bounce: 2 of 50 tried either
    assert await state_of(sent[0].campaign_id) == ("sending", "")
    # A campaign that is not being sent any more is not paused by a late report.
    done = await a_send(merchant, {"sent": 1000}, status="sent")
    for n in range(10):
        await report(client, done[n], "complaint")
    assert await state_of(done[0].campaign_id) == ("sent", "")
    bounces = await CampaignBounce.count().where(CampaignBounce.campaign == done[0].campaign_id)
    assert bounces == 10


async def test_the_limits_follow_the_settings(
    client: Any, merchant: MerchantOut, webhooks: None
) -> None:
    sent = await a_send(merchant, {"sent": 1000, "queued": 10})
    with settings_env({"LOYALMAIL_PAUSE_COMPLAINT_RATE": "0"}):  # 0: never for complaints
        for n in range(20):
            await report(client, sent[n], "complaint")
        assert (await state_of(sent[0].campaign_id))[0] == "sending"
    with settings_env({"LOYALMAIL_PAUSE_COMPLAINT_RATE": "0.01"}):  # 1 %: from 300 messages
        await report(client, sent[20], "complaint")
        status, reason = await state_of(sent[0].campaign_id)
    assert status == "paused"
    assert reason == "Paused: 2.1 % of recipients complained (limit 1 %)."


# --- the auto-pause: hard bounces from the SMTP server ---------------------------------------


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    with recording_server() as handler:
        yield handler


@pytest.fixture
def small_batches() -> Iterator[None]:
    values = {"LOYALMAIL_SEND_BATCH_SIZE": "7", "LOYALMAIL_SEND_LEASE_SECONDS": "30"}
    with settings_env(values):
        yield


async def test_hard_bounces_pause_the_campaign_with_the_figure(
    merchant: MerchantOut, jobs: Jobs, recorder: Recorder, small_batches: None
) -> None:
    campaign_id, addresses = await ready(merchant, 160)
    # Every tenth address does not exist: 10 % bounce hard, twice the limit.
    recorder.rcpt_answers = {a: "550 5.1.1 No such user" for a in addresses[::10]}
    await dispatch.send_now(merchant.id, campaign_id)
    await asyncio.to_thread(jobs.drain)
    paused = await progress(merchant.id, campaign_id)
    assert paused.status == "paused", paused
    found = BOUNCED.fullmatch(paused.status_reason)
    assert found, paused.status_reason
    tried = paused.sent + paused.bounced + paused.failed
    # Judged from 100 messages on, and at once: well before the end of the list.
    assert 100 <= tried < 160 and paused.queued > 0
    assert 5 < float(found.group(1)) <= 100
    figures = await deliverability(merchant.id)
    (row,) = figures.campaigns
    assert row.status == "paused" and row.figures.hard_bounces == paused.bounced


async def test_a_few_hard_bounces_in_a_short_list_do_not_pause(
    merchant: MerchantOut, jobs: Jobs, recorder: Recorder, small_batches: None
) -> None:
    campaign_id, addresses = await ready(merchant, 40)
    # 4 of 40 (10 %), but 40 messages are too few to judge a list by.
    recorder.rcpt_answers = {a: "550 5.1.1 No such user" for a in addresses[::10]}
    await dispatch.send_now(merchant.id, campaign_id)
    await asyncio.to_thread(jobs.drain)
    done = await progress(merchant.id, campaign_id)
    assert (done.status, done.sent, done.bounced) == ("sent", 36, 4)


async def test_a_campaign_of_another_merchant_is_left_alone(merchant: MerchantOut) -> None:
    sent = await a_send(merchant, {"sent": 100, "bounced": 50, "queued": 10})
    other = await make_merchant()
    assert not await pause_if_over_limits(other.id, sent[0].campaign_id)
    assert await pause_if_over_limits(merchant.id, sent[0].campaign_id)
    status, reason = await state_of(sent[0].campaign_id)
    assert status == "paused" and reason == (
        "Paused: 33.33 % of recipients bounced hard (limit 5 %)."
    )


async def complaints_recorded(sent: list[Sent], count: int) -> None:
    """``count`` complaints as campaigns.bounces records them (written straight in)."""
    await CampaignBounce.insert(
        *(
            CampaignBounce(
                merchant=s.merchant.id,
                campaign=s.campaign_id,
                recipient=s.recipient_id,
                email_normalized=s.address,
                kind="complaint",
                source="webhook",
                event_id=f"webhook:{uuid.uuid4().hex}",
            )
            for s in sent[:count]
        )
    )


@pytest.mark.parametrize(("accepted", "pauses"), [(6666, True), (6667, False)])
async def test_a_large_campaign_is_judged_exactly_at_the_limit(
    merchant: MerchantOut, accepted: int, pauses: bool
) -> None:
    # 20 complaints: 20 / 6,666 is 0.30003 %, past the limit; 20 / 6,667 is 0.29999 %. The
    # check counts the messages only up to 6,667 (⌊20 / 0.003⌋ + 1), never the whole list.
    sent = await a_send(merchant, {"sent": accepted, "queued": 5})
    await complaints_recorded(sent, 20)
    assert await pause_if_over_limits(merchant.id, sent[0].campaign_id) is pauses
    status, reason = await state_of(sent[0].campaign_id)
    if pauses:
        assert (status, reason) == (
            "paused",
            "Paused: 0.30003 % of recipients complained (limit 0.3 %).",
        )
    else:
        assert (status, reason) == ("sending", "")
