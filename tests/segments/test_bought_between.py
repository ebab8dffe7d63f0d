""" "Bought between" on the window's edges, in the database, on both engines.

PostgreSQL answers from the sorted purchase moments kept on the customer row
(``purchase_times``), SQLite from the purchase index; both must agree with the reference to
the microsecond, and the moments must stay right however purchases arrive.
"""

from __future__ import annotations

import importlib
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from piccolo.engine.base import Engine

from customers.tables import Customer
from loyalmail import database
from segments.schemas import BoughtBetween, Group
from tests.conftest import make_merchant
from tests.segments.factories import definition_ids, store
from tests.segments.reference import Clock, RefCustomer, RefPurchase, members

MICROSECOND = timedelta(microseconds=1)
DAY = timedelta(days=1)


def bought_at(*moments: datetime) -> list[RefPurchase]:
    return [RefPurchase("purchase", 1000, moment) for moment in moments]


async def test_bought_between_takes_the_window_to_the_microsecond(db: Engine) -> None:
    # +05:30: the window's ends are no whole UTC hour.
    merchant = await make_merchant(time_zone="Asia/Kolkata")
    zone = ZoneInfo("Asia/Kolkata")
    start = datetime(2026, 3, 1, tzinfo=zone)  # the window's first moment
    after = datetime(2026, 4, 1, tzinfo=zone)  # the first moment after 31 March
    people = [
        RefCustomer(id=0, purchases=bought_at(start)),
        RefCustomer(id=0, purchases=bought_at(after - MICROSECOND)),
        RefCustomer(id=0, purchases=bought_at(start - MICROSECOND)),
        RefCustomer(id=0, purchases=bought_at(after)),
        # Bought before and after the window, never in it: the buying span covers it.
        RefCustomer(id=0, purchases=bought_at(start - 3 * DAY, after + 3 * DAY)),
        # Recorded out of time order, one of them inside.
        RefCustomer(
            id=0,
            purchases=bought_at(after + 9 * DAY, start + 5 * DAY, start - 40 * DAY, after),
        ),
        # A refund and an exchange in the window are not buying.
        RefCustomer(
            id=0,
            purchases=[
                *bought_at(start - 10 * DAY, after + DAY),
                RefPurchase("refund", 500, start + DAY),
                RefPurchase("exchange", 300, start + 2 * DAY),
            ],
        ),
        RefCustomer(id=0),  # never bought
    ]
    await store(merchant, people)
    now = datetime(2026, 6, 1, tzinfo=UTC)
    clock = Clock(now=now, time_zone="Asia/Kolkata")
    window = BoughtBetween(start=date(2026, 3, 1), end=date(2026, 3, 31))

    inside = Group(conditions=[window])
    expected = {people[0].id, people[1].id, people[5].id}
    assert await definition_ids(merchant, inside, now) == expected
    assert members(inside, people, clock) == expected

    # Two-valued: everyone else, the customer who never bought included, is outside.
    outside = Group(negate=True, conditions=[window])
    assert await definition_ids(merchant, outside, now) == {p.id for p in people} - expected
    assert members(outside, people, clock) == {p.id for p in people} - expected


async def test_the_purchase_moments_are_backfilled_by_the_migration(db: Engine) -> None:
    """Customers who bought before the column existed get their moments from the migration."""
    if not database.is_postgres(db):
        pytest.skip("PostgreSQL only: SQLite has no purchase_times, it reads the purchases")
    merchant = await make_merchant(time_zone="Europe/Berlin")
    moments = [datetime(2026, 5, 2, 9, tzinfo=UTC), datetime(2026, 1, 7, 18, tzinfo=UTC)]
    people = [RefCustomer(id=0, purchases=bought_at(*moments)), RefCustomer(id=0)]
    await store(merchant, people)
    ids = [person.id for person in people]
    kept = await Customer.raw("SELECT id, purchase_times FROM customer WHERE id = ANY({})", ids)
    assert {row["id"]: row["purchase_times"] for row in kept} == {
        ids[0]: sorted(moments),
        ids[1]: None,
    }

    migration = importlib.import_module(
        "segments.piccolo_migrations.segments_2026_12_07t12_00_00_000000"
    )
    await Customer.raw("UPDATE customer SET purchase_times = NULL WHERE id = ANY({})", ids)
    for statement in migration.POSTGRES_ONLY:
        await Customer.raw(statement)
    again = await Customer.raw("SELECT id, purchase_times FROM customer WHERE id = ANY({})", ids)
    assert {row["id"]: row["purchase_times"] for row in again} == {
        ids[0]: sorted(moments),
        ids[1]: None,
    }
