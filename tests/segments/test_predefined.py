"""The predefined groups on the calendar's edges, in the database, on both engines."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from piccolo.engine.base import Engine

from accounts.schemas import MerchantOut
from segments import services
from segments.services import AudienceRef
from tests.conftest import make_merchant
from tests.segments.factories import member_ids, store
from tests.segments.reference import RefCustomer, RefPurchase


def bought_at(*moments: datetime) -> list[RefPurchase]:
    return [RefPurchase("purchase", 1000, moment) for moment in moments]


async def group(merchant: MerchantOut, key: str, now: datetime) -> set[int]:
    return await member_ids(merchant, AudienceRef(predefined=key), now)  # type: ignore[arg-type]


async def test_first_purchase_takes_the_first_and_last_second_of_the_month(db: Engine) -> None:
    berlin = ZoneInfo("Europe/Berlin")
    merchant = await make_merchant(time_zone="Europe/Berlin")
    first_second = datetime(2026, 1, 1, 0, 0, 0, tzinfo=berlin)
    last_second = datetime(2026, 1, 31, 23, 59, 59, tzinfo=berlin)
    people = [
        RefCustomer(id=0, purchases=bought_at(first_second)),
        RefCustomer(id=0, purchases=bought_at(last_second)),
        RefCustomer(id=0, purchases=bought_at(first_second - timedelta(seconds=1))),  # December
        RefCustomer(id=0, purchases=bought_at(last_second + timedelta(seconds=1))),  # February
        # First purchase in January, but only as a refund before it: refunds are not buying.
        RefCustomer(
            id=0,
            purchases=[
                RefPurchase("refund", 500, datetime(2025, 11, 3, tzinfo=UTC)),
                *bought_at(datetime(2026, 1, 10, tzinfo=UTC)),
            ],
        ),
        RefCustomer(id=0, email_status="pending", purchases=bought_at(first_second)),
    ]
    await store(merchant, people)
    # 1 February 00:30 in Berlin is still 31 January in UTC: the merchant's month counts.
    now = datetime(2026, 1, 31, 23, 30, tzinfo=UTC)
    assert await group(merchant, "first_purchase", now) == {
        people[0].id,
        people[1].id,
        people[4].id,
    }


async def test_first_purchase_across_the_turn_of_the_year_behind_utc(db: Engine) -> None:
    merchant = await make_merchant(time_zone="America/Los_Angeles")
    la = ZoneInfo("America/Los_Angeles")
    people = [
        RefCustomer(id=0, purchases=bought_at(datetime(2025, 12, 31, 23, 59, 59, tzinfo=la))),
        RefCustomer(id=0, purchases=bought_at(datetime(2026, 1, 1, 0, 0, 0, tzinfo=la))),
    ]
    await store(merchant, people)
    # 1 January 2026, 05:00 UTC is still 31 December in Los Angeles: previous month is November.
    assert await group(merchant, "first_purchase", datetime(2026, 1, 1, 5, tzinfo=UTC)) == set()
    # On 15 January local time the previous month is December.
    jan = datetime(2026, 1, 15, 12, tzinfo=UTC)
    assert await group(merchant, "first_purchase", jan) == {people[0].id}


async def test_lost_customers_bought_before_but_not_in_eight_months(db: Engine) -> None:
    merchant = await make_merchant(time_zone="Pacific/Kiritimati")  # UTC+14
    kiri = ZoneInfo("Pacific/Kiritimati")
    now = datetime(2026, 10, 31, 12, tzinfo=kiri)
    cutoff = datetime(2026, 2, 28, 0, 0, tzinfo=kiri)  # 31 October − 8 months, clamped
    people = [
        RefCustomer(id=0, purchases=bought_at(cutoff - timedelta(seconds=1))),
        RefCustomer(id=0, purchases=bought_at(cutoff)),
        RefCustomer(id=0),  # never bought: not lost, never won
        RefCustomer(
            id=0,
            purchases=[
                *bought_at(datetime(2025, 1, 1, tzinfo=UTC)),
                RefPurchase("refund", 100, datetime(2026, 9, 1, tzinfo=UTC)),
            ],
        ),
        RefCustomer(id=0, subscribed=False, purchases=bought_at(datetime(2025, 1, 1, tzinfo=UTC))),
    ]
    await store(merchant, people)
    assert await group(merchant, "lost_customers", now) == {people[0].id, people[3].id}


async def test_birthdays_across_the_turn_of_the_year_and_on_29_february(db: Engine) -> None:
    merchant = await make_merchant(time_zone="Asia/Kolkata")
    people = [
        RefCustomer(id=0, birth_date=date(1980, 12, 31)),
        RefCustomer(id=0, birth_date=date(1990, 1, 1)),
        RefCustomer(id=0, birth_date=date(1985, 1, 13)),  # the 28th day of the window
        RefCustomer(id=0, birth_date=date(1985, 1, 14)),  # one day too far
        RefCustomer(id=0, birth_date=date(2000, 2, 29)),
        RefCustomer(id=0, birth_date=date(1970, 2, 28)),
        RefCustomer(id=0, birth_date=date(1970, 3, 1)),
        RefCustomer(id=0),  # no birth date
    ]
    await store(merchant, people)
    ids = [person.id for person in people]
    # 17 December in Kolkata (UTC+5:30), although still the 16th in UTC.
    december = datetime(2026, 12, 16, 20, 0, tzinfo=UTC)
    assert await group(merchant, "birthdays", december) == {ids[0], ids[1], ids[2]}
    # A window ending on 28 February of a common year includes the 29 February people.
    february = datetime(2027, 2, 1, 6, tzinfo=UTC)
    assert await group(merchant, "birthdays", february) == {ids[4], ids[5]}
    # From 1 March they had their day already; in a leap year they have their own.
    assert await group(merchant, "birthdays", datetime(2027, 3, 1, 6, tzinfo=UTC)) == {ids[6]}
    assert await group(merchant, "birthdays", datetime(2028, 2, 2, 6, tzinfo=UTC)) == {
        ids[4],
        ids[5],
    }


async def test_membership_groups_and_eligibility(db: Engine) -> None:
    merchant = await make_merchant()
    other = await make_merchant()
    people = [
        RefCustomer(id=0, customer_type="loyal"),
        RefCustomer(id=0, customer_type="member"),
        RefCustomer(id=0, customer_type="non_member"),
        RefCustomer(id=0, customer_type="loyal", email_status="pending"),
        RefCustomer(id=0, customer_type="loyal", subscribed=False),
        RefCustomer(id=0, customer_type="loyal", suppressed=True),
    ]
    await store(merchant, people)
    await store(other, [RefCustomer(id=0, customer_type="loyal")])
    now = datetime(2026, 6, 1, tzinfo=UTC)
    ids = [person.id for person in people]
    assert await group(merchant, "all_customers", now) == set(ids[:3])
    assert await group(merchant, "network_members", now) == {ids[0], ids[1]}
    assert await group(merchant, "non_members", now) == {ids[2]}
    listed = {g.key: g.count for g in await services.list_predefined(merchant.id, now)}
    assert listed["all_customers"] == 3 and listed["network_members"] == 2
    assert listed["non_members"] == 1 and listed["birthdays"] == 0


async def test_suppression_leaves_and_lifts_with_the_address(db: Engine) -> None:
    from customers.services import suppression

    merchant = await make_merchant()
    person = RefCustomer(id=0)
    await store(merchant, [person])
    now = datetime(2026, 6, 1, tzinfo=UTC)
    assert await group(merchant, "all_customers", now) == {person.id}
    await suppression.suppress(merchant.id, "person0@example.com", "bounced")
    assert await group(merchant, "all_customers", now) == set()
    await suppression.lift(merchant.id, "person0@example.com")
    assert await group(merchant, "all_customers", now) == {person.id}
