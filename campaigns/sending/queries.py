"""The send pipeline's SQL, in one place; the same text on SQLite and PostgreSQL.

Every state change is a conditional statement: the campaign's status moves only from the
states its WHERE clause names, and a recipient is claimed, resolved or given back only
while its WHERE clause holds (its lease is ours, its status is still ``sending``). Zero
rows back means someone else got there first, and nothing changed. Statements run on the
open transaction with :mod:`loyalmail.sql` (``?`` placeholders).
"""

from __future__ import annotations

from loyalmail.sql import placeholders

#: Recipients a worker may still send to: queued and due, or claimed by a worker whose
#: lease ran out (it died or hangs). ``r`` is campaign_recipient; the two ``?`` are "now".
CLAIMABLE = (
    "((r.status = 'queued' AND (r.next_attempt_at IS NULL OR r.next_attempt_at <= ?))"
    " OR (r.status = 'sending' AND r.lease_until < ?))"
)

# --- the campaign ----------------------------------------------------------------------------

CAMPAIGN = """
SELECT id, merchant, name, subject, preheader, layout, blocks, sender_name, status,
       status_reason, scheduled_at, started_at, finished_at, recipients, reservation_id,
       updated_at
FROM campaign WHERE id = ? AND merchant = ?
"""

CAMPAIGN_BY_ID = """
SELECT id, merchant, status, reservation_id, recipients FROM campaign WHERE id = ?
"""


def move_campaign(from_states: tuple[str, ...]) -> str:
    """Set status (and reason) only from ``from_states``; RETURNING says whether it moved."""
    return (
        "UPDATE campaign SET status = ?, status_reason = ?, updated_at = ?"  # noqa: S608 - placeholders only
        f" WHERE id = ? AND merchant = ? AND status IN ({placeholders(len(from_states))})"
        " RETURNING id"
    )


START_CAMPAIGN = """
UPDATE campaign SET status = 'sending', status_reason = '', started_at = ?, updated_at = ?,
       scheduled_at = COALESCE(scheduled_at, ?)
WHERE id = ? AND merchant = ? AND status IN ('draft', 'scheduled', 'overdue')
RETURNING id
"""

RECORD_DISPATCH = """
UPDATE campaign SET recipients = ?, reservation_id = ? WHERE id = ? RETURNING id
"""

SCHEDULE_CAMPAIGN = """
UPDATE campaign SET status = 'scheduled', scheduled_at = ?, status_reason = '', updated_at = ?
WHERE id = ? AND merchant = ? AND status IN ('draft', 'scheduled', 'overdue')
RETURNING id
"""

UNSCHEDULE_CAMPAIGN = """
UPDATE campaign SET status = 'draft', scheduled_at = NULL, status_reason = '', updated_at = ?
WHERE id = ? AND merchant = ? AND status IN ('scheduled', 'overdue')
RETURNING id
"""

FINISH_CAMPAIGN = """
UPDATE campaign SET status = 'sent', finished_at = ?, updated_at = ?
WHERE id = ? AND status = 'sending'
RETURNING id
"""

CLOSE_CANCELLED = """
UPDATE campaign SET finished_at = ? WHERE id = ? AND status = 'cancelled' AND finished_at IS NULL
RETURNING id
"""

#: Scheduled campaigns whose time has come, oldest first (the tick locks them on PostgreSQL
#: with SKIP LOCKED so two schedulers never start one campaign twice).
DUE_CAMPAIGNS = """
SELECT id, merchant, scheduled_at FROM campaign
WHERE status = 'scheduled' AND scheduled_at <= ?
ORDER BY scheduled_at, id LIMIT ?
"""

#: Campaigns the reconciler looks after: sending, or cancelled with the reservation still open.
ACTIVE_CAMPAIGNS = """
SELECT id, merchant, status FROM campaign
WHERE status = 'sending'
   OR (status = 'cancelled' AND finished_at IS NULL AND started_at IS NOT NULL)
ORDER BY id
"""

# --- dispatch --------------------------------------------------------------------------------


