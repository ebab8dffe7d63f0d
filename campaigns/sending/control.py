"""A running send under control: hand batches to the workers, pause, resume, cancel, notice
the end, and the reconciler that makes Redis disposable.

PostgreSQL (or SQLite) holds the truth: which recipients are queued, claimed, sent or given
up. Redis only carries "work on batch N" messages. Losing them (a flush, a restart) delays
a send but loses nobody: the reconciler hands out again every batch that still has
recipients left and was handed out longer ago than ``reconcile_after_seconds``, and a
second job for a batch is harmless because claiming a recipient is a conditional UPDATE.

The end: when no recipient is queued or claimed, the campaign is ``sent`` and the rest of
its reservation goes back in the same commit. A cancel stops the queue at once; the rest of
the reservation goes back when the last live claim has been resolved, so the units of
messages accepted in that last moment are still spent, never released and spent twice.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from campaigns.schemas import SendProgress
from campaigns.sending import queries as q
from campaigns.sending.progress import progress
from campaigns.services.drafts import campaign_row
from loyalmail import database, sql
from loyalmail.errors import Conflict, _
from loyalmail.settings import get_settings
from quota import services as quota

log = logging.getLogger("loyalmail.sending")

#: Batches one enqueue round hands out at most (a reconciler round; the next takes the rest).
ENQUEUE_LIMIT = 5_000


def utc_now() -> datetime:
    return datetime.now(UTC)


async def enqueue_batches(campaign_id: int, batch_ids: list[int], delay_ms: int = 0) -> int:
    """Hand batches to the workers; returns how many were enqueued. A broker that is down
    is logged, not raised: the batches stay in the database and the reconciler hands them
    out once it is back."""
    from campaigns import actors

    enqueued = 0
    for batch_id in batch_ids:
        try:
            if delay_ms:
                actors.send_batch.send_with_options(args=(campaign_id, batch_id), delay=delay_ms)
            else:
                actors.send_batch.send(campaign_id, batch_id)
            enqueued += 1
        except Exception:
            log.exception("campaign %s: could not enqueue batch %s", campaign_id, batch_id)
            break
    return enqueued


async def move(
    merchant_id: int,
    campaign_id: int,
    to: str,
    reason: str,
    from_states: tuple[str, ...],
    now: datetime | None = None,
) -> bool:
    """Move the campaign to ``to`` (with the reason shown to the marketer) only from
    ``from_states``; False when it was in none of them."""
    moment = now or utc_now()

    async def attempt() -> bool:
        async with sql.write_transaction():
            return await sql.changed(
                q.move_campaign(from_states),
                to,
                reason[:300],
                moment,
                campaign_id,
                merchant_id,
                *from_states,
            )

    return await sql.with_retries(attempt)


async def pause(merchant_id: int, campaign_id: int, reason: str = "") -> SendProgress:
    """Stop handing out messages; each worker stops after the few it has in hand."""
    await campaign_row(merchant_id, campaign_id)  # another merchant's: 404
    if not await move(merchant_id, campaign_id, "paused", reason, ("sending",)):
        raise Conflict(_("Only a campaign that is being sent can be paused."))
    return await progress(merchant_id, campaign_id)


async def pause_by_itself(merchant_id: int, campaign_id: int, reason: str) -> bool:
    """The pipeline pauses a send whose errors pile up; the reason is shown to the marketer."""
    paused = await move(merchant_id, campaign_id, "paused", reason, ("sending",))
    if paused:
        log.warning("campaign %s paused itself: %s", campaign_id, reason)
    return paused


async def resume(merchant_id: int, campaign_id: int) -> SendProgress:
    """Go on where it stopped: every batch with recipients left is handed out again now."""
    await campaign_row(merchant_id, campaign_id)
    if not await move(merchant_id, campaign_id, "sending", "", ("paused",)):
        raise Conflict(_("Only a paused campaign can be resumed."))
    await hand_out_unfinished(campaign_id, older_than=utc_now() + timedelta(seconds=1))
    return await progress(merchant_id, campaign_id)


async def cancel(merchant_id: int, campaign_id: int) -> SendProgress:
    """Stop a running (or paused) send for good. Nobody still queued gets the message; the
    rest of the reservation is given back once, when the last message in flight is settled."""
    await campaign_row(merchant_id, campaign_id)
    moment = utc_now()

    async def attempt() -> bool:
        async with sql.write_transaction():
            if not await sql.changed(
                q.move_campaign(("sending", "paused")),
                "cancelled",
                "",
                moment,
                campaign_id,
                merchant_id,
                "sending",
                "paused",
            ):
                return False
            await sql.execute(q.CANCEL_QUEUED, campaign_id, moment)
            return True

    if not await sql.with_retries(attempt):
        raise Conflict(_("Only a campaign that is being sent can be cancelled."))
    await settle(campaign_id)
    return await progress(merchant_id, campaign_id)


async def settle(campaign_id: int, now: datetime | None = None) -> str | None:
    """Finish the campaign if nothing is left: ``sent`` (or a cancel completed), the rest of
    the reservation released in the same commit. Returns the new state, or None."""
    moment = now or utc_now()

    async def attempt() -> str | None:
        async with sql.write_transaction():
            lock = " FOR UPDATE" if database.is_postgres() else ""
            rows = await sql.fetch(q.CAMPAIGN_BY_ID + lock, campaign_id)
            if not rows:
                return None
            head = rows[0]
            if head["status"] == "sending":
                if await sql.fetch(q.ANY_LEFT, campaign_id):
                    return None
                if not await sql.changed(q.FINISH_CAMPAIGN, moment, moment, campaign_id):
                    return None
                await _release_rest(head, moment)
                return "sent"
            if head["status"] == "cancelled":
                if await sql.fetch(q.ANY_LIVE_LEASE, campaign_id, moment):
                    return None
                if not await sql.changed(q.CLOSE_CANCELLED, moment, campaign_id):
                    return None
                await sql.execute(q.CANCEL_QUEUED, campaign_id, moment)
                await _release_rest(head, moment)
                return "cancelled"
            return None

    return await sql.with_retries(attempt)


async def _release_rest(head: dict[str, Any], moment: datetime) -> None:
    if head["reservation_id"] is not None:
        await quota.release_rest_in_transaction(
            int(head["merchant"]), int(head["reservation_id"]), moment
        )


async def hand_out_unfinished(campaign_id: int, older_than: datetime) -> int:
    """Enqueue every batch that has recipients left and was handed out before
    ``older_than``, and note the time; returns how many."""
    moment = utc_now()
    async with sql.read_transaction():
        stale = await sql.fetch(q.STALE_BATCHES, campaign_id, older_than, moment, moment)
    ids = [int(row["id"]) for row in stale][:ENQUEUE_LIMIT]
    if not ids:
        return 0
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]

        async def touch(chunk: list[int] = chunk) -> None:
            async with sql.write_transaction():
                statement = q.TOUCH_BATCHES.format(ids=sql.placeholders(len(chunk)))
                await sql.execute(statement, moment, campaign_id, *chunk)

        await sql.with_retries(touch)
    return await enqueue_batches(campaign_id, ids)


async def reconcile(now: datetime | None = None) -> dict[str, int]:
    """The periodic safety net: hand out again the batches whose job was lost (Redis flushed
    or restarted, a worker killed), and finish the campaigns with nobody left. Returns
    figures for the log."""
    moment = now or utc_now()
    stale_before = moment - timedelta(seconds=get_settings().reconcile_after_seconds)
    async with sql.read_transaction():
        active = await sql.fetch(q.ACTIVE_CAMPAIGNS)
    figures = {"campaigns": len(active), "batches": 0, "finished": 0}
    for row in active:
        campaign_id = int(row["id"])
        if row["status"] == "sending":
            figures["batches"] += await hand_out_unfinished(campaign_id, stale_before)
        if await settle(campaign_id, moment) is not None:
            figures["finished"] += 1
    return figures
