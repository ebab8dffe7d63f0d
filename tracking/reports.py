"""The campaign report: SQL aggregates over the campaign's events and recipient rows.

Every number is one aggregate (merchant and campaign in each WHERE, test sends' recipient 0
left out) of ``tracking_event``, of the per-person and per-hour sums written in the same
transaction as the events (``tracking_person``, ``tracking_hour``: tracking.events), or of
the campaigns app's own figures (its progress and its late bounces), so the report always
agrees with the events it is made of.
"""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from campaigns import services as campaigns
from campaigns.bounces.services import late_counts
from campaigns.schemas import CampaignFigures, CampaignOut
from campaigns.sending.progress import progress, recipient_counts
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


async def campaign_figures(merchant_id: int, campaign_ids: list[int]) -> dict[int, CampaignFigures]:
    """The key figures of the merchant's ``campaign_ids`` as the report computes them, for the
    campaign list: one aggregate of the recipient rows and one of the events for all of
    them, whatever their number. Campaigns that froze no audience are absent."""
    counts = await recipient_counts(merchant_id, campaign_ids)
    if not counts:
        return {}
    totals = await _summaries(merchant_id, list(counts))
    figures = {}
    for campaign_id, (recipients, delivered) in counts.items():
        events = totals.get(campaign_id, _NO_EVENTS)
        figures[campaign_id] = CampaignFigures(
            recipients=recipients,
            delivered=delivered,
            unique_opens=events["unique_opens"],
            open_rate=_rate(events["unique_opens"], delivered),
            unique_clicks=events["unique_clicks"],
            click_rate=_rate(events["unique_clicks"], delivered),
            unsubscribes=events["unsubscribes"],
        )
    return figures


async def with_figures(merchant_id: int, listed: list[CampaignOut]) -> list[CampaignOut]:
    """``listed`` with the figures of those that started sending (the campaign list's)."""
    started = [c.id for c in listed if c.started_at is not None]
    figures = await campaign_figures(merchant_id, started) if started else {}
    return [
        msgspec.structs.replace(c, figures=figures[c.id]) if c.id in figures else c for c in listed
    ]
