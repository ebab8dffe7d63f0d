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
from tracking.schemas import ActivityHour, CampaignReport, LinkClicks
from tracking.tables import TrackingEvent

_SCOPE = "merchant = {} AND campaign = {} AND recipient > 0"

#: Every per-person figure in one pass over the campaign's events, grouped by recipient:
#: people's opens and clicks (a click counts as an open: images may be blocked), recipients
#: whose only opens were machines', and those whose latest word was "unsubscribe" (an undo
#: within the hour takes it back).
SUMMARY = f"""
SELECT
  COUNT(CASE WHEN people_seen > 0 THEN 1 END) AS unique_opens,
  COUNT(CASE WHEN people_clicks > 0 THEN 1 END) AS unique_clicks,
  SUM(people_opens) AS opens,
  SUM(people_clicks) AS clicks,
  COUNT(CASE WHEN people_seen = 0 AND machine_opens > 0 THEN 1 END) AS machine_opens,
  COUNT(CASE WHEN left_at IS NOT NULL AND (back_at IS NULL OR back_at < left_at) THEN 1 END)
    AS unsubscribes
FROM (
  SELECT recipient,
         COUNT(CASE WHEN NOT machine AND kind IN ('open', 'click') THEN 1 END) AS people_seen,
         COUNT(CASE WHEN NOT machine AND kind = 'open' THEN 1 END) AS people_opens,
         COUNT(CASE WHEN NOT machine AND kind = 'click' THEN 1 END) AS people_clicks,
         COUNT(CASE WHEN machine AND kind = 'open' THEN 1 END) AS machine_opens,
         MAX(CASE WHEN kind = 'unsubscribe' THEN id END) AS left_at,
         MAX(CASE WHEN kind = 'resubscribe' THEN id END) AS back_at
  FROM tracking_event WHERE {_SCOPE}
  GROUP BY recipient
) per_recipient
"""  # noqa: S608 - fixed SQL only

PER_LINK = f"""
SELECT link, COUNT(*) AS clicks, COUNT(DISTINCT recipient) AS unique_clicks
FROM tracking_event WHERE {_SCOPE} AND kind = 'click' AND NOT machine
GROUP BY link ORDER BY link
"""  # noqa: S608 - fixed SQL only

#: The hour as text in both engines (SQLite keeps ISO text, PostgreSQL a timestamptz).
_HOUR = {
    "postgres": "to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:00')",
    "sqlite": "strftime('%Y-%m-%d %H:00', occurred_at)",
}


def activity_sql(engine: str) -> str:
    hour = _HOUR[engine]
    return (
        f"SELECT {hour} AS hour,"  # noqa: S608 - fixed SQL only
        " COUNT(CASE WHEN kind = 'open' THEN 1 END) AS opens,"
        " COUNT(CASE WHEN kind = 'click' THEN 1 END) AS clicks"
        f" FROM tracking_event WHERE {_SCOPE} AND kind IN ('open', 'click') AND NOT machine"
        f" GROUP BY {hour} ORDER BY 1"
    )


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


async def _one(sql: str, merchant_id: int, campaign_id: int) -> dict[str, int]:
    rows = await TrackingEvent.raw(sql, merchant_id, campaign_id)
    return {key: int(value or 0) for key, value in rows[0].items()}


async def campaign_report(merchant_id: int, campaign_id: int) -> CampaignReport:
    """NotFound for another merchant's campaign (progress checks it first)."""
    sent = await progress(merchant_id, campaign_id)
    totals = await _one(SUMMARY, merchant_id, campaign_id)
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
