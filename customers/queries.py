"""Named SQL of the customers app, in one place; every query runs on SQLite and PostgreSQL.

Placeholders are Piccolo's ``{}`` (bound as parameters by the driver, never interpolated).
Identifiers that vary (sort columns) come only from the allow-lists below, never from input.
Each query is exercised on both engines by tests/customers.
"""

from __future__ import annotations

from typing import Literal

from piccolo.columns.combination import WhereRaw
from piccolo.querystring import QueryString

from loyalmail import database

#: Columns the free-text search looks at. ``email_normalized`` is lower-cased already.
SEARCH_COLUMNS = ("email_normalized", "first_name", "last_name", "city", "postal_code")

#: Sort key of the customer list → column. Plain columns (no functions) so the indexes help
#: and keyset pagination can compare against the stored value of the last row.
SORT_COLUMNS: dict[str, str] = {
    "created_at": "created_at",
    "email": "email_normalized",
    "last_name": "last_name",
    "first_name": "first_name",
    "lifetime_value": "lifetime_value_minor",
    "purchase_count": "purchase_count",
    "last_purchase_at": "last_purchase_at",
    "city": "city",
    "country": "country",
}
#: The only sort column that can be NULL; NULLs always sort last, in both directions.
NULLABLE_SORT_COLUMNS = frozenset({"last_purchase_at"})

#: Sort key of the activity history → purchase column.
ACTIVITY_SORT_COLUMNS: dict[str, str] = {
    "occurred_at": "occurred_at",
    "kind": "kind",
    "amount": "amount_minor",
}

LIKE_ESCAPE = "!"


def like_pattern(text: str) -> str:
    """``%text%`` with LIKE's wildcards in ``text`` taken literally (escaped with ``!``)."""
    escaped = (
        text.lower()
        .replace(LIKE_ESCAPE, LIKE_ESCAPE * 2)
        .replace("%", LIKE_ESCAPE + "%")
        .replace("_", LIKE_ESCAPE + "_")
    )
    return f"%{escaped}%"


def search_clause(q: str) -> WhereRaw:
    """Case-insensitive substring search over :data:`SEARCH_COLUMNS` (lower() on both sides;
    SQLite's lower() folds ASCII only, PostgreSQL's folds all letters)."""
    pattern = like_pattern(q)
    sql = " OR ".join(
        f"lower({column}) LIKE {{}} ESCAPE '{LIKE_ESCAPE}'" for column in SEARCH_COLUMNS
    )
    return WhereRaw(f"({sql})", *([pattern] * len(SEARCH_COLUMNS)))


def order_by_terms(
    sort_column: str, order: Literal["asc", "desc"]
) -> list[tuple[list[QueryString], bool]]:
    """ORDER BY of the customer list as Piccolo ``order_by`` calls, (expressions, ascending):
    the sort column (NULLs last in both directions), then id as tie-break."""
    assert sort_column in SORT_COLUMNS.values()
    terms: list[tuple[list[QueryString], bool]] = []
    if sort_column in NULLABLE_SORT_COLUMNS:
        terms.append(([QueryString(f"{sort_column} IS NULL")], True))
    terms.append(([QueryString(sort_column), QueryString("id")], order == "asc"))
    return terms


def keyset_after(
    sort_column: str, order: Literal["asc", "desc"], last_value: object, last_id: int
) -> WhereRaw:
    """Rows strictly after (last_value, last_id) in :func:`order_by_terms`' order."""
    assert sort_column in SORT_COLUMNS.values()
    cmp = "<" if order == "desc" else ">"
    if last_value is None:
        # Already in the NULL tail: only NULL rows with a further id remain.
        return WhereRaw(f"({sort_column} IS NULL AND id {cmp} {{}})", last_id)
    tail = f" OR {sort_column} IS NULL" if sort_column in NULLABLE_SORT_COLUMNS else ""
    return WhereRaw(
        f"({sort_column} {cmp} {{}} OR ({sort_column} = {{}} AND id {cmp} {{}}){tail})",
        last_value,
        last_value,
        last_id,
    )


#: The customer columns derived from purchases, as ``column = (subquery)`` assignments over
#: ``customer``. Lifetime value = purchases − refunds + exchanges (an exchange's amount is the
#: signed difference it made); counts, first and last purchase count only purchases.
DERIVED_ASSIGNMENTS = """
    purchase_count = (
        SELECT COUNT(*) FROM purchase p WHERE p.customer = customer.id AND p.kind = 'purchase'),
    refund_count = (
        SELECT COUNT(*) FROM purchase p WHERE p.customer = customer.id AND p.kind = 'refund'),
    lifetime_value_minor = COALESCE((
        SELECT SUM(CASE WHEN p.kind = 'refund' THEN -p.amount_minor ELSE p.amount_minor END)
        FROM purchase p WHERE p.customer = customer.id), 0),
    first_purchase_at = (
        SELECT MIN(p.occurred_at) FROM purchase p
        WHERE p.customer = customer.id AND p.kind = 'purchase'),
    last_purchase_at = (
        SELECT MAX(p.occurred_at) FROM purchase p
        WHERE p.customer = customer.id AND p.kind = 'purchase')"""

