"""Generated customers, purchases and definitions: the database's answer equals the reference.

Runs on SQLite and PostgreSQL (the ``db`` fixture). Each example gets a merchant of its own
in a time zone ahead of or behind UTC, a clock of its own, a handful of customers drawn from
small pools (so conditions really match and miss), and several definitions; the six
predefined groups are checked on every example too.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from piccolo.engine.base import Engine

from segments.schemas import (
    AGE_GROUPS,
    PREDEFINED_KEYS,
    AgeBetween,
    AgeGroupIs,
    BirthdayWithin,
    BoughtBetween,
    CityIs,
    CountryIs,
    CreatedDate,
    CustomerTypeIs,
    CustomFieldIs,
    FirstPurchase,
    GenderIs,
    Group,
    LanguageIs,
    LastPurchase,
    Node,
    PostalCodeIs,
    PurchaseCount,
    TotalSpent,
)
from segments.services import AudienceRef
from segments.validation import check_definition
from tests.conftest import make_merchant
from tests.segments.factories import definition_ids, member_ids, store
from tests.segments.reference import Clock, RefCustomer, RefPurchase, members, predefined_members

ZONES = ["UTC", "Pacific/Kiritimati", "America/Los_Angeles", "Europe/Berlin", "Asia/Kolkata"]
TYPES = ["loyal", "member", "non_member"]
GENDERS = ["female", "male", "diverse", ""]
COUNTRIES = ["DE", "AT", "FR", ""]
CITIES = ["Berlin", "Wien", "Paris", ""]
POSTAL = ["10115", "10999", "80331", "1010", "75001", ""]
LOCALES = ["de", "de_AT", "fr", "en", ""]
LANGUAGES = ["de", "fr", "en", "nb"]
CUSTOM_KEYS = ["store", "vip", "visits"]
#: Birthdays that sit on the calendar's edges, and ordinary ones.
EDGE_BIRTHDAYS = [date(2000, 2, 29), date(1996, 2, 29), date(1980, 12, 31), date(1990, 1, 1)]


def moments(start: datetime, end: datetime) -> st.SearchStrategy[datetime]:
    seconds = int((end - start).total_seconds())
    return st.integers(0, seconds).map(lambda s: start + timedelta(seconds=s))


PAST = moments(datetime(2023, 6, 1, tzinfo=UTC), datetime(2026, 7, 1, tzinfo=UTC))
CLOCKS = moments(datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 7, 1, tzinfo=UTC))
DAYS = st.dates(date(2023, 6, 1), date(2026, 7, 1))

purchases_st = st.builds(
    RefPurchase,
    kind=st.sampled_from(["purchase", "purchase", "purchase", "refund", "exchange"]),
    amount_minor=st.integers(1, 20_000),
    occurred_at=PAST,
)
custom_st = st.fixed_dictionaries(
    {},
    optional={
        "store": st.sampled_from(["A", "B", ""]),
        "vip": st.booleans(),
        "visits": st.integers(0, 3),
    },
)
customer_st = st.builds(
    RefCustomer,
    id=st.just(0),
    email_status=st.sampled_from(["verified", "verified", "verified", "pending", "unverified"]),
    subscribed=st.sampled_from([True, True, True, False]),
    suppressed=st.sampled_from([False, False, False, False, True]),
    customer_type=st.sampled_from(TYPES),
    gender=st.sampled_from(GENDERS),
    birth_date=st.one_of(
        st.none(), st.sampled_from(EDGE_BIRTHDAYS), st.dates(date(1940, 1, 1), date(2010, 12, 31))
    ),
    locale=st.sampled_from(LOCALES),
    country=st.sampled_from(COUNTRIES),
    city=st.sampled_from(CITIES),
    postal_code=st.sampled_from(POSTAL),
    created_at=PAST,
    custom_fields=custom_st,
    purchases=st.lists(purchases_st, max_size=4),
)


def set_op() -> st.SearchStrategy[str]:
    return st.sampled_from(["in", "not_in"])


def some(pool: list[str]) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(pool), min_size=1, max_size=3, unique=True)


def non_empty(pool: list[str]) -> list[str]:
    return [value for value in pool if value]


def date_condition(cls: type, ops: list[str]) -> st.SearchStrategy[Node]:
    def build(op: str, day: date, days: int) -> Node:
        if op in ("before", "after"):
            return cls(op=op, date=day)
        if op == "never":
            return cls(op=op)
        return cls(op=op, days=days)

    return st.builds(build, st.sampled_from(ops), DAYS, st.integers(1, 800))


def ranged(cls: type, values: st.SearchStrategy[object]) -> st.SearchStrategy[Node]:
    def build(low: object, high: object) -> Node:
        if low is not None and high is not None and low > high:  # type: ignore[operator]
            low, high = high, low
        return cls(min=low, max=high)

    return st.builds(build, st.none() | values, values)


money = st.integers(-10_000, 30_000).map(lambda cents: Decimal(cents) / 100)
PURCHASE_OPS = ["before", "after", "within_last_days", "more_than_days_ago", "never"]

leaves: st.SearchStrategy[Node] = st.one_of(
    st.builds(CustomerTypeIs, op=set_op(), values=some(TYPES)),
    st.builds(GenderIs, op=set_op(), values=some(GENDERS)),
    st.builds(AgeGroupIs, values=some(list(AGE_GROUPS))),
    ranged(AgeBetween, st.integers(0, 90)),
    st.builds(BirthdayWithin, days=st.integers(1, 366)),
    st.builds(CountryIs, op=set_op(), values=some(non_empty(COUNTRIES))),
    st.builds(CityIs, op=set_op(), values=some(non_empty(CITIES))),
    st.builds(
        PostalCodeIs,
        op=st.sampled_from(["in", "not_in", "starts_with"]),
        values=some(["1", "10", "101", "8", "75001", "10999"]),
    ),
    st.builds(LanguageIs, op=set_op(), values=some(LANGUAGES)),
    date_condition(CreatedDate, PURCHASE_OPS[:-1]),
    date_condition(FirstPurchase, PURCHASE_OPS),
    date_condition(LastPurchase, PURCHASE_OPS),
    ranged(TotalSpent, money),
    ranged(PurchaseCount, st.integers(0, 4)),
    st.builds(
        lambda a, b: BoughtBetween(start=min(a, b), end=max(a, b)),
        DAYS,
        DAYS,
    ),
    st.one_of(
        st.builds(
            CustomFieldIs,
            key=st.sampled_from(CUSTOM_KEYS),
            op=st.sampled_from(["equals", "not_equals"]),
            value=st.sampled_from(["A", "B", "true", "false", "0", "2"]),
        ),
        st.builds(
            CustomFieldIs,
            key=st.sampled_from(CUSTOM_KEYS),
            op=st.sampled_from(["is_set", "is_not_set"]),
        ),
    ),
)


def groups(children: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    return st.builds(
        Group,
        match=st.sampled_from(["all", "any"]),
        negate=st.booleans(),
        conditions=st.lists(children, min_size=1, max_size=3),
    )


definitions: st.SearchStrategy[Group] = groups(st.recursive(leaves, groups, max_leaves=6))  # type: ignore[assignment]


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    people=st.lists(customer_st, max_size=10),
    nested=st.lists(definitions, min_size=1, max_size=3),
    single=st.lists(leaves, min_size=4, max_size=8),
    zone=st.sampled_from(ZONES),
    now=CLOCKS,
)
async def test_sql_matches_the_reference(
    db: Engine,
    people: list[RefCustomer],
    nested: list[Group],
    single: list[Node],
    zone: str,
    now: datetime,
) -> None:
    """Nested definitions, plus single conditions (each type's edges are hit more often)."""
    merchant = await make_merchant(time_zone=zone)
    await store(merchant, people)
    clock = Clock(now=now, time_zone=zone)
    for key in PREDEFINED_KEYS:
        got = await member_ids(merchant, AudienceRef(predefined=key), now)
        assert got == predefined_members(key, people, clock), key
    checks = nested + [Group(conditions=[leaf]) for leaf in single]
    for definition in checks:
        check_definition(definition)
        expected = members(definition, people, clock)
        event("members found" if expected else "no member")
        assert await definition_ids(merchant, definition, now) == expected, definition
