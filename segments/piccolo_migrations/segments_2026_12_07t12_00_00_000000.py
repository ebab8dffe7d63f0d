from loyalmail.migration_steps import statements_migration

ID = "2026-12-07T12:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "segments: every purchase moment on the customer row, for bought_between"

# "Bought between" asked the purchase index once per customer that the other conditions
# left (EXISTS, a semi-join): on 1M customers and 10M purchases, 74k probes of a 418 MB
# index, each a page fetched from outside shared buffers: ~190 ms on top of the ~200 ms scan
# every custom group pays (benchmarks/segments.py). Summaries that only rule customers in or
# out (purchase months as bits or text) still left edge cases to probe, and "row says so OR
# EXISTS (…)" is a correlated SubPlan, which PostgreSQL does not run in parallel workers.
#
# So PostgreSQL keeps every purchase moment of a customer, sorted, on the customer row
# (~120 bytes a buyer on average), kept by customers.queries with the other derived columns.
# The compiler answers from the row alone: width_bucket(x, sorted array) is a binary search
# that counts the moments <= x, so "a moment in [start, end)" is one comparison of two
# counts, exact to the microsecond, whatever the merchant's time zone. The purchase index is
# then read by nothing on PostgreSQL and goes; SQLite keeps the EXISTS and its index.
#
# The backfill rewrites every buyer's row once. Copied here, not imported, so this migration
# stays what it was.
POSTGRES_ONLY = [
    "ALTER TABLE customer ADD COLUMN IF NOT EXISTS purchase_times TIMESTAMPTZ[]",
    """
    UPDATE customer c SET purchase_times = t.moments
    FROM (
        SELECT customer, array_agg(occurred_at ORDER BY occurred_at) AS moments
        FROM purchase WHERE kind = 'purchase' GROUP BY customer
    ) t
    WHERE c.id = t.customer
    """,
    "DROP INDEX IF EXISTS purchase_customer_bought_ix",
]


async def forwards():
    return statements_migration(ID, "segments", DESCRIPTION, postgres_only=POSTGRES_ONLY)
