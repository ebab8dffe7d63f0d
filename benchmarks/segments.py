"""Benchmark: target group counts and the audience freeze on a large PostgreSQL database.

    uv run python benchmarks/segments.py --quick        # 20,000 customers, 200,000 purchases
    uv run python benchmarks/segments.py                # 1,000,000 customers, 10,000,000 purchases
    uv run python benchmarks/segments.py --skip-build   # time again on the data already built
    uv run python benchmarks/segments.py --skip-build \
        --server-setting plan_cache_mode=force_custom_plan --server-setting jit=off

The database (``--database-url``, its name must contain "bench") loses its public schema and
is migrated forward. The data is built inside PostgreSQL with INSERT … SELECT over
generate_series: the timed merchant with ``--customers`` customers and ``--purchases``
purchases, and two other merchants with a tenth of each (their ids on both sides of the timed
merchant's, so the merchant scoping has to work). Purchases are inserted in time order, as a
shop's history grows; the derived columns of the customer rows are then filled by one
set-based UPDATE with the meaning of ``customers.queries.derived_assignments`` (which
leaves the customer heap about twice its packed size, as a live table's updates do).
Secondary indexes are dropped for the load and recreated from their own definitions
afterwards. ``--skip-build`` migrates the built data forward, as an upgrade would.

Timed through the project's own code, ``--repeat`` times after ``--warmup`` untimed runs: the
count of every predefined group (``predefined_condition`` + ``queries.count_sql``, the
statement ``list_predefined`` runs per group), ``list_predefined`` as a whole, three custom
groups in the filter language (``count_definition``), and freezing all_customers as the
dispatch does (``campaigns.sending.dispatch.freeze`` and ``cut_into_batches`` into the real
``campaign_recipient`` and ``campaign_batch`` tables, in one transaction). Queries go
through a connection pool, as in the app: asyncpg prepares and caches every statement,
and after five executions PostgreSQL may switch it to a generic plan, so the
default warm-up of five times the steady state. The timed connections carry the app's session
settings (``loyalmail.database.POSTGRES_SESSION_SETTINGS``); ``--server-setting`` adds or
overrides one, to try engine settings before they go into ``loyalmail.database``.

Queries that miss their target get their EXPLAIN (ANALYZE, BUFFERS) printed, the plan for
their values and the generic one (``--explain all`` prints every custom plan). The resident
set size of this process is sampled during the timings, per figure too: it must not grow with
the data. The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # before this file's folder: "segments" is the app, not this file

from benchmarks.measure import RssSampler, rss_bytes  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/loyalmail_bench_segments"
MAIN_SLUG = "bench-segments-main"
TIME_ZONE = "Europe/Berlin"

#: PRODUCT's targets, in milliseconds.
TARGET_PREDEFINED_MS = 100.0
TARGET_CUSTOM_MS = 300.0
TARGET_FREEZE_S = 5.0

# --- the generated people ----------------------------------------------------------------------

FIRST = (
    "Anna Ben Clara David Elif Finn Greta Hugo Ida Jonas Zoë Léa Mika Nora Olli Sanna Marko"
    " Jelena Ingrid Tom"
).split()
LAST = (
    "Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Hoß Dubois Martin Hansen"
    " Johansen Virtanen Korhonen Jovanović Petrović Smith Jones Taylor"
).split()
assert len(FIRST) == len(LAST) == 20
STORES = ["Online", "Mitte", "Altstadt", "Hafen", "Flughafen"]
SOURCES = ["import", "import", "form", "qr", "marketer", "api"]

#: (country, city, postal prefix, random digits after it, postal suffix, locale, slots of 100)
CITIES: list[tuple[str, str, str, int, str, str, int]] = [
    ("DE", "Berlin", "1", 4, "", "de", 10),
    ("DE", "Hamburg", "2", 4, "", "de", 7),
    ("DE", "München", "8", 4, "", "de", 7),
    ("DE", "Köln", "50", 3, "", "de", 5),
    ("DE", "Frankfurt am Main", "60", 3, "", "de", 4),
    ("DE", "Stuttgart", "70", 3, "", "de", 3),
    ("DE", "Leipzig", "04", 3, "", "de", 2),
    ("DE", "Dresden", "01", 3, "", "de", 2),
    ("AT", "Wien", "1", 3, "", "de_AT", 6),
    ("AT", "Graz", "80", 2, "", "de_AT", 2),
    ("AT", "Linz", "40", 2, "", "de_AT", 2),
    ("AT", "Salzburg", "50", 2, "", "de_AT", 1),
    ("AT", "Innsbruck", "60", 2, "", "de_AT", 1),
    ("FR", "Paris", "75", 3, "", "fr", 5),
    ("FR", "Lyon", "69", 3, "", "fr", 3),
    ("FR", "Marseille", "13", 3, "", "fr", 2),
    ("FR", "Toulouse", "31", 3, "", "fr", 2),
    ("GB", "London", "SW1A ", 1, "AA", "en", 6),
    ("GB", "Manchester", "M1 ", 1, "AE", "en_GB", 3),
    ("GB", "Birmingham", "B1 ", 1, "BB", "en", 2),
    ("GB", "Edinburgh", "EH1 ", 1, "YZ", "en_GB", 1),
    ("NO", "Oslo", "0", 3, "", "nb", 4),
    ("NO", "Bergen", "50", 2, "", "nb", 2),
    ("NO", "Trondheim", "70", 2, "", "nb", 2),
    ("FI", "Helsinki", "00", 3, "", "fi", 4),
    ("FI", "Espoo", "02", 3, "", "fi", 2),
    ("FI", "Tampere", "33", 3, "", "fi", 1),
    ("FI", "Turku", "20", 3, "", "fi", 1),
    ("RS", "Beograd", "11", 3, "", "sr", 5),
    ("RS", "Novi Sad", "21", 3, "", "sr", 2),
    ("RS", "Niš", "18", 3, "", "sr", 1),
]
SLOTS = [city for city in CITIES for _ in range(city[6])]
assert len(SLOTS) == 100

# One statement per table; every number and word above is bound as a parameter. The merchants
# come as parallel arrays (merchant id, first customer id − 1, customers, purchases).
INSERT_CUSTOMERS = """
INSERT INTO customer (
    id, merchant, email, email_normalized, first_name, last_name, gender, birth_date, locale,
    country, city, postal_code, phone, customer_type, email_status, subscribed, suppressed,
    unsubscribed_at, source, custom_fields, optin_sent_at, created_at, updated_at)
