"""Benchmark: a campaign's report and its lists of people on a campaign of a million.

    uv run python benchmarks/report.py --quick     # 50,000 recipients
    uv run python benchmarks/report.py             # 1,000,000 recipients
    uv run python benchmarks/report.py --skip-build  # the data of the last run again

PostgreSQL (``--database-url``, dropped and made again unless ``--skip-build``; its name must
contain "bench") gets one merchant with ``--recipients`` customers, a sent campaign with a
recipient row for each, and the events a real campaign of that size collects: three in ten
recipients open (one to three times), one in seven only through a privacy proxy (machine
opens), one in sixteen clicks one of three links, three in a thousand unsubscribe (one in
ten of them undoes it). Written with generate_series in a few statements, and the
per-person and per-hour sums made from them by the migration's backfill: the benchmark times
reading, not writing.

Timed through the app's own functions (median of five after one warm-up): the report
(``tracking.reports.campaign_report``: every figure, per-link clicks, activity per hour), the
campaign list's figures for that campaign, the first and a middle page of each list of
people, and the whole "clicked" list as CSV. Target (issue 7): the report loads in under a
second for a 1,000,000-recipient campaign. The last line is one JSON object of the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.measure import RssSampler, fresh_database  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/loyalmail_bench_report"
TARGET_REPORT_MS = 1000.0
BACKFILL = "tracking.piccolo_migrations.tracking_2026_11_25t18_38_00_000000"
LINKS = ("https://shop.example/autumn", "https://shop.example/members", "https://shop.example/")

CUSTOMERS = """
INSERT INTO customer (merchant, email, email_normalized, first_name, last_name, locale,
                      email_status, subscribed)
SELECT $1, 'Reader' || g || '@Example.com', 'reader' || g || '@example.com',
       'Kim' || (g % 997), 'Berg' || (g % 991), 'de', 'verified', TRUE
FROM generate_series(1, $2) AS g
"""

CAMPAIGN = """
INSERT INTO campaign (merchant, name, subject, preheader, audience_predefined, layout, blocks,
                      sender_name, status, status_reason, started_at, finished_at, recipients,
                      created_at, updated_at)
VALUES ($1, 'Benchmark', 'Hello', '', 'all_customers', 'classic', '[]', '', 'sent', '',
        $2, $2, $3, $2, $2)
RETURNING id
"""

RECIPIENTS = """
INSERT INTO campaign_recipient (campaign, merchant, customer, email, email_normalized, locale,
                                status, attempts, lease_owner, detail, sent_at)
SELECT $1, $2, c.id, c.email, c.email_normalized, 'de', 'sent', 1, '', '', $3
FROM customer c WHERE c.merchant = $2 ORDER BY c.id
"""

# Each recipient's fate from a hash of its id (h, 0..9999), so the figures are the same every
# build: < 3000 opens as a person (1–3 times; some of them also through a proxy), 3000–4400
# machine opens only, < 625 clicks (1–2), < 30 unsubscribes (< 3 undone later).
# The recipient key is a BIGINT; hashed as INTEGER (a build's ids fit) for the same figures.
EVENTS = """
WITH r AS (
  SELECT id, (hashint4(CAST(id AS INTEGER)) & 2147483647) % 10000 AS h FROM campaign_recipient
  WHERE campaign = $1
)
INSERT INTO tracking_event (merchant, campaign, recipient, kind, link, machine, reason,
                            occurred_at)
SELECT $2, $1, r.id, e.kind, e.link, e.machine, e.reason,
       $3::timestamptz + ((r.h * 37 + e.n * 977) % 259200) * INTERVAL '1 second'