#: PostgreSQL only: every purchase moment of the customer, sorted (NULL without purchases).
#: The segments' "bought between" reads it on the customer row instead of probing the
#: purchase index once per customer (segments migration 2026-12-07T12:00 says why).
PURCHASE_TIMES_ASSIGNMENT = """
    purchase_times = (
        SELECT array_agg(p.occurred_at ORDER BY p.occurred_at) FROM purchase p
        WHERE p.customer = customer.id AND p.kind = 'purchase')"""


def derived_assignments() -> str:
    """The derived columns' assignments for the engine in use."""
    if database.is_postgres():
        return f"{DERIVED_ASSIGNMENTS},{PURCHASE_TIMES_ASSIGNMENT}"
    return DERIVED_ASSIGNMENTS


def recompute_derived_sql() -> str:
    """One customer's derived columns, in the transaction that changed its purchases.
    Parameters: now (updated_at), customer id, merchant id."""
    return (
        f"UPDATE customer SET {derived_assignments()},"  # noqa: S608 - this module's constants
        " updated_at = {} WHERE id = {} AND merchant = {}"
    )


#: Insights that the derived columns do not carry.
PURCHASE_SUMS = """
SELECT
    COALESCE(SUM(CASE WHEN kind = 'refund' THEN amount_minor ELSE 0 END), 0) AS refund_total,
    COALESCE(SUM(CASE WHEN kind = 'purchase' THEN amount_minor ELSE 0 END), 0) AS purchase_total
FROM purchase WHERE customer = {} AND merchant = {}
"""

#: Dashboard totals by one aggregate over the merchant's customers.
DASHBOARD_TOTALS = """
SELECT
    COUNT(*) AS customers,
    COALESCE(SUM(CASE WHEN customer_type = 'loyal' THEN 1 ELSE 0 END), 0) AS loyal,
    COALESCE(SUM(CASE WHEN email_status = 'verified' THEN 1 ELSE 0 END), 0) AS verified,
    COALESCE(SUM(lifetime_value_minor), 0) AS sales_minor,
    COALESCE(SUM(purchase_count), 0) AS purchases,
    COALESCE(SUM(CASE WHEN purchase_count >= 2 THEN 1 ELSE 0 END), 0) AS returning_customers
FROM customer WHERE merchant = {}
"""


def birth_month_day_sql() -> str:
    """An expression giving the birth date as ``'MM-DD'``: a dialect variant per engine."""
    if database.is_postgres():
        return "to_char(birth_date, 'MM-DD')"
    # SQLite keeps dates as ISO text 'YYYY-MM-DD'.
    return "substr(birth_date, 6, 5)"


def birthdays_in_window(month_days: list[str], today_month_day: str) -> tuple[str, list[object]]:
    """Customers (ids) whose birthday falls on one of ``month_days``, in calendar order from
    today across the turn of the year (days before today's MM-DD belong to next year)."""
    md = birth_month_day_sql()
    placeholders = ", ".join("{}" for _ in month_days)
    # Only "{}" placeholders and the fixed expression above are interpolated; values are bound.
    sql = (
        f"SELECT id FROM customer WHERE merchant = {{}} AND birth_date IS NOT NULL"  # noqa: S608
        f" AND {md} IN ({placeholders})"
        f" ORDER BY CASE WHEN {md} >= {{}} THEN 0 ELSE 1 END, {md}, last_name, first_name, id"
        " LIMIT {}"
    )
    return sql, [*month_days, today_month_day]


# --- pauses (customers.services.preferences) ---------------------------------------------
# loyalmail.sql statements: sqlite3's "?" placeholders.

#: Subscribe again the next chunk of addresses whose pause has passed: only confirmed,
#: unsuppressed ones (the earlier opt-in still stands for them). Arguments: now (updated_at),
#: now (due), chunk size, now (re-checked on the row the UPDATE locks, so two jobs at once
#: resume each row once).
RESUME_DUE_PAUSES = """
UPDATE customer SET subscribed = TRUE, paused_until = NULL, unsubscribed_at = NULL,
                    updated_at = ?
WHERE id IN (
  SELECT id FROM customer
  WHERE paused_until IS NOT NULL AND paused_until <= ?
    AND email_status = 'verified' AND suppressed = FALSE AND subscribed = FALSE
  ORDER BY id LIMIT ?
) AND paused_until IS NOT NULL AND paused_until <= ?
RETURNING id, merchant, email
"""

#: What is left of passed pauses (suppressed or unconfirmed meanwhile): the pause ends, the
#: address stays out. Arguments: now (updated_at), now (due).
DROP_PASSED_PAUSES = """
UPDATE customer SET paused_until = NULL, updated_at = ?
WHERE paused_until IS NOT NULL AND paused_until <= ?
"""