SELECT
    b.id, b.merchant, 'Customer' || b.id || '@Example.com', 'customer' || b.id || '@example.com',
    ($5::text[])[1 + (b.h1 % 20)], ($6::text[])[1 + (b.h2 % 20)],
    CASE WHEN b.r1 < 0.46 THEN 'female' WHEN b.r1 < 0.90 THEN 'male'
         WHEN b.r1 < 0.93 THEN 'diverse' ELSE '' END,
    CASE WHEN b.r2 < 0.80 THEN DATE '1940-01-01' + floor(b.r2 / 0.80 * 25203)::int END,
    CASE WHEN b.r3 < 0.10 THEN 'en' ELSE ($10::text[])[b.slot] END,
    ($7::text[])[b.slot], ($8::text[])[b.slot],
    ($9::text[])[b.slot] || lpad((b.h3 % (10 ^ ($11::int[])[b.slot])::int)::text,
                                 ($11::int[])[b.slot], '0') || ($12::text[])[b.slot],
    CASE WHEN b.r3 < 0.70 THEN '+' || (100000000 + b.h1 % 899999999)::text ELSE '' END,
    CASE WHEN b.r4 < 0.45 THEN 'loyal' WHEN b.r4 < 0.65 THEN 'member' ELSE 'non_member' END,
    CASE WHEN b.r5 < 0.85 THEN 'verified' WHEN b.r5 < 0.93 THEN 'pending' ELSE 'unverified' END,
    b.r6 >= 0.03, b.r7 < 0.004,
    CASE WHEN b.r6 < 0.03
         THEN least($2::timestamptz, b.created_at + (b.r6 * 1000) * INTERVAL '1 day') END,
    ($13::text[])[1 + (b.h2 % 6)],
    CASE WHEN b.r7 > 0.90 THEN '{}'::jsonb ELSE jsonb_build_object(
        'member_number', 'M-' || b.id,
        'favourite_store', ($14::text[])[1 + floor(b.r8 * 5)::int],
        'vip', b.r7 > 0.85) END,
    CASE WHEN b.r5 < 0.93 THEN b.created_at END,
    b.created_at, b.created_at