def freeze_audience(audience_select: str) -> str:
    """One INSERT … SELECT of the audience into recipient rows; ``audience_select`` is the
    segments app's fixed SQL (customer_id, email, email_normalized, locale) over one
    merchant's customers, so it yields each address once (the customer table's unique
    (merchant, email_normalized) index). The unique (campaign, customer) index would refuse
    a second row for anyone; START_CAMPAIGN makes sure a campaign is frozen once.

    No ON CONFLICT and no foreign keys on this table (migration 2026-11-25T16:30): at
    1,000,000 recipients the speculative inserts and the three per-row foreign-key checks
    (each one locking the customer row it points at) took 45 of the freeze's 58 seconds.
    In customer order, so the (campaign, customer) index grows at its end instead of
    taking a million inserts all over it (a second faster at 800,000 rows, sort included)."""
    return (
        "INSERT INTO campaign_recipient (campaign, merchant, customer, email, email_normalized,"  # noqa: S608 - fixed SQL of the segments compiler
        " locale, status, attempts, lease_owner, detail)"
        " SELECT CAST(? AS INTEGER), CAST(? AS INTEGER), a.customer_id, a.email,"
        " a.email_normalized, a.locale, 'queued', 0, '', ''"
        f" FROM ({audience_select}) a ORDER BY a.customer_id"
    )


#: The freeze's sort in memory (PostgreSQL): 130 MB for 800,000 rows; smaller audiences take
#: what they need, larger ones spill to disk as before. For the freeze's transaction only.
FREEZE_SORT_MEMORY = "SET LOCAL work_mem = '192MB'"


#: The highest recipient id so far: the freeze's rows all come after it (ids only grow).
TOP_RECIPIENT = "SELECT COALESCE(MAX(id), 0) AS top FROM campaign_recipient"

#: The campaign's first and last recipient id after ``?`` (walks the primary key from each
#: end: no scan of the rows between).
FIRST_FROZEN = """
SELECT id FROM campaign_recipient WHERE campaign = ? AND id > ? ORDER BY id LIMIT 1
"""
LAST_FROZEN = """
SELECT id FROM campaign_recipient WHERE campaign = ? AND id > ? ORDER BY id DESC LIMIT 1
"""


def insert_batches(postgres: bool) -> str:
    """The frozen recipients' id span cut into ranges of ``size`` ids, one batch each, handed
    out when the campaign started; parameters: first, size, size, last, campaign, size, last,
    size, last, started. One freeze takes consecutive ids, so a range holds ``size``
    recipients (fewer only where another campaign's freeze took ids in between; a batch
    claims only its own campaign's rows). Computed from the two ends, not by numbering
    every row: 8,000 ranges instead of a window over 800,000 rows.

    The start time's CAST is PostgreSQL's alone: there a parameter in INSERT … SELECT needs
    its type, while SQLite gives ``TIMESTAMP WITH TIME ZONE`` numeric affinity and turned
    the time into the number 2026 (every batch looked stale to the reconciler at once, and
    the ORM could not read the row back)."""
    started = "CAST(? AS TIMESTAMP WITH TIME ZONE)" if postgres else "?"
    return f"""
WITH RECURSIVE cut(low) AS (
    SELECT CAST(? AS BIGINT)
    UNION ALL
    SELECT low + ? FROM cut WHERE low + ? <= ?
)
INSERT INTO campaign_batch (campaign, first_recipient, last_recipient, enqueued_at)
SELECT CAST(? AS INTEGER), low,
       CASE WHEN low + ? - 1 < ? THEN low + ? - 1 ELSE ? END,
       {started}
FROM cut ORDER BY low
"""  # noqa: S608 - fixed SQL only


BATCHES = "SELECT id FROM campaign_batch WHERE campaign = ? ORDER BY id"

BATCH = """
SELECT id, campaign, first_recipient, last_recipient FROM campaign_batch
WHERE id = ? AND campaign = ?
"""

#: Batches with recipients left that were handed out before ``?``: their job may be lost.
STALE_BATCHES = f"""
SELECT b.id FROM campaign_batch b
WHERE b.campaign = ? AND b.enqueued_at < ?
  AND EXISTS (
    SELECT 1 FROM campaign_recipient r
    WHERE r.campaign = b.campaign AND r.id BETWEEN b.first_recipient AND b.last_recipient
      AND {CLAIMABLE})
ORDER BY b.id
"""  # noqa: S608 - fixed SQL only

