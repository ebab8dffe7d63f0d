"""Sending end to end: dispatch freezes the audience and reserves the quota in one
transaction, real dramatiq workers (in-process and Redis) send over SMTP to aiosmtpd, and
every recipient is accounted for: accepted once, skipped, bounced or cancelled, with the
quota spent for exactly the accepted ones."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from accounts.schemas import MerchantOut
from campaigns.bounces import verp
from campaigns.schemas import Audience, CampaignCreate, ScheduleRequest
from campaigns.sending import control, dispatch
from campaigns.sending.progress import progress
from campaigns.services import create_campaign
from campaigns.tables import Campaign, CampaignBatch, CampaignBounce, CampaignRecipient
from customers.schemas import CustomerCreate
from customers.services import customers
from customers.services.suppression import is_suppressed
from customers.tables import Customer
from loyalmail.errors import Conflict, ValidationFailed
from quota import services as quota
from tests.campaigns.test_api import auth, branded
from tests.conftest import Jobs
from tests.settings_env import settings_env
from tests.smtp import Recorder, mails_to, recipients_in, recording_server


@pytest.fixture
def fast_sending() -> Iterator[None]:
    """Small batches (so a send has several) and retries after a fifth of a second."""
    values = {
        "LOYALMAIL_SEND_BATCH_SIZE": "7",
        "LOYALMAIL_SEND_RETRY_BASE_SECONDS": "0.2",
        "LOYALMAIL_SEND_LEASE_SECONDS": "30",
    }
    with settings_env(values):
        yield


async def people(merchant: MerchantOut, count: int, tag: str = "p") -> list[str]:
    """``count`` verified, subscribed customers; their addresses."""
    addresses = []
    for n in range(count):
        address = f"{tag}{n}.{merchant.slug}@example.com"
        created = await customers.create_customer(
            merchant.id,
            CustomerCreate(email=address, first_name=f"Kim{n}", locale="de", send_optin=False),
        )
        await Customer.update({Customer.email_status: "verified", Customer.subscribed: True}).where(
            Customer.id == created.id
        )
        addresses.append(address)
    return addresses


async def a_campaign(merchant: MerchantOut) -> int:
    created = await create_campaign(
        merchant.id,
        CampaignCreate(
            name="Winter",
            subject="{{ salutation }}, winter is here",
            layout="offer",
            audience=Audience(predefined="all_customers"),
        ),
    )
    return created.id


async def ready(merchant: MerchantOut, count: int, *, pack: bool = True) -> tuple[int, list[str]]:
    await branded(merchant)
    addresses = await people(merchant, count)
    if pack:
        await quota.buy_pack(merchant.id, reference=f"pack-{merchant.slug}")
    return await a_campaign(merchant), addresses


def received(outbox: Path, addresses: list[str]) -> dict[str, int]:
    """How many messages each address got (every file parsed once: the outbox is shared by
    the module's tests)."""
    counts = dict.fromkeys(addresses, 0)
    for recipient in recipients_in(outbox):
        if recipient in counts:
            counts[recipient] += 1
    return counts


async def recipients_by_status(campaign_id: int) -> dict[str, int]:
    rows = await CampaignRecipient.select(CampaignRecipient.status).where(
        CampaignRecipient.campaign == campaign_id
    )
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    return counts


async def reservation_of(merchant: MerchantOut, campaign_id: int) -> Any:
    found = await quota.reservation_by_key(merchant.id, f"campaign:{campaign_id}")
    assert found is not None
    return found


# --- the happy path --------------------------------------------------------------------------


async def test_send_now_reaches_every_member_once_and_pays_for_exactly_them(
    client: Any,
    merchant: MerchantOut,
    api_token: str,
    jobs: Jobs,
    smtp: Path,
    fast_sending: None,
) -> None:
    campaign_id, addresses = await ready(merchant, 23)
    # Not in the group: never confirmed, and unsubscribed.
    outsider = f"outsider.{merchant.slug}@example.com"
    await customers.create_customer(merchant.id, CustomerCreate(email=outsider, send_optin=False))
    answer = await client.post(f"/api/campaigns/{campaign_id}/send", headers=auth(api_token))
    assert answer.status_code == 202, answer.text
    assert answer.json()["recipients"] == 23
    await asyncio.to_thread(jobs.drain)

    assert await asyncio.to_thread(received, smtp, addresses) == dict.fromkeys(addresses, 1)
    assert await asyncio.to_thread(mails_to, smtp, outsider) == []
    done = (
        await client.get(f"/api/campaigns/{campaign_id}/progress", headers=auth(api_token))
    ).json()
    assert (done["status"], done["sent"], done["remaining"]) == ("sent", 23, 0)
    assert done["finished_at"] is not None
    reservation = await reservation_of(merchant, campaign_id)
    assert (reservation.units, reservation.spent, reservation.released) == (23, 23, 0)
    assert reservation.closed_at is not None
    message = (await asyncio.to_thread(mails_to, smtp, addresses[0]))[0]
    assert message["Subject"] == "Guten Tag Kim0, winter is here"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Precedence"] == "bulk"
    assert message["Message-ID"].startswith(f"<lm.{merchant.id}.{campaign_id}.")
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "/r/o/" in html and "/r/c/" in html  # opens and clicks are tracked in real sends


async def test_a_second_send_of_the_same_campaign_is_refused(
    merchant: MerchantOut, jobs: Jobs, smtp: Path, fast_sending: None
) -> None:
    campaign_id, addresses = await ready(merchant, 5)
    outcomes = await asyncio.gather(
        dispatch.send_now(merchant.id, campaign_id),
        dispatch.send_now(merchant.id, campaign_id),
        return_exceptions=True,
    )
    refused = [o for o in outcomes if isinstance(o, Exception)]
    assert len(refused) == 1 and isinstance(refused[0], Conflict), outcomes
    await asyncio.to_thread(jobs.drain)
    assert await asyncio.to_thread(received, smtp, addresses) == dict.fromkeys(addresses, 1)
    assert (await reservation_of(merchant, campaign_id)).units == 5


async def test_not_enough_quota_freezes_nothing(
    client: Any, merchant: MerchantOut, api_token: str, jobs: Jobs, smtp: Path
) -> None:
    campaign_id, addresses = await ready(merchant, 3, pack=False)
    answer = await client.post(f"/api/campaigns/{campaign_id}/send", headers=auth(api_token))
    assert answer.status_code == 409, answer.text
    body = answer.json()
    assert body["extra"]["needed"] == 3 and body["extra"]["short_by"] == 3
    assert await recipients_by_status(campaign_id) == {}
    row = await Campaign.select(Campaign.status).where(Campaign.id == campaign_id).first()
    assert row is not None and row["status"] == "draft"
    assert await quota.reservation_by_key(merchant.id, f"campaign:{campaign_id}") is None
    await asyncio.to_thread(jobs.drain)
    assert await asyncio.to_thread(received, smtp, addresses) == dict.fromkeys(addresses, 0)


async def test_nobody_to_send_to_is_a_clear_error(
    merchant: MerchantOut, fast_sending: None
) -> None:
    await branded(merchant)
    await quota.buy_pack(merchant.id, reference="empty")
    campaign_id = await a_campaign(merchant)
    with pytest.raises(ValidationFailed) as refused:
        await dispatch.send_now(merchant.id, campaign_id)
    assert "Nobody" in refused.value.message
    row = await Campaign.select(Campaign.status).where(Campaign.id == campaign_id).first()
    assert row is not None and row["status"] == "draft"


# --- control ---------------------------------------------------------------------------------


async def test_pause_resume_and_an_unsubscribe_while_queued(
    merchant: MerchantOut, jobs: Jobs, smtp: Path, fast_sending: None
) -> None:
    campaign_id, addresses = await ready(merchant, 30)
    await dispatch.send_now(merchant.id, campaign_id)
    await control.pause(merchant.id, campaign_id, "checking the prices")
    await asyncio.to_thread(jobs.drain)
    paused = await progress(merchant.id, campaign_id)
    assert (paused.status, paused.status_reason) == ("paused", "checking the prices")
    assert paused.sent + paused.queued == 30 and paused.in_flight == 0
    # Someone still waiting unsubscribes while the send is paused: they get nothing.
    got = await asyncio.to_thread(received, smtp, addresses)
    waiting = [a for a in addresses if got[a] == 0]
    if waiting:
        await Customer.update({Customer.subscribed: False}).where(
            Customer.email_normalized == waiting[0]
        )
    await control.resume(merchant.id, campaign_id)
    await asyncio.to_thread(jobs.drain)
    got = await asyncio.to_thread(received, smtp, addresses)
    skipped = waiting[:1]
    assert got == {a: 0 if a in skipped else 1 for a in addresses}
    done = await progress(merchant.id, campaign_id)
    assert (done.status, done.sent, done.skipped) == ("sent", 30 - len(skipped), len(skipped))
    reservation = await reservation_of(merchant, campaign_id)
    assert reservation.spent == 30 - len(skipped)
    assert reservation.released == len(skipped) and reservation.closed_at is not None


async def test_cancel_releases_the_rest_once(
    merchant: MerchantOut, jobs: Jobs, smtp: Path, fast_sending: None
) -> None:
    campaign_id, addresses = await ready(merchant, 30)
    await dispatch.send_now(merchant.id, campaign_id)
    await control.pause(merchant.id, campaign_id)
    await asyncio.to_thread(jobs.drain)
    await control.cancel(merchant.id, campaign_id)
    with pytest.raises(Conflict):
        await control.cancel(merchant.id, campaign_id)
    await control.reconcile()
    got = await asyncio.to_thread(received, smtp, addresses)
    sent = sum(got.values())
    assert set(got.values()) <= {0, 1}
    done = await progress(merchant.id, campaign_id)
    assert (done.status, done.sent, done.cancelled) == ("cancelled", sent, 30 - sent)
    reservation = await reservation_of(merchant, campaign_id)
    assert (reservation.spent, reservation.released) == (sent, 30 - sent)
    overview = await quota.overview(merchant.id)
    assert overview.available == 10_000 - sent


async def test_the_batches_cover_every_frozen_recipient_in_ranges_of_the_batch_size(
    merchant: MerchantOut, jobs: Jobs, fast_sending: None
) -> None:
    campaign_id, _ = await ready(merchant, 23)
    await dispatch.send_now(merchant.id, campaign_id)
    ids = [
        r["id"]
        for r in await CampaignRecipient.select(CampaignRecipient.id)
        .where(CampaignRecipient.campaign == campaign_id)
        .order_by(CampaignRecipient.id)
    ]
    batches = (
        await CampaignBatch.select(CampaignBatch.first_recipient, CampaignBatch.last_recipient)
        .where(CampaignBatch.campaign == campaign_id)
        .order_by(CampaignBatch.first_recipient)
    )
    spans = [(b["first_recipient"], b["last_recipient"]) for b in batches]
    # One freeze takes consecutive ids: ranges of 7 ids from the first to the last.
    assert ids == list(range(ids[0], ids[0] + 23))
    assert spans == [(low, min(low + 6, ids[-1])) for low in range(ids[0], ids[-1] + 1, 7)]
    assert sum(1 for i in ids if any(low <= i <= high for low, high in spans)) == 23


async def test_a_batch_keeps_the_time_it_was_handed_out(merchant: MerchantOut) -> None:
    # Found by tests/loyalmail/test_tenant_isolation.py's snapshot: on SQLite the batches'
    # enqueued_at was stored as the number 2026 (CAST to a numeric-affinity type), which the
    # ORM could not read and the reconciler took for a stale batch at once.
    campaign_id, _ = await ready(merchant, 3)
    moment = datetime.now(UTC)  # after the pack was bought: it is valid from then on
    await dispatch.send_now(merchant.id, campaign_id, now=moment)
    batches = await CampaignBatch.select().where(CampaignBatch.campaign == campaign_id)
    assert [b["enqueued_at"] for b in batches] == [moment]
    assert await control.hand_out_unfinished(campaign_id, moment - timedelta(minutes=1)) == 0


async def test_erasure_while_queued_forgets_the_recipient_and_sends_nothing_to_them(
    client: Any,
    merchant: MerchantOut,
    api_token: str,
    jobs: Jobs,
    smtp: Path,
    fast_sending: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    campaign_id, addresses = await ready(merchant, 9)

    async def lost(campaign_id: int, batches: list[int]) -> None:
        """The batches' jobs never reach a worker (as if Redis lost them)."""

    monkeypatch.setattr(dispatch, "enqueue_batches", lost)
    await dispatch.send_now(merchant.id, campaign_id)
    erased = addresses[0]
    gone = await Customer.select(Customer.id).where(Customer.email_normalized == erased).first()
    assert gone is not None
    row = await CampaignRecipient.select(CampaignRecipient.id).where(
        (CampaignRecipient.campaign == campaign_id) & (CampaignRecipient.customer == gone["id"])
    )
    # A soft bounce reported for them earlier keeps the address until the erasure.
    await CampaignBounce.insert(
        CampaignBounce(
            merchant=merchant.id,
            campaign=campaign_id,
            recipient=row[0]["id"],
            email_normalized=erased,
            kind="soft",
            source="webhook",
            event_id="webhook:erasure-test",
        )
    )
    answer = await client.delete(f"/api/customers/{gone['id']}", headers=auth(api_token))
    assert answer.status_code == 204, answer.text
    # The frozen row keeps no one: no customer id, no address, only its status.
    rows = await CampaignRecipient.select().where(CampaignRecipient.campaign == campaign_id)
    assert not [r for r in rows if r["email_normalized"] == erased or r["email"] == erased]
    forgotten = [r for r in rows if r["customer"] is None]
    assert [(r["email"], r["email_normalized"]) for r in forgotten] == [("", "")]
    bounces = await CampaignBounce.select(CampaignBounce.email_normalized).where(
        CampaignBounce.campaign == campaign_id
    )
    assert bounces == [{"email_normalized": ""}]
    # The reconciler hands the batches out again; the worker finds nobody behind the row.
    await control.reconcile(now=datetime.now(UTC) + timedelta(hours=1))
    await asyncio.to_thread(jobs.drain)
    got = await asyncio.to_thread(received, smtp, addresses)
    assert got == {a: 0 if a == erased else 1 for a in addresses}
    done = await progress(merchant.id, campaign_id)
    assert (done.status, done.sent, done.skipped) == ("sent", 8, 1)


async def test_lost_jobs_are_handed_out_again_by_the_reconciler(
    merchant: MerchantOut, jobs: Jobs, smtp: Path, fast_sending: None
) -> None:
    campaign_id, addresses = await ready(merchant, 20)
    await dispatch.send_now(merchant.id, campaign_id)
    await control.pause(merchant.id, campaign_id)
    await asyncio.to_thread(jobs.drain)
    # Resumed by hand in the database, as if the resume's jobs died with Redis.
    await Campaign.update({Campaign.status: "sending"}).where(Campaign.id == campaign_id)
    figures = await control.reconcile(now=datetime.now(UTC) + timedelta(hours=1))
    left = (await progress(merchant.id, campaign_id)).queued
    assert figures["batches"] >= (1 if left else 0)
    await asyncio.to_thread(jobs.drain)
    assert await asyncio.to_thread(received, smtp, addresses) == dict.fromkeys(addresses, 1)
    assert (await progress(merchant.id, campaign_id)).status == "sent"


# --- SMTP answers ----------------------------------------------------------------------------


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    with recording_server() as handler:
        yield handler


async def test_bounces_suppress_and_temporary_refusals_are_retried(
    merchant: MerchantOut, jobs: Jobs, recorder: Recorder, fast_sending: None
) -> None:
    campaign_id, addresses = await ready(merchant, 12)
    recorder.rcpt_answers = {addresses[3]: "550 5.1.1 No such user", addresses[7]: "552 5.2.2 Full"}
    recorder.busy_left = 5  # the first five recipients are told to come back later
    await dispatch.send_now(merchant.id, campaign_id)
    await asyncio.to_thread(jobs.drain)
    async with asyncio.timeout(20):
        while (await progress(merchant.id, campaign_id)).status == "sending":
            await asyncio.sleep(0.1)  # the retries' delayed jobs
            await asyncio.to_thread(jobs.drain)
    bounced = {addresses[3], addresses[7]}
    assert sorted(recorder.accepted.elements()) == sorted(a for a in addresses if a not in bounced)
    done = await progress(merchant.id, campaign_id)
    assert (done.status, done.sent, done.bounced) == ("sent", 10, 2)
    assert all([await is_suppressed(merchant.id, a) for a in bounced])
    assert not await is_suppressed(merchant.id, addresses[0])
    reservation = await reservation_of(merchant, campaign_id)
    assert (reservation.spent, reservation.released) == (10, 2)


async def test_with_a_bounce_address_each_message_has_its_own_signed_return_path(
    merchant: MerchantOut, jobs: Jobs, recorder: Recorder, fast_sending: None
) -> None:
    campaign_id, addresses = await ready(merchant, 3)
    with settings_env({"LOYALMAIL_BOUNCE_ADDRESS": "bounces@lists.loyalmail.example"}):
        await dispatch.send_now(merchant.id, campaign_id)
        await asyncio.to_thread(jobs.drain)
        rows = await CampaignRecipient.select(CampaignRecipient.id, CampaignRecipient.email).where(
            CampaignRecipient.campaign == campaign_id
        )
        assert sorted(recorder.senders) == sorted(addresses)
        for row in rows:
            return_path = recorder.senders[row["email"]]
            assert return_path.startswith("bounces+") and return_path.endswith(
                "@lists.loyalmail.example"
            )
            assert verp.parse_return_path(return_path) == verp.RecipientRef(
                merchant.id, campaign_id, row["id"]
            )
    assert (await progress(merchant.id, campaign_id)).status == "sent"


async def test_a_policy_refusal_pauses_the_campaign_with_the_reason(
    merchant: MerchantOut, jobs: Jobs, recorder: Recorder, fast_sending: None
) -> None:
    campaign_id, addresses = await ready(merchant, 10)
    recorder.rcpt_answers = dict.fromkeys(addresses, "550 5.7.1 Relaying denied")
    await dispatch.send_now(merchant.id, campaign_id)
    await asyncio.to_thread(jobs.drain)
    paused = await progress(merchant.id, campaign_id)
    assert paused.status == "paused" and "5.7.1 Relaying denied" in paused.status_reason
    assert paused.bounced == 0 and paused.queued == 10
    assert not await is_suppressed(merchant.id, addresses[0])
    recorder.rcpt_answers = {}
    await control.resume(merchant.id, campaign_id)
    await asyncio.to_thread(jobs.drain)
    assert sorted(recorder.accepted.elements()) == sorted(addresses)
    assert (await progress(merchant.id, campaign_id)).status == "sent"


# --- schedules -------------------------------------------------------------------------------


async def test_schedules_start_on_time_and_wait_when_overdue(
    client: Any, merchant: MerchantOut, api_token: str, jobs: Jobs, smtp: Path, fast_sending: None
) -> None:
    campaign_id, addresses = await ready(merchant, 4)
    h = auth(api_token)
    past = await client.post(
        f"/api/campaigns/{campaign_id}/schedule", json={"at": "2020-01-01T09:00"}, headers=h
    )
    assert past.status_code == 422, past.text
    assert past.json().get("fields", {}).get("at") == "past", past.text
    # Year 1 in the shop's time zone is year 0 in UTC, which datetime cannot hold: was a 500.
    year_one = await client.post(
        f"/api/campaigns/{campaign_id}/schedule", json={"at": "0001-01-01T00:00"}, headers=h
    )
    assert year_one.status_code == 422 and year_one.json()["fields"]["at"] == "format"
    far = (datetime.now(UTC) + timedelta(days=3650)).isoformat()
    assert (
        await client.post(f"/api/campaigns/{campaign_id}/schedule", json={"at": far}, headers=h)
    ).status_code == 422
    at = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    # Without an offset the time is the shop's (Europe/Berlin).
    local = at.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Berlin")).replace(tzinfo=None)
    scheduled = await client.post(
        f"/api/campaigns/{campaign_id}/schedule", json={"at": local.isoformat()}, headers=h
    )
    assert scheduled.status_code == 200, scheduled.text
    assert scheduled.json()["status"] == "scheduled"
    assert datetime.fromisoformat(scheduled.json()["scheduled_at"]) == at
    # Still editable while scheduled.
    edited = await client.patch(
        f"/api/campaigns/{campaign_id}", json={"subject": "Winter sale"}, headers=h
    )
    assert edited.status_code == 200, edited.text
    assert await dispatch.start_due_campaigns(now=at - timedelta(seconds=1)) == []
    # The service was down for three hours: it waits for the marketer.
    assert await dispatch.start_due_campaigns(now=at + timedelta(hours=3)) == []
    overdue = await progress(merchant.id, campaign_id)
    assert overdue.status == "overdue" and overdue.status_reason
    # Rescheduled, it starts on its tick, once, however many schedulers tick.
    soon = datetime.now(UTC) + timedelta(minutes=5)
    await dispatch.schedule(merchant.id, campaign_id, ScheduleRequest(at=soon.isoformat()))
    ticks = await asyncio.gather(
        dispatch.start_due_campaigns(now=soon + timedelta(seconds=1)),
        dispatch.start_due_campaigns(now=soon + timedelta(seconds=1)),
    )
    assert sorted(ticks[0] + ticks[1]) == [campaign_id]
    await asyncio.to_thread(jobs.drain)
    assert await asyncio.to_thread(received, smtp, addresses) == dict.fromkeys(addresses, 1)
    message = (await asyncio.to_thread(mails_to, smtp, addresses[0]))[0]
    assert message["Subject"] == "Winter sale"
    gone = await client.delete(f"/api/campaigns/{campaign_id}/schedule", headers=h)
    assert gone.status_code == 409


async def test_unscheduled_campaign_is_a_draft_again(merchant: MerchantOut) -> None:
    await branded(merchant)
    await people(merchant, 1)
    campaign_id = await a_campaign(merchant)
    at = datetime.now(UTC) + timedelta(days=1)
    await dispatch.schedule(merchant.id, campaign_id, ScheduleRequest(at=at.isoformat()))
    back = await dispatch.unschedule(merchant.id, campaign_id)
    assert back.status == "draft" and back.scheduled_at is None
    assert await dispatch.start_due_campaigns(now=at + timedelta(seconds=1)) == []


async def test_pausing_a_finished_or_foreign_campaign_is_refused(
    client: Any, merchant: MerchantOut, api_token: str
) -> None:
    await branded(merchant)
    campaign_id = await a_campaign(merchant)
    h = auth(api_token)
    for action in ("pause", "resume", "cancel"):
        answer = await client.post(f"/api/campaigns/{campaign_id}/{action}", headers=h)
        assert answer.status_code == 409, (action, answer.text)
        assert answer.json()["detail"]
        foreign = await client.post(f"/api/campaigns/{campaign_id + 100_000}/{action}", headers=h)
        assert foreign.status_code == 404


# --- the command line ------------------------------------------------------------------------


async def test_the_command_line_sends_waits_and_controls(
    merchant: MerchantOut, jobs: Jobs, smtp: Path, fast_sending: None
) -> None:
    from typer.testing import CliRunner

    from loyalmail.cli import app
    from tests.conftest import TEST_REDIS_URL

    if jobs.kind != "redis":
        pytest.skip("without Redis the command runs its own worker; the Redis run covers it")
    campaign_id, addresses = await ready(merchant, 9)
    with settings_env({"LOYALMAIL_REDIS_URL": TEST_REDIS_URL}):

        def invoke(*args: str) -> Any:
            return CliRunner().invoke(app, ["campaign", *args, "--merchant", merchant.slug])

        sent = await asyncio.to_thread(invoke, "send", str(campaign_id), "--wait")
        assert sent.exit_code == 0, sent.output
        assert f"Campaign {campaign_id}: sent; 9 sent" in sent.output
        again = await asyncio.to_thread(invoke, "send", str(campaign_id))
        assert again.exit_code == 1 and "sent already" in again.output
        shown = await asyncio.to_thread(invoke, "progress", str(campaign_id))
        assert "0 remaining of 9" in shown.output
        paused = await asyncio.to_thread(invoke, "pause", str(campaign_id))
        assert paused.exit_code == 1 and "can be paused" in paused.output
    assert await asyncio.to_thread(received, smtp, addresses) == dict.fromkeys(addresses, 1)


# --- rates -----------------------------------------------------------------------------------


async def test_the_merchant_rate_holds_across_callers(jobs: Jobs) -> None:
    """Ten messages at five per second take at least one window boundary more than the
    first five: the limiter (dramatiq's window limiter, in memory or on Redis) makes the
    sixth wait for the next second, whichever caller asks."""
    import time

    from campaigns.sending import rates
    from tests.conftest import TEST_REDIS_URL

    values = {"LOYALMAIL_SEND_RATE_PER_MERCHANT": "5"}
    if jobs.kind == "redis":
        values["LOYALMAIL_REDIS_URL"] = TEST_REDIS_URL
    merchant_id = 900_000 + int(time.time() * 1000) % 100_000  # a window of its own
    with settings_env(values):
        # Start just after a window boundary, so the ten cannot all fit in one second.
        await asyncio.sleep(1.02 - time.time() % 1.0)
        started = time.time()
        await asyncio.gather(*(rates.wait_for_slot(merchant_id) for _ in range(10)))
        elapsed = time.time() - started
        assert elapsed >= 0.9, elapsed
        assert elapsed < 3.5, elapsed
