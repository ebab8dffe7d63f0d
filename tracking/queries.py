"""The tracking app's SQL, in one place; the same text on SQLite and PostgreSQL (the hour of
the activity chart has a variant per engine). Piccolo's ``{}`` placeholders (the
writer's statements at the end: sqlite3's ``?``).

Every statement names the merchant and the campaign, and leaves out recipient 0 (test
sends). The events' index is (campaign, kind, recipient): a campaign's events of one kind
come out of it in recipient order, which the lists of people walk page by page.

The definitions, shared by the report, the campaign list and the lists of people:

* opened: a person's open or click (a click counts as an open: images may be blocked);
* clicked: a person's click;
* unsubscribed: the recipient's latest word was "unsubscribe" (an undo takes it back);
* machine only: opens by machines (privacy proxies, scanners), none by the person.
"""

from __future__ import annotations

from typing import get_args

from tracking.schemas import Activity

_SCOPE = "merchant = {} AND campaign = {} AND recipient > 0"


def _slots(count: int) -> str:
    return ", ".join(["{}"] * count)


def summary_sql(campaigns: int) -> str:
    """Every per-person figure of ``campaigns`` campaigns (merchant, then the campaign ids),
    one row per campaign that has events: one pass over the people's added-up rows
    (``tracking_person``, written with the events), not over every event."""
    return f"""
SELECT
  campaign,
  COUNT(CASE WHEN opens + clicks > 0 THEN 1 END) AS unique_opens,
  COUNT(CASE WHEN clicks > 0 THEN 1 END) AS unique_clicks,
  SUM(opens) AS opens,
  SUM(clicks) AS clicks,
  COUNT(CASE WHEN opens + clicks = 0 AND machine_opens > 0 THEN 1 END) AS machine_opens,
  COUNT(CASE WHEN left_at IS NOT NULL AND (back_at IS NULL OR back_at < left_at) THEN 1 END)
    AS unsubscribes
FROM tracking_person
WHERE merchant = {{}} AND campaign IN ({_slots(campaigns)}) AND recipient > 0
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
    """People's opens and clicks per hour, from the hours added up as events were written."""
    hour = _HOUR[engine].replace("occurred_at", "hour")
    return (
        f"SELECT {hour} AS hour, SUM(opens) AS opens, SUM(clicks) AS clicks"  # noqa: S608 - fixed SQL only
        " FROM tracking_hour WHERE merchant = {} AND campaign = {}"
        f" GROUP BY {hour} ORDER BY 1"
    )


# --- the lists of people ----------------------------------------------------------------------

ACTIVITIES: tuple[Activity, ...] = get_args(Activity)

#: Another event of the same recipient (``e`` is the outer event).
_SAME = "o.campaign = e.campaign AND o.recipient = e.recipient AND o.merchant = e.merchant"


#: Ends the subquery of :func:`_none` on PostgreSQL (see there); SQLite runs a correlated
#: subquery per row anyway.
_FENCE = {"postgres": " OFFSET 0", "sqlite": ""}


def _none(condition: str) -> str:
    """No other event of the recipient meets ``condition``; ``{fence}`` is :data:`_FENCE`.

    PostgreSQL turns a plain NOT EXISTS into an anti-join, and when it guesses that few rows
    pass, hashes all the campaign's events (0.5 s at a million) instead of walking the index
    until the page is full. OFFSET 0 keeps the subquery a lookup per candidate (a subplan,
    which it also guesses half the rows pass: the walk then looks cheap, as it is)."""
    return (
        "NOT EXISTS (SELECT 1 FROM tracking_event o"  # noqa: S608 - fixed SQL only
        f" WHERE {condition} AND {_SAME}{{fence}})"
    )


#: Per list: the event kinds that put a recipient on it, with the rule each event must pass.
#: A recipient is on the list when one of its events passes (see the module's definitions).
_MEMBERSHIP: dict[Activity, tuple[tuple[str, str], ...]] = {
    "opened": (("open", "NOT e.machine"), ("click", "NOT e.machine")),
    "clicked": (("click", "NOT e.machine"),),
    # An unsubscribe that no later resubscribe took back.
    "unsubscribed": (("unsubscribe", _none("o.kind = 'resubscribe' AND o.id > e.id")),),
    "machine_only": (
        ("open", "e.machine AND " + _none("o.kind IN ('open', 'click') AND NOT o.machine")),
    ),
}