TOUCH_BATCHES = "UPDATE campaign_batch SET enqueued_at = ? WHERE campaign = ? AND id IN ({ids})"

# --- a batch ---------------------------------------------------------------------------------

CLAIM = f"""
UPDATE campaign_recipient AS r
SET status = 'sending', lease_owner = ?, lease_until = ?, attempts = attempts + 1
WHERE r.campaign = ? AND r.id BETWEEN ? AND ? AND {CLAIMABLE}
RETURNING id
"""  # noqa: S608 - fixed SQL only


def claimed(ids: int) -> str:
    """Our claimed recipients among ``ids`` with the customer as they are now: names for the
    message, and whether the address may still be mailed (unsubscribed, suppressed, erased
    or changed since the freeze: it may not)."""
    return (
        "SELECT r.id, r.email, r.email_normalized, r.locale AS frozen_locale, r.attempts,"  # noqa: S608 - placeholders only
        " c.id AS customer_id, c.first_name, c.last_name, c.gender, c.city, c.birth_date,"
        " c.lifetime_value_minor, c.locale, c.email_status, c.subscribed, c.suppressed,"
        " c.email_normalized AS current_address"
        " FROM campaign_recipient r LEFT JOIN customer c ON c.id = r.customer"
        " WHERE r.campaign = ? AND r.lease_owner = ? AND r.status = 'sending'"
        f" AND r.id IN ({placeholders(ids)}) ORDER BY r.id"
    )


EXTEND_LEASE = """
UPDATE campaign_recipient SET lease_until = ?
WHERE campaign = ? AND lease_owner = ? AND status = 'sending'
"""


def resolve(ids: int, status: str) -> str:
    """Our claimed recipients to a final ``status`` (sent, bounced, failed, skipped,
    cancelled) with a time and a detail; RETURNING the ids that were still ours."""
    stamp = "sent_at = ?" if status == "sent" else "next_attempt_at = ?"
    return (
        f"UPDATE campaign_recipient SET status = '{status}', {stamp}, detail = ?,"  # noqa: S608 - status is ours
        " lease_owner = '', lease_until = NULL"
        f" WHERE campaign = ? AND lease_owner = ? AND status = 'sending'"
        f" AND id IN ({placeholders(ids)}) RETURNING id"
    )


def requeue(ids: int) -> str:
    """Our claimed recipients back to the queue, due at ``?``; ``attempts`` minus ``?`` (a
    give-back after a pause is no attempt)."""
    return (
        "UPDATE campaign_recipient SET status = 'queued', next_attempt_at = ?, detail = ?,"  # noqa: S608 - placeholders only
        " attempts = attempts - ?, lease_owner = '', lease_until = NULL"
        " WHERE campaign = ? AND lease_owner = ? AND status = 'sending'"
        f" AND id IN ({placeholders(ids)}) RETURNING id"
    )


# --- progress and the end ---------------------------------------------------------------------

STATUS_COUNTS = """
SELECT status, COUNT(*) AS n FROM campaign_recipient WHERE campaign = ? GROUP BY status
"""


def recipient_counts(campaigns: int) -> str:
    """Frozen rows and accepted messages of ``campaigns`` campaigns (the merchant's ``?``
    first): the campaign list's figures in one pass over the (campaign, status) index."""
    return (
        "SELECT campaign, COUNT(*) AS recipients,"  # noqa: S608 - placeholders only
        " COUNT(CASE WHEN status = 'sent' THEN 1 END) AS delivered"
        " FROM campaign_recipient"
        f" WHERE merchant = ? AND campaign IN ({placeholders(campaigns)}) GROUP BY campaign"
    )


SENT_SINCE = """
SELECT COUNT(*) AS n FROM campaign_recipient
WHERE campaign = ? AND status = 'sent' AND sent_at >= ?
"""

#: Is anyone left to send to (queued, or claimed)?
ANY_LEFT = """
SELECT 1 AS left_over FROM campaign_recipient
WHERE campaign = ? AND status IN ('queued', 'sending') LIMIT 1
"""

