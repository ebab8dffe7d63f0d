"""The campaign report: SQL aggregates over the campaign's events and recipient rows.

Every number is one aggregate of ``tracking_event`` (merchant and campaign in each WHERE,
test sends' recipient 0 left out) or of the campaigns app's own figures (its progress and
its late bounces), so the report always agrees with the events it is made of.
"""

from __future__ import annotations

from datetime import UTC, datetime

from campaigns import services as campaigns
from campaigns.bounces.services import late_counts
from campaigns.sending.progress import progress
from loyalmail import database
from tracking.queries import PER_LINK, activity_sql, summary_sql
from tracking.schemas import ActivityHour, CampaignReport, LinkClicks
from tracking.tables import TrackingEvent


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


async def _summaries(merchant_id: int, campaign_ids: list[int]) -> dict[int, dict[str, int]]:
    """The per-person figures of each campaign (:func:`tracking.queries.summary_sql`); a
    campaign without events is absent."""
    rows = await TrackingEvent.raw(summary_sql(len(campaign_ids)), merchant_id, *campaign_ids)
    return {
        int(row["campaign"]): {key: int(value or 0) for key, value in row.items()} for row in rows
    }


_NO_EVENTS = dict.fromkeys(
    ("unique_opens", "unique_clicks", "opens", "clicks", "machine_opens", "unsubscribes"), 0
)


async def campaign_report(merchant_id: int, campaign_id: int) -> CampaignReport:
    """NotFound for another merchant's campaign (progress checks it first)."""
    sent = await progress(merchant_id, campaign_id)
    totals = (await _summaries(merchant_id, [campaign_id])).get(campaign_id, _NO_EVENTS)
    late = await late_counts(merchant_id, campaign_id)
    urls = await campaigns.campaign_links(merchant_id, campaign_id)
    per_link = {
        int(row["link"]): row
        for row in await TrackingEvent.raw(PER_LINK, merchant_id, campaign_id)
        if row["link"] is not None
    }
    links = [
        LinkClicks(
            number=number,
            url=url,
            clicks=int(per_link[number]["clicks"]) if number in per_link else 0,
            unique_clicks=int(per_link[number]["unique_clicks"]) if number in per_link else 0,
        )
        for number, url in enumerate(urls)
    ]
    engine = "postgres" if database.is_postgres() else "sqlite"
    activity = [
        ActivityHour(
            hour=datetime.strptime(str(row["hour"]), "%Y-%m-%d %H:%M").replace(tzinfo=UTC),
            opens=int(row["opens"]),
            clicks=int(row["clicks"]),
        )
        for row in await TrackingEvent.raw(activity_sql(engine), merchant_id, campaign_id)
    ]
    delivered = sent.sent
    return CampaignReport(
        campaign_id=campaign_id,
        status=sent.status,
        # The frozen rows, whatever became of them.
        recipients=sent.sent
        + sent.bounced
        + sent.failed
        + sent.skipped
        + sent.cancelled
        + sent.remaining,
        delivered=delivered,
        bounced=sent.bounced,
        bounced_later=late.get("hard", 0),
        complaints=late.get("complaint", 0),
        unique_opens=totals["unique_opens"],
        open_rate=_rate(totals["unique_opens"], delivered),
        machine_opens=totals["machine_opens"],
        opens=totals["opens"],
        unique_clicks=totals["unique_clicks"],
        click_rate=_rate(totals["unique_clicks"], delivered),
        click_to_open_rate=_rate(totals["unique_clicks"], totals["unique_opens"]),
        clicks=totals["clicks"],
        unsubscribes=totals["unsubscribes"],
        links=links,
        activity=activity,
    )
