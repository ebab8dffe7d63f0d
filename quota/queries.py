"""The ledger's SQL, in one place, and the two calls that run it on the open transaction.

Every balance change is one conditional statement whose WHERE clause carries the rule
(``… AND spent + reserved + expired + ? <= granted``) and whose RETURNING rows say whether it
held: zero rows means the rule would have broken and nothing changed. The same text runs on
both engines; only the placeholders differ (sqlite3 "?", asyncpg "$n"). Times are always
UTC-aware: SQLite stores them as ISO text (Piccolo's adapter), which then compares in order.
"""

from __future__ import annotations

from loyalmail.sql import changed, fetch, placeholders

__all__ = ["changed", "fetch", "placeholders"]

# --- sources -------------------------------------------------------------------------------

#: Sources a pool may draw on right now, in draw order: the soonest expiry first, packs
#: (no expiry) last and oldest first. On PostgreSQL the rows stay locked until commit, so two
#: reservations of one merchant plan one after the other; SQLite holds the write lock already.
DRAWABLE_SOURCES = """
SELECT id, kind, period, reference, granted, reserved, spent, expired, expires_at, created_at
FROM quota_source
WHERE merchant = ? AND kind IN ({kinds}) AND valid_from <= ?
  AND (expires_at IS NULL OR expires_at > ?)
  AND granted - spent - reserved - expired > 0
ORDER BY CASE WHEN expires_at IS NULL THEN 1 ELSE 0 END, expires_at, created_at, id
"""

#: The balance rule, held by the statement itself.
RESERVE_FROM_SOURCE = """
UPDATE quota_source SET reserved = reserved + ?
WHERE id = ? AND merchant = ? AND (expires_at IS NULL OR expires_at > ?)
  AND spent + reserved + expired + ? <= granted
RETURNING id
"""

#: Reserved units become spent (a message the SMTP server accepted).
SPEND_FROM_SOURCE = """
UPDATE quota_source SET reserved = reserved - ?, spent = spent + ?
WHERE id = ? AND reserved >= ?
RETURNING id
"""

#: Reserved units go back: available again, or expired when their source's time is over.
RELEASE_TO_SOURCE = """
UPDATE quota_source SET reserved = reserved - ?, expired = expired + ?
WHERE id = ? AND reserved >= ?
RETURNING id
"""

#: What is left of a source whose time is over; ``= ?`` pins the amount that was read.
EXPIRE_SOURCE = """
UPDATE quota_source SET expired = expired + ?
WHERE id = ? AND expires_at <= ? AND granted - spent - reserved - expired = ?
RETURNING id
"""

EXPIRABLE_SOURCES = """
SELECT id, merchant, expired, granted - spent - reserved - expired AS available
FROM quota_source
WHERE expires_at <= ? AND granted - spent - reserved - expired > 0 {merchant_filter}
ORDER BY id
"""

INSERT_SOURCE = """
INSERT INTO quota_source (merchant, kind, period, reference, granted, reserved, spent, expired,
  basis_loyal, basis_counted_at, valid_from, expires_at, created_at)
VALUES (?, ?, ?, ?, ?, 0, 0, 0, ?, ?, ?, ?, ?)
ON CONFLICT (merchant, kind, period, reference) DO NOTHING
RETURNING id
"""

#: A first month's allowance only ever grows with the loyal customers counted (see grants).
TOP_UP_SOURCE = """
UPDATE quota_source SET granted = granted + ?, basis_loyal = ?, basis_counted_at = ?
WHERE id = ? AND granted = ?
RETURNING id
"""

# --- reservations --------------------------------------------------------------------------

INSERT_RESERVATION = """
INSERT INTO quota_reservation (merchant, key, pool, purpose, units, spent, released, expired,
  created_at, closed_at)
VALUES (?, ?, ?, ?, ?, 0, 0, 0, ?, NULL)
ON CONFLICT (merchant, key) DO NOTHING
RETURNING id
"""

RESERVATION_BY_KEY = """
SELECT id, merchant, key, pool, purpose, units, spent, released, expired, created_at, closed_at
FROM quota_reservation WHERE merchant = ? AND key = ?
"""

RESERVATION_BY_ID = """
SELECT id, merchant, key, pool, purpose, units, spent, released, expired, created_at, closed_at
FROM quota_reservation WHERE id = ? AND merchant = ?
"""

INSERT_PART = """
INSERT INTO quota_reservation_part (reservation, source, position, units, spent, released,
  expired)
VALUES (?, ?, ?, ?, 0, 0, 0)
"""

#: A reservation's parts with what each still holds, in draw order; ``expires_at <= now``
#: says the source's time is over (its released units expire).
OPEN_PARTS = """
SELECT p.id, p.source, p.position, p.units - p.spent - p.released - p.expired AS open_units,
  s.expires_at
FROM quota_reservation_part p JOIN quota_source s ON s.id = p.source
WHERE p.reservation = ? AND p.units - p.spent - p.released - p.expired > 0
ORDER BY p.position
"""

SPEND_FROM_PART = """
UPDATE quota_reservation_part SET spent = spent + ?
WHERE id = ? AND spent + released + expired + ? <= units
RETURNING id
"""

RELEASE_FROM_PART = """
UPDATE quota_reservation_part SET released = released + ?, expired = expired + ?
WHERE id = ? AND spent + released + expired + ? + ? <= units
RETURNING id
"""

RESOLVE_RESERVATION = """
UPDATE quota_reservation SET spent = spent + ?, released = released + ?, expired = expired + ?
WHERE id = ? AND closed_at IS NULL AND spent + released + expired + ? + ? + ? <= units
RETURNING id
"""

CLOSE_RESERVATION = """
UPDATE quota_reservation SET closed_at = ? WHERE id = ? AND closed_at IS NULL RETURNING id
"""

# --- journal -------------------------------------------------------------------------------

INSERT_ENTRY = """
INSERT INTO quota_entry (merchant, kind, units, source, reservation, key, note, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (merchant, key) DO NOTHING
RETURNING id
"""

#: A grant or purchase, with what it was computed from (the history shows these figures).
INSERT_SOURCE_ENTRY = """
INSERT INTO quota_entry (merchant, kind, units, source, reservation, key, note, basis_loyal,
  top_up, packs, created_at)
VALUES (?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, ?)
ON CONFLICT (merchant, key) DO NOTHING
RETURNING id
"""

#: Which of a batch's keys are in the journal already (the per-recipient idempotency).
KNOWN_KEYS = "SELECT key FROM quota_entry WHERE merchant = ? AND key IN ({keys})"


def insert_unit_entries(count: int) -> str:
    """One journal row per unit (merchant, kind, source, reservation, key, created_at each)."""
    rows = ", ".join(["(?, ?, 1, ?, ?, ?, '', ?)"] * count)
    return (
        "INSERT INTO quota_entry (merchant, kind, units, source, reservation, key, note,"  # noqa: S608 - only placeholders vary
        f" created_at) VALUES {rows} ON CONFLICT (merchant, key) DO NOTHING RETURNING id"
    )
