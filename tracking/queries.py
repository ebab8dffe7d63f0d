"""The tracking app's SQL, in one place; the same text on SQLite and PostgreSQL (the hour of
the activity chart has a variant per engine). Piccolo's ``{}`` placeholders.

Every statement names the merchant and the campaign, and leaves out recipient 0 (test
sends). The definitions the report and the campaign list share:

* opened: a person's open or click (a click counts as an open: images may be blocked);
* clicked: a person's click;
* unsubscribed: the recipient's latest word was "unsubscribe" (an undo takes it back);
* machine only: opens by machines (privacy proxies, scanners), none by the person.
"""

from __future__ import annotations

_SCOPE = "merchant = {} AND campaign = {} AND recipient > 0"


def _slots(count: int) -> str:
    return ", ".join(["{}"] * count)


def summary_sql(campaigns: int) -> str:
    """Every per-person figure of ``campaigns`` campaigns (merchant, then the campaign ids),
    one row per campaign that has events: one pass over their events, grouped by recipient.
    ``left_at``/``back_at`` compare event ids, the order the events were stored in."""
    return f"""
SELECT
  campaign,
  COUNT(CASE WHEN people_seen > 0 THEN 1 END) AS unique_opens,
  COUNT(CASE WHEN people_clicks > 0 THEN 1 END) AS unique_clicks,
  SUM(people_opens) AS opens,
  SUM(people_clicks) AS clicks,
  COUNT(CASE WHEN people_seen = 0 AND machine_opens > 0 THEN 1 END) AS machine_opens,
  COUNT(CASE WHEN left_at IS NOT NULL AND (back_at IS NULL OR back_at < left_at) THEN 1 END)
    AS unsubscribes
FROM (
  SELECT campaign, recipient,
         COUNT(CASE WHEN NOT machine AND kind IN ('open', 'click') THEN 1 END) AS people_seen,
         COUNT(CASE WHEN NOT machine AND kind = 'open' THEN 1 END) AS people_opens,
         COUNT(CASE WHEN NOT machine AND kind = 'click' THEN 1 END) AS people_clicks,
         COUNT(CASE WHEN machine AND kind = 'open' THEN 1 END) AS machine_opens,
         MAX(CASE WHEN kind = 'unsubscribe' THEN id END) AS left_at,
         MAX(CASE WHEN kind = 'resubscribe' THEN id END) AS back_at
  FROM tracking_event
  WHERE merchant = {{}} AND campaign IN ({_slots(campaigns)}) AND recipient > 0
  GROUP BY campaign, recipient
) per_recipient
GROUP BY campaign
"""  # noqa: S608 - placeholders only


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