#: Claims still alive (a worker is sending right now).
ANY_LIVE_LEASE = """
SELECT 1 AS live FROM campaign_recipient
WHERE campaign = ? AND status = 'sending' AND lease_until >= ? LIMIT 1
"""

CANCEL_QUEUED = """
UPDATE campaign_recipient SET status = 'cancelled', lease_owner = '', lease_until = NULL
WHERE campaign = ? AND (status = 'queued' OR (status = 'sending' AND lease_until < ?))
"""

# --- deliverability (campaigns.sending.deliverability) ----------------------------------------

#: The merchant's campaigns whose send started at ``?`` or later, newest first.
CAMPAIGNS_STARTED_SINCE = """
SELECT id, name, status, status_reason, started_at FROM campaign
WHERE merchant = ? AND started_at >= ?
ORDER BY started_at DESC, id DESC
"""

#: Per campaign started since ``?``: messages accepted (sent), refused at once (bounced: a
#: 5xx, a hard bounce) and given up after temporary failures (failed: soft). One pass over
#: the (campaign, status) index of each campaign; the merchant's ``?`` twice.
OUTCOMES_SINCE = """
SELECT r.campaign,
       COUNT(CASE WHEN r.status = 'sent' THEN 1 END) AS sent,
       COUNT(CASE WHEN r.status = 'bounced' THEN 1 END) AS refused,
       COUNT(CASE WHEN r.status = 'failed' THEN 1 END) AS failed
FROM campaign_recipient r
WHERE r.merchant = ? AND r.status IN ('sent', 'bounced', 'failed')
  AND r.campaign IN (SELECT c.id FROM campaign c WHERE c.merchant = ? AND c.started_at >= ?)
GROUP BY r.campaign
"""

#: Per campaign started since ``?``: recipients whose accepted message was reported back
#: later (campaign_bounce: webhooks, DSN, ARF), each counted once per kind; policy refusals
#: (5.7.x) count as soft. Only rows still ``sent``: a row refused at once is a hard bounce
#: already. The merchant's ``?`` three times.
LATE_REPORTS_SINCE = """
SELECT b.campaign,
       COUNT(DISTINCT CASE WHEN b.kind = 'hard' THEN b.recipient END) AS hard,
       COUNT(DISTINCT CASE WHEN b.kind IN ('soft', 'policy') THEN b.recipient END) AS soft,
       COUNT(DISTINCT CASE WHEN b.kind = 'complaint' THEN b.recipient END) AS complaints
FROM campaign_bounce b JOIN campaign_recipient r ON r.id = b.recipient
WHERE b.merchant = ? AND r.merchant = ? AND r.status = 'sent'
  AND b.campaign IN (SELECT c.id FROM campaign c WHERE c.merchant = ? AND c.started_at >= ?)
GROUP BY b.campaign
"""

#: One campaign's hard bounces (refused at once, or reported later for an accepted message)
#: and complaints: the small counts the auto-pause looks at first. Index ranges only:
#: (campaign, status) for the refused rows, (campaign, kind) for the reports.
PAUSE_EVENTS = """
SELECT
  (SELECT COUNT(*) FROM campaign_recipient WHERE campaign = ? AND status = 'bounced')
  + (SELECT COUNT(DISTINCT b.recipient) FROM campaign_bounce b
     JOIN campaign_recipient r ON r.id = b.recipient
     WHERE b.campaign = ? AND b.kind = 'hard' AND r.status = 'sent') AS hard,
  (SELECT COUNT(DISTINCT b.recipient) FROM campaign_bounce b
   JOIN campaign_recipient r ON r.id = b.recipient
   WHERE b.campaign = ? AND b.kind = 'complaint' AND r.status = 'sent') AS complaints
"""


def messages_up_to(statuses: tuple[str, ...]) -> str:
    """How many of the campaign's recipients (``?``) have one of ``statuses``, counted up to
    ``?`` at most: the auto-pause needs the exact number only while it is small enough for a
    rate to pass its limit, so a campaign of a million is never counted whole per batch."""
    return (
        "SELECT COUNT(*) AS n FROM (SELECT 1 AS one FROM campaign_recipient"  # noqa: S608 - placeholders only
        f" WHERE campaign = ? AND status IN ({placeholders(len(statuses))}) LIMIT ?) AS upto"
    )