FROM r
CROSS JOIN LATERAL (
  SELECT 'open' AS kind, NULL::int AS link, FALSE AS machine, '' AS reason, n
  FROM generate_series(1, 1 + r.h % 3) AS n WHERE r.h < 3000
  UNION ALL
  SELECT 'open', NULL, TRUE, 'apple-mpp', 0 WHERE r.h BETWEEN 2500 AND 4399
  UNION ALL
  SELECT 'click', (r.h + n) % 3, FALSE, '', n
  FROM generate_series(1, 1 + r.h % 2) AS n WHERE r.h < 625
  UNION ALL
  SELECT 'unsubscribe', NULL, FALSE, '', 9 WHERE r.h < 30
  UNION ALL
  SELECT 'resubscribe', NULL, FALSE, '', 10 WHERE r.h < 3
) e
ORDER BY 8
"""


async def build(url: str, recipients: int) -> tuple[int, int]:
    import asyncpg

    from tests.conftest import make_merchant

    await fresh_database(url)
    merchant = await make_merchant()
    started = time.perf_counter()
    conn = await asyncpg.connect(url)
    try:
        sent_at = await conn.fetchval("SELECT now() - INTERVAL '3 days'")
        await conn.execute(CUSTOMERS, merchant.id, recipients)
        campaign_id = await conn.fetchval(CAMPAIGN, merchant.id, sent_at, recipients)
        await conn.executemany(
            "INSERT INTO campaign_link (campaign, number, url) VALUES ($1, $2, $3)",
            [(campaign_id, number, url) for number, url in enumerate(LINKS)],
        )
        await conn.execute(RECIPIENTS, campaign_id, merchant.id, sent_at)
        await conn.execute(EVENTS, campaign_id, merchant.id, sent_at)
        # The sums the app writes with each batch of events, made here as the upgrade makes
        # them for earlier events (the migration's own statements).
        backfill = importlib.import_module(BACKFILL)
        await conn.execute(backfill.PEOPLE)
        await conn.execute(backfill.HOURS.format(hour=backfill.HOUR["postgres"]))
        await conn.execute("ANALYZE")
        await conn.execute(
            "CREATE TABLE bench_meta AS SELECT $1::int AS merchant, $2::int AS campaign",
            merchant.id,
            campaign_id,
        )
    finally:
        await conn.close()
    print(f"built {recipients:,} recipients in {time.perf_counter() - started:.1f} s")
    return merchant.id, int(campaign_id)


async def reuse(url: str) -> tuple[int, int]:
    import asyncpg

    from loyalmail import database

    database.use_engine(database.make_engine(url))
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow("SELECT merchant, campaign FROM bench_meta")
    finally:
        await conn.close()
    assert row is not None, "no data yet: run without --skip-build first"
    return int(row["merchant"]), int(row["campaign"])


async def median_ms(action: Callable[[], Awaitable[object]], runs: int = 5) -> float:
    await action()  # warm-up: plans and caches, as a page loaded before
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def measure(merchant_id: int, campaign_id: int) -> dict[str, Any]:
    from tracking import people, reports

    figures: dict[str, Any] = {}
    report = await reports.campaign_report(merchant_id, campaign_id)
    figures["recipients"] = report.recipients
    figures["events"] = report.opens + report.clicks
    figures["report_ms"] = await median_ms(
        lambda: reports.campaign_report(merchant_id, campaign_id)
    )
    figures["list_figures_ms"] = await median_ms(
        lambda: reports.campaign_figures(merchant_id, [campaign_id])
    )
    middle = report.recipients // 2

    def page(activity: str, after: int) -> Callable[[], Awaitable[object]]:
        return lambda: people.people_page(
            merchant_id, campaign_id, activity, after=after, limit=100
        )

    for activity in ("opened", "clicked", "unsubscribed", "machine_only"):
        figures[f"{activity}_first_page_ms"] = await median_ms(page(activity, 0))
        figures[f"{activity}_middle_page_ms"] = await median_ms(page(activity, middle))

    async def export() -> int:
        size = 0
        async for chunk in people.csv_chunks(merchant_id, campaign_id, "clicked"):
            size += len(chunk)
        return size

    started = time.perf_counter()
    with RssSampler() as sampler:
        size = await export()
    seconds = time.perf_counter() - started
    figures["clicked_csv_people"] = report.unique_clicks
    figures["clicked_csv_seconds"] = round(seconds, 2)
    figures["clicked_csv_bytes"] = size
    figures["export_peak_rss_mib"] = round(sampler.peak / 2**20, 1)
    figures["unique_opens"] = report.unique_opens
    figures["machine_opens"] = report.machine_opens
    figures["unsubscribes"] = report.unsubscribes
    return figures


def print_table(figures: dict[str, Any]) -> None:
    rows = [
        ("what", "median ms", "target"),
        ("report (every figure, links, activity)", f"{figures['report_ms']:.0f}", "< 1000"),
        ("campaign list figures of it", f"{figures['list_figures_ms']:.0f}", ""),
    ]
    for activity in ("opened", "clicked", "unsubscribed", "machine_only"):
        rows.append(
            (f"{activity}: first page of 100", f"{figures[f'{activity}_first_page_ms']:.1f}", "")
        )
        rows.append(
            (f"{activity}: middle page of 100", f"{figures[f'{activity}_middle_page_ms']:.1f}", "")
        )
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for n, row in enumerate(rows):
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))
    print(
        f"\n{figures['recipients']:,} recipients, {figures['unique_opens']:,} opened,"
        f" {figures['machine_opens']:,} machine opens only, {figures['unsubscribes']:,}"
        f" unsubscribed; the clicked list ({figures['clicked_csv_people']:,} people,"
        f" {figures['clicked_csv_bytes'] / 2**20:.1f} MiB of CSV) exported in"
        f" {figures['clicked_csv_seconds']:.2f} s, peak RSS {figures['export_peak_rss_mib']} MiB"
    )
    met = figures["report_ms"] < TARGET_REPORT_MS
    print(f"target: the report under {TARGET_REPORT_MS:.0f} ms {'met' if met else 'MISSED'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--quick", action="store_true", help="50,000 recipients")
    parser.add_argument("--recipients", type=int, default=1_000_000)
    parser.add_argument("--skip-build", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.recipients = 50_000
    os.environ.setdefault("LOYALMAIL_LOG_LEVEL", "WARNING")

    async def run() -> dict[str, Any]:
        from loyalmail import database

        if args.skip_build:
            merchant_id, campaign_id = await reuse(args.database_url)
        else:
            merchant_id, campaign_id = await build(args.database_url, args.recipients)
        # As the web process runs: on a pool (without one, every query opens a connection).
        await database.engine().start_connection_pool()
        try:
            return await measure(merchant_id, campaign_id)
        finally:
            await database.engine().close_connection_pool()

    figures = asyncio.run(run())
    print_table(figures)
    figures["ok"] = figures["report_ms"] < TARGET_REPORT_MS
    print(json.dumps({"benchmark": "report", "cpus": os.cpu_count(), **figures}))


if __name__ == "__main__":
    main()