#: The events whose time is the row's ``first_at``.
_FIRST: dict[Activity, str] = {
    "opened": "e.kind IN ('open', 'click') AND NOT e.machine",
    "clicked": "e.kind = 'click' AND NOT e.machine",
    "unsubscribed": "e.kind = 'unsubscribe'",
    "machine_only": "e.kind = 'open' AND e.machine",
}


def _walk(kind: str, rule: str) -> str:
    """A page of the recipients after ``{}`` with a ``kind`` event that passes ``rule``, in id
    order: an index range scan that stops once the page is full (merchant, campaign, after,
    limit)."""
    return (
        "SELECT DISTINCT e.recipient FROM tracking_event e"  # noqa: S608 - fixed SQL only
        f" WHERE e.merchant = {{}} AND e.campaign = {{}} AND e.kind = '{kind}'"
        f" AND e.recipient > {{}} AND {rule} ORDER BY e.recipient LIMIT {{}}"
    )


def people_sql(activity: Activity, engine: str) -> tuple[str, int]:
    """One page of a list of people with each one's figures, and how many walks it has
    (``engine``: postgres or sqlite).

    Arguments: (merchant, campaign, after, limit) once per walk, then the page's limit, then
    campaign and merchant. The page is the first ``limit`` recipients of the walks together
    (each walk is cut at ``limit`` too); their figures come from their own events only, found
    by (campaign, kind, recipient) lookups."""
    walks = _MEMBERSHIP[activity]
    members = " UNION ".join(
        f"SELECT recipient FROM ({_walk(kind, rule.format(fence=_FENCE[engine]))}) w{n}"  # noqa: S608 - fixed SQL only
        for n, (kind, rule) in enumerate(walks)
    )
    sql = f"""
WITH page AS ({members} ORDER BY recipient LIMIT {{}})
SELECT e.recipient,
       MIN(CASE WHEN {_FIRST[activity]} THEN e.occurred_at END) AS first_at,
       COUNT(CASE WHEN e.kind = 'open' AND NOT e.machine THEN 1 END) AS opens,
       COUNT(CASE WHEN e.kind = 'click' AND NOT e.machine THEN 1 END) AS clicks,
       COUNT(CASE WHEN e.kind = 'open' AND e.machine THEN 1 END) AS machine_opens
FROM page JOIN tracking_event e
  ON e.campaign = {{}} AND e.kind IN ('open', 'click', 'unsubscribe')
 AND e.recipient = page.recipient
WHERE e.merchant = {{}}
GROUP BY e.recipient
ORDER BY e.recipient
"""  # noqa: S608 - fixed SQL only
    return sql, len(walks)


# --- the added-up tables (tracking.events writes them with the events) ---------------------
# loyalmail.sql statements: sqlite3's "?" placeholders.


def _later(column: str) -> str:
    """The later of the stored and the new time, either of them possibly NULL (the same
    text on both engines: PostgreSQL's GREATEST skips NULLs, SQLite's MAX returns one)."""
    old, new = f"tracking_person.{column}", f"excluded.{column}"
    return (
        f"CASE WHEN {new} IS NULL THEN {old} WHEN {old} IS NULL OR {new} > {old}"
        f" THEN {new} ELSE {old} END"
    )


def add_people_sql(rows: int) -> str:
    """Add ``rows`` recipients' counts (merchant, campaign, recipient, opens, clicks, machine
    opens, left at, back at); one row per (campaign, recipient) in a statement."""
    one = "(?, ?, ?, ?, ?, ?, ?, ?)"
    return (
        "INSERT INTO tracking_person (merchant, campaign, recipient, opens, clicks,"  # noqa: S608 - placeholders only
        " machine_opens, left_at, back_at) VALUES " + ", ".join([one] * rows) + ""
        " ON CONFLICT (campaign, recipient) DO UPDATE SET"
        " opens = tracking_person.opens + excluded.opens,"
        " clicks = tracking_person.clicks + excluded.clicks,"
        " machine_opens = tracking_person.machine_opens + excluded.machine_opens,"
        f" left_at = {_later('left_at')}, back_at = {_later('back_at')}"
    )


def add_hours_sql(rows: int) -> str:
    """Add ``rows`` hours' counts (merchant, campaign, hour, opens, clicks)."""
    one = "(?, ?, ?, ?, ?)"
    return (
        "INSERT INTO tracking_hour (merchant, campaign, hour, opens, clicks) VALUES "  # noqa: S608 - placeholders only
        + ", ".join([one] * rows)
        + " ON CONFLICT (campaign, hour) DO UPDATE SET"
        " opens = tracking_hour.opens + excluded.opens,"
        " clicks = tracking_hour.clicks + excluded.clicks"
    )