FROM (
    SELECT m.id_offset + g AS id, m.merchant,
           1 + floor(random() * 100)::int AS slot,
           hashint4(m.id_offset + g) & 2147483647 AS h1,
           hashint4(-(m.id_offset + g)) & 2147483647 AS h2,
           hashint4((m.id_offset + g) # 1431655765) & 2147483647 AS h3,
           random() AS r1, random() AS r2, random() AS r3, random() AS r4, random() AS r5,
           random() AS r6, random() AS r7, random() AS r8,
           $2::timestamptz - $3::float8 * (1 - (g - 0.5) / m.n) * INTERVAL '1 second' AS created_at
    FROM unnest($1::int[], $4::int[], $15::int[]) AS m(merchant, id_offset, n),
         generate_series(1, m.n) AS g
    OFFSET 0  -- a fence: each random() above is drawn once per row
) b
"""

# A purchase picks a buyer (three in four customers ever buy; the older ones more often) and a
# moment in that customer's active window: from sign-up (at most two years back) until now, or
# until the day a churned customer (three in ten buyers) stopped buying.
INSERT_PURCHASES = """
INSERT INTO purchase (merchant, customer, kind, amount_minor, currency, occurred_at, reference,
                      created_at)
SELECT s.merchant, s.id_offset + s.k, s.kind, s.amount, 'EUR', s.at, 'ORD-' || s.g, s.at
FROM (
    SELECT w.*, w.start + w.r_when * (w.stop - w.start) AS at
    FROM (
        SELECT p.*,
               CASE WHEN p.churn < 300 THEN p.start + (0.2 + p.churn / 500.0) * (p.anchor - p.start)
                    ELSE p.anchor END AS stop
        FROM (
            SELECT q.*, (hashint4(q.id_offset + q.k) & 2147483647) % 1000 AS churn,
                   greatest(q.created_at, q.anchor - INTERVAL '2 years') AS start
            FROM (
                SELECT r.*, r.anchor - $3::float8 * (1 - (r.k - 0.5) / r.n) * INTERVAL '1 second'
                                AS created_at
                FROM (
                    SELECT m.merchant, m.id_offset, m.n, g, $2::timestamptz AS anchor,
                           least(m.n, (j / 3) * 4 + j % 3 + 1) AS k,
                           CASE WHEN rk < 0.90 THEN 'purchase' WHEN rk < 0.97 THEN 'refund'
                                ELSE 'exchange' END AS kind,
                           CASE WHEN rk < 0.90 THEN 500 + floor(ra * ra * 30000)::bigint
                                WHEN rk < 0.97 THEN 500 + floor(ra * 5000)::bigint
                                ELSE floor((ra - 0.5) * 4000)::bigint END AS amount,
                           r_when
                    FROM (
                        SELECT m.merchant, m.id_offset, m.n, g,
                               floor(m.n * 0.75 * power(random(), 1.5))::int AS j,
                               random() AS rk, random() AS ra, random() AS r_when
                        FROM unnest($1::int[], $4::int[], $5::int[], $6::int[])
                             AS m(merchant, id_offset, n, np),
                             generate_series(1, m.np) AS g
                        OFFSET 0
                    ) m
                ) r
            ) q
        ) p
    ) w
) s
ORDER BY s.at
"""

# The meaning of customers.queries.derived_assignments (PostgreSQL), for every customer in one
# statement.
UPDATE_DERIVED = """
UPDATE customer c SET
    purchase_count = d.purchase_count,
    refund_count = d.refund_count,
    lifetime_value_minor = d.lifetime_value_minor,
    first_purchase_at = d.first_purchase_at,
    last_purchase_at = d.last_purchase_at,
    purchase_times = d.purchase_times,
    updated_at = greatest(c.updated_at, d.last_at)
FROM (
    SELECT customer,
           COUNT(*) FILTER (WHERE kind = 'purchase') AS purchase_count,
           COUNT(*) FILTER (WHERE kind = 'refund') AS refund_count,
           SUM(CASE WHEN kind = 'refund' THEN -amount_minor ELSE amount_minor END)
               AS lifetime_value_minor,
           MIN(occurred_at) FILTER (WHERE kind = 'purchase') AS first_purchase_at,
           MAX(occurred_at) FILTER (WHERE kind = 'purchase') AS last_purchase_at,
           array_agg(occurred_at ORDER BY occurred_at) FILTER (WHERE kind = 'purchase')
               AS purchase_times,
           MAX(occurred_at) AS last_at
    FROM purchase GROUP BY customer
) d
WHERE c.id = d.customer
"""

SECONDARY_INDEXES = """
SELECT i.relname AS name, pg_get_indexdef(i.oid) AS definition
FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
WHERE t.relname = ANY($1::text[]) AND NOT x.indisprimary
ORDER BY i.relname
"""

# --- measuring -----------------------------------------------------------------------------


def mib(value: float) -> float:
    return round(value / 2**20, 1)


@dataclass
class Timing:
    figure: str
    kind: str  # predefined | custom | list | freeze
    members: int
    target_ms: float | None
    runs_ms: list[float] = field(default_factory=list)
    median_ms: float = 0.0
    p95_ms: float = 0.0
    max_ms: float = 0.0
    ok: bool | None = None
    peak_rss_mib: float = 0.0

    def finish(self, sampler: RssSampler) -> Timing:
        self.peak_rss_mib = mib(sampler.peak)
        runs = sorted(self.runs_ms)
        self.median_ms = round(statistics.median(runs), 1)
        self.p95_ms = round(runs[max(0, math.ceil(0.95 * len(runs)) - 1)], 1)  # nearest rank
        self.max_ms = round(runs[-1], 1)
        self.runs_ms = [round(run, 1) for run in self.runs_ms]
        if self.target_ms is not None:
            self.ok = self.median_ms < self.target_ms
        return self


async def timed(
    repeat: int, warmup: int, run: Callable[[], Awaitable[Any]]
) -> tuple[list[float], Any]:
    """``repeat`` timed runs after ``warmup`` untimed ones. PostgreSQL plans a prepared
    statement (asyncpg prepares and caches every query) with its values five times, then may
    keep a generic plan: the default warm-up of five puts the timed runs in that steady state,
    the one a pooled connection of the app reaches for a group counted again and again."""
    result = await run()
    for _ in range(warmup - 1):
        result = await run()
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = await run()
        runs.append((time.perf_counter() - started) * 1000)
    return runs, result


# --- the custom groups, in the filter language ---------------------------------------------------


def custom_definitions(today: date) -> dict[str, dict[str, Any]]:
    return {
        "loyal/member, spent >= 100, last purchase <= 90 days": {
            "type": "group",
            "match": "all",
            "conditions": [
                {"type": "customer_type", "op": "in", "values": ["loyal", "member"]},
                {"type": "total_spent", "min": "100"},
                {"type": "last_purchase", "op": "within_last_days", "days": 90},
            ],
        },
        "DE/AT, age 25-44, postal 1*/8*, not non-member": {
            "type": "group",
            "match": "all",
            "conditions": [
                {"type": "country", "op": "in", "values": ["DE", "AT"]},
                {"type": "age", "min": 25, "max": 44},
                {"type": "postal_code", "op": "starts_with", "values": ["1", "8"]},
                {"type": "customer_type", "op": "not_in", "values": ["non_member"]},
            ],
        },
        "bought in a 3-month window, store = Online, >= 3 purchases": {
            "type": "group",
            "match": "all",
            "conditions": [
                {
                    "type": "bought_between",
                    "start": (today - timedelta(days=270)).isoformat(),
                    "end": (today - timedelta(days=180)).isoformat(),
                },
                {
                    "type": "custom_field",
                    "key": "favourite_store",
                    "op": "equals",
                    "value": "Online",
                },
                {"type": "purchase_count", "min": 3},
            ],
        },
    }


# --- the database ----------------------------------------------------------------------------


def checked_url(url: str) -> str:
    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    if parsed.scheme not in {"postgres", "postgresql"}:
        raise SystemExit("--database-url must be a postgresql:// URL")
    if "bench" not in name:
        raise SystemExit(f"refusing to wipe {name!r}: the database name must contain 'bench'")
    return url


async def ensure_database(url: str) -> None:
    import asyncpg

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    admin = urlunparse(parsed._replace(path="/postgres"))
    conn = await asyncpg.connect(admin)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{name}"')  # checked name, not input text
    finally:
        await conn.close()


async def migrate() -> None:
    from piccolo.apps.migrations.commands.forwards import run_forwards

    with contextlib.redirect_stdout(io.StringIO()):
        result = await run_forwards("all")
    if not result.success:
        raise RuntimeError(result.message)


@dataclass
class Build:
    seconds: dict[str, float]
    customers: int
    purchases: int
    merchants: dict[str, int]
    anchor: str


async def build(url: str, customers: int, purchases: int) -> Build:
    """Wipe, migrate, create three merchants and fill them; returns the timings."""
    import asyncpg

    from accounts import services as accounts
    from accounts.schemas import MerchantCreate
    from loyalmail import database

    steps: dict[str, float] = {}
    started = time.perf_counter()
    engine = database.make_engine(url)
    await engine.run_ddl("DROP SCHEMA IF EXISTS public CASCADE")
    await engine.run_ddl("CREATE SCHEMA public")
    database.use_engine(engine)
    await migrate()
    steps["migrate"] = time.perf_counter() - started

    other = max(1, customers // 10), max(1, purchases // 10)
    # The timed merchant's customer ids lie between the two others'.
    plan = [("bench-segments-a", *other), (MAIN_SLUG, customers, purchases)]
    plan.append(("bench-segments-b", *other))
    merchants: dict[str, int] = {}
    for slug, _, _ in plan:
        out = await accounts.create_merchant(
            MerchantCreate(slug=slug, name=f"Shop {slug}", time_zone=TIME_ZONE, currency="EUR")
        )
        merchants[slug] = out.id
    offsets, offset = [], 0
    for _, n, _ in plan:
        offsets.append(offset)
        offset += n
    ids = [merchants[slug] for slug, _, _ in plan]
    counts = [n for _, n, _ in plan]
    bought = [p for _, _, p in plan]
    anchor = datetime.now(UTC).replace(microsecond=0)
    span = 3 * 365.25 * 86400  # customers signed up over three years

    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SET work_mem = '2GB'")
        await conn.execute("SET maintenance_work_mem = '1GB'")
        with contextlib.suppress(asyncpg.PostgresError):  # needs a superuser; else FKs check
            await conn.execute("SET session_replication_role = replica")
        indexes = await conn.fetch(SECONDARY_INDEXES, ["customer", "purchase"])
        for index in indexes:
            await conn.execute(f'DROP INDEX "{index["name"]}"')  # names from the catalog

        step = time.perf_counter()
        await conn.execute(
            INSERT_CUSTOMERS,
            ids,
            anchor,
            span,
            offsets,
            FIRST,
            LAST,
            [c[0] for c in SLOTS],
            [c[1] for c in SLOTS],
            [c[2] for c in SLOTS],
            [c[5] for c in SLOTS],
            [c[3] for c in SLOTS],
            [c[4] for c in SLOTS],
            SOURCES,
            STORES,
            counts,
        )
        await conn.execute("SELECT setval('customer_id_seq', $1)", offset)
        steps["insert customers"] = time.perf_counter() - step

        step = time.perf_counter()
        await conn.execute(INSERT_PURCHASES, ids, anchor, span, offsets, counts, bought)
        steps["insert purchases"] = time.perf_counter() - step

        step = time.perf_counter()
        await conn.execute(UPDATE_DERIVED)
        steps["derived columns"] = time.perf_counter() - step

        step = time.perf_counter()
        for index in indexes:
            await conn.execute(index["definition"])
        steps["indexes"] = time.perf_counter() - step

        step = time.perf_counter()
        await conn.execute(
            "CREATE TABLE bench_meta (merchant_id int, anchor timestamptz,"
            " customers int, purchases int)"
        )
        await conn.execute(
            "INSERT INTO bench_meta VALUES ($1, $2, $3, $4)",
            merchants[MAIN_SLUG],
            anchor,
            customers,
            purchases,
        )
        await conn.execute("VACUUM ANALYZE")
        steps["vacuum analyze"] = time.perf_counter() - step
    finally:
        await conn.close()
    steps["total"] = time.perf_counter() - started
    return Build(
        seconds={k: round(v, 1) for k, v in steps.items()},
        customers=sum(counts),
        purchases=sum(bought),
        merchants=merchants,
        anchor=anchor.isoformat(),
    )


async def reuse(url: str) -> tuple[int, datetime, int, int]:
    """--skip-build: the built data's merchant and clock (migrated forward by the caller)."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow("SELECT * FROM bench_meta")
        if row is None:
            raise SystemExit("no built data: run without --skip-build first")
        await conn.execute("ANALYZE customer")
        await conn.execute("ANALYZE purchase")
    finally:
        await conn.close()
    return row["merchant_id"], row["anchor"], row["customers"], row["purchases"]


async def server_facts(url: str) -> dict[str, Any]:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        facts: dict[str, Any] = {}
        for name in ("server_version", "shared_buffers", "work_mem", "jit", "random_page_cost"):
            facts[name] = await conn.fetchval(f"SHOW {name}")
        facts["max_parallel_workers_per_gather"] = await conn.fetchval(
            "SHOW max_parallel_workers_per_gather"
        )
        sizes = await conn.fetch(
            "SELECT relname, pg_relation_size(oid) AS heap, pg_indexes_size(oid) AS idx"
            " FROM pg_class WHERE relname IN ('customer', 'purchase') ORDER BY relname"
        )
        facts["table_mib"] = {r["relname"]: mib(r["heap"]) for r in sizes}
        facts["index_mib"] = {r["relname"]: mib(r["idx"]) for r in sizes}
        facts["rows"] = {
            "customer": await conn.fetchval("SELECT count(*) FROM customer"),
            "purchase": await conn.fetchval("SELECT count(*) FROM purchase"),
        }
        return facts
    finally:
        await conn.close()


# --- the timings --------------------------------------------------------------------------------


async def explain(sql: str, params: list[object]) -> str:
    """The plan for these values (a custom plan: an unprepared statement)."""
    from customers.tables import Customer

    rows = await Customer.raw(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", *params)
    return "\n".join(row["QUERY PLAN"] for row in rows)


async def explain_generic(
    url: str, settings: dict[str, str], sql: str, params: list[object]
) -> str:
    """The generic plan a prepared statement settles on, run with these values."""
    import asyncpg
    from piccolo.querystring import QueryString

    query, args = QueryString(sql, *params).compile_string(engine_type="postgres")
    conn = await asyncpg.connect(url, server_settings=settings)
    try:
        types = [t.name for t in (await conn.prepare(query)).get_parameters()]
        # EXECUTE takes its values as SQL text: let the server quote them.
        values = [
            await conn.fetchval("SELECT quote_literal($1::text)", arg.isoformat())
            if isinstance(arg, date | datetime)
            else await conn.fetchval("SELECT quote_literal($1::text)", str(arg))
            for arg in args
        ]
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        await conn.execute(f"PREPARE bench_generic ({', '.join(types)}) AS {query}")
        rows = await conn.fetch(
            f"EXPLAIN (ANALYZE, BUFFERS) EXECUTE bench_generic ({', '.join(values)})"
        )
        return "\n".join(row[0] for row in rows)
    finally:
        await conn.close()


async def bench_campaign(merchant_id: int, now: datetime) -> int:
    """A campaign row in the state the dispatch leaves it in before the freeze."""
    from campaigns.tables import Campaign

    rows = await Campaign.insert(
        Campaign(
            merchant=merchant_id,
            name="benchmark freeze",
            audience_predefined="all_customers",
            status="sending",
            started_at=now,
        )
    ).returning(Campaign.id)
    return int(rows[0]["id"])


async def measure(
    merchant_id: int,
    now: datetime,
    repeat: int,
    freeze_repeat: int,
    explain_mode: str,
    sampler: RssSampler,
    warmup: int,
    url: str,
    settings: dict[str, str],
) -> tuple[list[Timing], dict[str, Any], list[tuple[str, str]]]:
    from campaigns.sending import dispatch
    from campaigns.tables import Campaign
    from customers.tables import Customer
    from loyalmail import database
    from loyalmail import sql as transactions
    from loyalmail.settings import get_settings
    from segments import queries, services
    from segments.compiler import compile_definition
    from segments.predefined import PREDEFINED, predefined_condition
    from segments.validation import decode_definition

    ctx = await services.context(merchant_id, now)
    engine = database.engine()
    timings: list[Timing] = []
    statements: dict[str, tuple[str, list[object]]] = {}

    for key in PREDEFINED:
        condition = predefined_condition(key, ctx)
        sql = queries.count_sql(condition.text)
        params = [merchant_id, *condition.params]
        statements[key] = (sql, params)

        async def count(sql: str = sql, params: list[object] = params) -> int:
            rows = await Customer.raw(sql, *params)
            return int(rows[0]["n"])

        sampler.reset()
        runs, members = await timed(repeat, warmup, count)
        timings.append(
            Timing(key, "predefined", members, TARGET_PREDEFINED_MS, runs).finish(sampler)
        )

    async def list_all() -> int:
        groups = await services.list_predefined(merchant_id, now)
        return sum(group.count for group in groups)

    sampler.reset()
    runs, members = await timed(repeat, warmup, list_all)
    timings.append(Timing("list_predefined (all six)", "list", members, None, runs).finish(sampler))

    for name, raw in custom_definitions(ctx.today).items():
        definition = decode_definition(raw)
        condition = compile_definition(definition, ctx)
        statements[name] = (queries.count_sql(condition.text), [merchant_id, *condition.params])

        async def count_custom(definition: Any = definition) -> int:
            return await services.count_definition(merchant_id, definition, now)

        sampler.reset()
        runs, members = await timed(repeat, warmup, count_custom)
        timings.append(Timing(name, "custom", members, TARGET_CUSTOM_MS, runs).finish(sampler))

    # Freezing the largest group as the dispatch does, in one transaction: the same two steps
    # (campaigns.sending.dispatch.freeze and cut_into_batches) into the real campaign_recipient
    # table with its indexes, constraints and batches, for a campaign row that is sending.
    select, params = await services.audience_query(
        merchant_id, services.AudienceRef(predefined="all_customers"), now
    )
    freeze_figure = "all_customers into campaign_recipient (dispatch: freeze + batches)"
    statements[freeze_figure] = (select, params)
    campaign_id = await bench_campaign(merchant_id, now)
    freeze_runs: list[float] = []
    frozen = 0
    sampler.reset()
    for _ in range(freeze_repeat):
        await engine.run_ddl("TRUNCATE campaign_recipient, campaign_batch CASCADE")
        started = time.perf_counter()
        async with transactions.write_transaction():
            after = await dispatch.top_recipient()
            frozen = await dispatch.freeze(campaign_id, merchant_id, select, params)
            await dispatch.cut_into_batches(campaign_id, after, get_settings().send_batch_size, now)
        freeze_runs.append((time.perf_counter() - started) * 1000)
    freeze = Timing(freeze_figure, "freeze", frozen, TARGET_FREEZE_S * 1000)
    freeze.runs_ms = freeze_runs
    timings.append(freeze.finish(sampler))
    await engine.run_ddl("TRUNCATE campaign_recipient, campaign_batch CASCADE")
    await Campaign.delete().where(Campaign.id == campaign_id)
    timings += await references(url, merchant_id, campaign_id, select, params, repeat, sampler)

    plans: list[tuple[str, str]] = []
    for timing in timings:
        if timing.figure not in statements:
            continue
        sql, params = statements[timing.figure]
        if explain_mode == "all" or (explain_mode == "missed" and timing.ok is False):
            plans.append((f"{timing.figure} (custom plan)", await explain(sql, params)))
        if explain_mode != "none" and timing.ok is False and timing.kind != "freeze":
            plan = await explain_generic(url, settings, sql, params)
            plans.append((f"{timing.figure} (generic plan)", plan))
    facts = {"today": ctx.today.isoformat(), "time_zone": ctx.time_zone}
    return timings, facts, plans


#: The floor of a custom count: every eligible row read and tested by a condition that no
#: index answers, sent by plain asyncpg (no pool, no Piccolo) so nothing of ours is in it.
REFERENCE_SCAN = (
    "SELECT COUNT(*) AS n FROM customer c WHERE c.merchant = $1 AND c.email_status = 'verified'"
    " AND c.subscribed AND NOT c.suppressed AND c.email <> ''"
)
#: A copy of the recipient table's columns with no key, index or constraint: the freeze's own
#: statement into it is what writing the rows costs on this machine before any index.
REFERENCE_TABLE = "bench_freeze_reference"


async def references(
    url: str,
    merchant_id: int,
    campaign_id: int,
    select: str,
    params: list[object],
    repeat: int,
    sampler: RssSampler,
) -> list[Timing]:
    """Figures of the same run that no code of ours can beat: what the engine itself needs
    to read every eligible customer, and to write the frozen rows into a bare heap."""
    import asyncpg

    from campaigns.sending import queries as send_queries
    from loyalmail import database
    from loyalmail import sql as transactions

    engine = database.engine()
    timings: list[Timing] = []
    connection = await asyncpg.connect(url)
    try:
        runs: list[float] = []
        members = 0
        sampler.reset()
        for n in range(repeat + 1):
            started = time.perf_counter()
            members = int(await connection.fetchval(REFERENCE_SCAN, merchant_id))
            if n:  # the first run reads the pages in: not timed
                runs.append((time.perf_counter() - started) * 1000)
        figure = "plain asyncpg: every eligible customer read (the floor of a custom count)"
        timings.append(Timing(figure, "reference", members, None, runs).finish(sampler))
        await connection.execute(
            f"DROP TABLE IF EXISTS {REFERENCE_TABLE};"
            f" CREATE TABLE {REFERENCE_TABLE} (LIKE campaign_recipient INCLUDING DEFAULTS)"
        )
    finally:
        await connection.close()
    statement = send_queries.freeze_audience(transactions.from_piccolo(select)).replace(
        "INSERT INTO campaign_recipient ", f"INSERT INTO {REFERENCE_TABLE} ", 1
    )
    runs = []
    frozen = 0
    sampler.reset()
    for _ in range(2):
        started = time.perf_counter()
        async with transactions.write_transaction():
            await transactions.execute("SET LOCAL work_mem = '192MB'")
            frozen = await transactions.execute(statement, campaign_id, merchant_id, *params)
        runs.append((time.perf_counter() - started) * 1000)
        await engine.run_ddl(f"TRUNCATE {REFERENCE_TABLE}")
    await engine.run_ddl(f"DROP TABLE {REFERENCE_TABLE}")
    figure = "the freeze's INSERT … SELECT into a table with no key and no index"
    timings.append(Timing(figure, "reference", frozen, None, runs).finish(sampler))
    return timings


# --- output -------------------------------------------------------------------------------------


def print_table(rows: list[tuple[str, str, str, str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for n, row in enumerate(rows):
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))


def report(
    timings: list[Timing],
    build_info: Build | None,
    facts: dict[str, Any],
    rss: dict[str, float],
    customers: int,
    purchases: int,
) -> list[tuple[str, str, str, str]]:
    rows = [("figure", "value", "target", "ok")]
    if build_info is not None:
        rows.append(("build", f"{build_info.seconds['total']:.1f} s", "-", ""))
    for t in timings:
        if t.kind == "freeze":
            value = f"{t.median_ms / 1000:.2f} s median, {t.max_ms / 1000:.2f} s max"
            value += f" ({t.members:,} rows)"
            target = f"< {TARGET_FREEZE_S:.0f} s"
        else:
            value = f"{t.median_ms:.1f} ms (p95 {t.p95_ms:.1f}, max {t.max_ms:.1f})"
            value += f" n={t.members:,}"
            target = "-" if t.target_ms is None else f"< {t.target_ms:.0f} ms"
        ok = "" if t.ok is None else ("yes" if t.ok else "MISSED")
        rows.append((f"{t.kind}: {t.figure}", value, target, ok))
    rows.append(
        (
            "RSS of this process (MiB)",
            f"before {rss['before']}, peak during {rss['peak']}, after {rss['after']}",
            "flat",
            "",
        )
    )
    print(f"\nSegments benchmark — {customers:,} customers, {purchases:,} purchases")
    print(
        f"PostgreSQL {facts['server_version']}: shared_buffers {facts['shared_buffers']},"
        f" work_mem {facts['work_mem']}, jit {facts['jit']}, parallel workers"
        f" {facts['max_parallel_workers_per_gather']}; heap MiB {facts['table_mib']},"
        f" indexes MiB {facts['index_mib']}; session settings {facts['session_settings'] or '-'};"
        f" load average before {facts['load_average_before']},"
        f" after {facts['load_average_after']}"
    )
    if build_info is not None:
        steps = ", ".join(f"{k} {v:.1f}" for k, v in build_info.seconds.items() if k != "total")
        print(f"build seconds: {steps}")
    print_table(rows)
    return rows


async def run(args: argparse.Namespace) -> None:
    from loyalmail import database
    from segments import services  # noqa: F401 - loaded before the RSS baseline is taken

    url = args.database_url
    await ensure_database(url)
    build_info: Build | None = None
    if args.skip_build:
        database.use_engine(database.make_engine(url))
        await migrate()  # the schema may have moved on since the data was built
        merchant_id, anchor, customers, purchases = await reuse(url)
    else:
        print(f"building {args.customers:,} customers and {args.purchases:,} purchases …")
        build_info = await build(url, args.customers, args.purchases)
        print(f"built in {build_info.seconds['total']:.1f}s: {build_info.seconds}")
        merchant_id = build_info.merchants[MAIN_SLUG]
        anchor = datetime.fromisoformat(build_info.anchor)
        customers, purchases = args.customers, args.purchases
    facts = await server_facts(url)
    facts["load_average_before"] = [round(load, 2) for load in os.getloadavg()]

    engine = database.engine()
    # The app's own session settings (loyalmail.database), then any the command line adds.
    settings = {
        **database.POSTGRES_SESSION_SETTINGS,
        **dict(item.split("=", 1) for item in args.server_setting),
    }
    await engine.start_connection_pool(  # type: ignore[call-arg]
        min_size=1, max_size=4, server_settings=settings
    )
    try:
        before = rss_bytes()
        with RssSampler() as sampler:
            timings, clock, plans = await measure(
                merchant_id,
                anchor,
                args.repeat,
                args.freeze_repeat,
                args.explain,
                sampler,
                args.warmup,
                url,
                settings,
            )
        after = rss_bytes()
    finally:
        await engine.close_connection_pool()
    rss = {"before": mib(before), "peak": mib(sampler.overall), "after": mib(after)}
    facts["load_average_after"] = [round(load, 2) for load in os.getloadavg()]
    facts["session_settings"] = settings

    for figure, plan in plans:
        print(f"\nEXPLAIN (ANALYZE, BUFFERS) — {figure}\n{plan}")
    report(timings, build_info, facts, rss, customers, purchases)
    print(
        json.dumps(
            {
                "benchmark": "segments",
                "customers": customers,
                "purchases": purchases,
                "repeat": args.repeat,
                "warmup": args.warmup,
                "now": anchor.isoformat(),
                **clock,
                "build": None if build_info is None else asdict(build_info),
                "server": facts,
                "rss_mib": rss,
                "results": [asdict(t) for t in timings],
                "all_ok": all(t.ok is not False for t in timings),
            },
            ensure_ascii=False,
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--purchases", type=int, default=10_000_000)
    parser.add_argument("--quick", action="store_true", help="20,000 customers, 200,000 purchases")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--freeze-repeat", type=int, default=3)
    parser.add_argument(
        "--warmup", type=int, default=5, help="untimed runs first (5: the steady plan)"
    )
    parser.add_argument("--skip-build", action="store_true", help="time the data built before")
    parser.add_argument(
        "--server-setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for the timed connections (jit=off, plan_cache_mode=force_custom_plan)",
    )
    parser.add_argument(
        "--explain",
        choices=["missed", "all", "none"],
        default="missed",
        help="print EXPLAIN (ANALYZE, BUFFERS) of the queries that miss their target (or all)",
    )
    args = parser.parse_args()
    if args.quick:
        args.customers, args.purchases = 20_000, 200_000
    if min(args.repeat, args.freeze_repeat, args.warmup) < 1:
        parser.error("--repeat, --freeze-repeat and --warmup must be at least 1")
    args.database_url = checked_url(args.database_url)

    with tempfile.TemporaryDirectory(prefix="loyalmail-bench-") as tmp:
        # Settings are read once: point them at a scratch directory before anything loads.
        os.environ["LOYALMAIL_DATA_DIR"] = str(Path(tmp) / "data")
        os.environ.setdefault("LOYALMAIL_SECRET_KEY", "benchmark-secret")
        os.environ.pop("LOYALMAIL_REDIS_URL", None)
        os.environ["LOYALMAIL_DATABASE_URL"] = args.database_url
        asyncio.run(run(args))


if __name__ == "__main__":
    main()
