"""Where a send stands, counted from the recipient rows (the truth, not a counter that
could drift): one GROUP BY over the campaign's index, and the messages accepted in the
last minute for the rate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from campaigns.schemas import SendProgress
from campaigns.sending import queries as q
from loyalmail import sql
from loyalmail.errors import NotFound, _

#: The window the rate is measured over.
RATE_WINDOW = timedelta(seconds=60)


def as_moment(value: object) -> datetime | None:
    """A stored time as an aware datetime (SQLite may hand back ISO text)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def progress(merchant_id: int, campaign_id: int, now: datetime | None = None) -> SendProgress:
    moment = now or datetime.now(UTC)
    async with sql.read_transaction():
        rows = await sql.fetch(q.CAMPAIGN, campaign_id, merchant_id)
        if not rows:
            raise NotFound(_("Campaign not found."))
        counts = {
            str(r["status"]): int(r["n"]) for r in await sql.fetch(q.STATUS_COUNTS, campaign_id)
        }
        started = as_moment(rows[0]["started_at"])
        window_start = max(moment - RATE_WINDOW, started) if started else moment - RATE_WINDOW
        recent = await sql.fetch(q.SENT_SINCE, campaign_id, window_start)
    row = rows[0]
    seconds = max((moment - window_start).total_seconds(), 1.0)
    rate = int(recent[0]["n"]) / seconds if row["status"] == "sending" else 0.0
    queued, in_flight = counts.get("queued", 0), counts.get("sending", 0)
    remaining = queued + in_flight
    return SendProgress(
        campaign_id=campaign_id,
        status=row["status"],
        status_reason=row["status_reason"] or "",
        recipients=int(row["recipients"] or 0),
        sent=counts.get("sent", 0),
        bounced=counts.get("bounced", 0),
        failed=counts.get("failed", 0),
        skipped=counts.get("skipped", 0),
        cancelled=counts.get("cancelled", 0),
        queued=queued,
        in_flight=in_flight,
        remaining=remaining,
        rate_per_second=round(rate, 1),
        seconds_left=round(remaining / rate) if rate > 0 else None,
        scheduled_at=as_moment(row["scheduled_at"]),
        started_at=started,
        finished_at=as_moment(row["finished_at"]),
    )


async def recipient_counts(merchant_id: int, campaign_ids: list[int]) -> dict[int, tuple[int, int]]:
    """(recipients, delivered) of each of the merchant's ``campaign_ids`` that froze an
    audience, counted as :func:`progress` counts them; one query for all of them."""
    if not campaign_ids:
        return {}
    async with sql.read_transaction():
        rows = await sql.fetch(q.recipient_counts(len(campaign_ids)), merchant_id, *campaign_ids)
    return {int(r["campaign"]): (int(r["recipients"]), int(r["delivered"])) for r in rows}
