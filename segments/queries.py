"""Named SQL of the segments app, in one place; every statement runs on SQLite and PostgreSQL.

A target group is always ``customer c`` restricted by :data:`ELIGIBLE` (the addresses a
newsletter may go to) and by the compiled definition. Placeholders are Piccolo's ``{}``;
the only text interpolated below is fixed SQL from this module and from the compiler's
shapes, never a value.

The indexes in ``segments/piccolo_migrations`` are written for exactly these shapes: the
partial indexes repeat :data:`ELIGIBLE_INDEX_PREDICATE`, the birthday index repeats
:func:`month_day_sql`, the purchase index (SQLite) repeats the ``kind = 'purchase'`` of the
compiler's bought_between shape; change them together. ``benchmarks/segments.py`` times every
shape on a million customers.
"""

from __future__ import annotations

#: The language part of a locale ("de" of "de_AT"); locales are validated as xx or xx_YY.
LANGUAGE_SQL = "substr(c.locale, 1, 2)"

#: Verified, subscribed, not suppressed: the only addresses any newsletter may go to.
ELIGIBLE = (
    "c.merchant = {} AND c.email_status = 'verified' AND c.subscribed = TRUE"
    " AND c.suppressed = FALSE"
)
#: The same rule as an index predicate (no alias, no parameter).
ELIGIBLE_INDEX_PREDICATE = "email_status = 'verified' AND subscribed = TRUE AND suppressed = FALSE"


def month_day_sql(postgres: bool, column: str = "c.birth_date") -> str:
    """The birth date's month and day as one integer (1224); immutable on PostgreSQL, so it
    can be indexed (to_char is only stable)."""
    if postgres:
        return (
            f"(CAST(EXTRACT(MONTH FROM {column}) AS INTEGER) * 100"
            f" + CAST(EXTRACT(DAY FROM {column}) AS INTEGER))"
        )
    # SQLite keeps dates as ISO text: 'YYYY-MM-DD'.
    return f"CAST(strftime('%m%d', {column}) AS INTEGER)"


def _members(columns: str, condition: str) -> str:
    # Only fixed SQL of this module and the compiler's shapes are interpolated; values are bound.
    return f"SELECT {columns} FROM customer c WHERE {ELIGIBLE} AND {condition}"  # noqa: S608


def count_sql(condition: str) -> str:
    return _members("COUNT(*) AS n", condition)


def sample_sql(condition: str) -> str:
    columns = "c.id, c.email, c.first_name, c.last_name, c.customer_type, c.city, c.country"
    return _members(columns, condition) + " ORDER BY c.id LIMIT {}"


def audience_sql(condition: str) -> str:
    """The members as (customer_id, email, email_normalized, locale): the SELECT half of the
    campaign dispatch's one INSERT … SELECT. Addresses are unique per merchant
    (``customer_merchant_email_uq`` on the normalised address), so no member appears twice."""
    columns = (
        "c.id AS customer_id, c.email AS email, c.email_normalized AS email_normalized,"
        " c.locale AS locale"
    )
    return _members(columns, condition)


#: The merchant's distinct cities and custom field names, for the builder's suggestions.
DISTINCT_CITIES = (
    "SELECT city, COUNT(*) AS n FROM customer WHERE merchant = {} AND city <> ''"
    " GROUP BY city ORDER BY n DESC, city LIMIT {}"
)
