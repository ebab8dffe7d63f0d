"""A plain Python reference of the target groups, to hold the SQL against.

It works from the customers' stored fields and their raw purchases (not the derived columns
the SQL reads), counts ages with :func:`segments.calendar.age_on` and birthdays with
:func:`segments.calendar.next_birthday` (not the bounds and ranges the compiler binds), and
states every rule the obvious way, so a mistake in a SQL shape shows up as a difference.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from segments import calendar
from segments.schemas import (
    AGE_GROUPS,
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


@dataclass
class RefPurchase:
    kind: str
    amount_minor: int  # refunds positive, exchanges signed
    occurred_at: datetime  # aware


@dataclass
class RefCustomer:
    id: int
    email_status: str = "verified"
    subscribed: bool = True
    suppressed: bool = False
    customer_type: str = "non_member"
    gender: str = ""
    birth_date: date | None = None
    locale: str = ""
    country: str = ""
    city: str = ""
    postal_code: str = ""
    created_at: datetime = datetime(2024, 1, 1, tzinfo=UTC)
    custom_fields: dict[str, object] = field(default_factory=dict)
    purchases: list[RefPurchase] = field(default_factory=list)

    # --- what the rules read, computed from the raw purchases ---------------------------

    def bought(self) -> list[datetime]:
        return [p.occurred_at for p in self.purchases if p.kind == "purchase"]

    def lifetime_value_minor(self) -> int:
        return sum(
            -p.amount_minor if p.kind == "refund" else p.amount_minor for p in self.purchases
        )


@dataclass(frozen=True)
class Clock:
    now: datetime
    time_zone: str

    @property
    def today(self) -> date:
        return self.now.astimezone(ZoneInfo(self.time_zone)).date()

    def midnight(self, day: date) -> datetime:
        return datetime.combine(day, time(0), tzinfo=ZoneInfo(self.time_zone))


def eligible(c: RefCustomer) -> bool:
    return c.email_status == "verified" and c.subscribed and not c.suppressed


def custom_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def matches(node: Node, c: RefCustomer, clock: Clock) -> bool:  # noqa: C901 - one rule a type
    if isinstance(node, Group):
        results = (matches(child, c, clock) for child in node.conditions)
        hit = all(results) if node.match == "all" else any(results)
        return not hit if node.negate else hit
    if isinstance(node, CustomerTypeIs):
        return (c.customer_type in node.values) == (node.op == "in")
    if isinstance(node, GenderIs):
        return (c.gender in node.values) == (node.op == "in")
    if isinstance(node, CountryIs):
        return (c.country in node.values) == (node.op == "in")
    if isinstance(node, CityIs):
        return (c.city in node.values) == (node.op == "in")
    if isinstance(node, LanguageIs):
        return (c.locale[:2] in node.values) == (node.op == "in")
    if isinstance(node, PostalCodeIs):
        if node.op == "starts_with":
            return any(c.postal_code.startswith(prefix) for prefix in node.values)
        return (c.postal_code in node.values) == (node.op == "in")
    if isinstance(node, AgeBetween | AgeGroupIs):
        if c.birth_date is None:
            return False
        age = calendar.age_on(c.birth_date, clock.today)
        ranges = (
            [(node.min, node.max)]
            if isinstance(node, AgeBetween)
            else [AGE_GROUPS[key] for key in node.values]
        )
        return any(
            (low is None or age >= low) and (high is None or age <= high) for low, high in ranges
        )
    if isinstance(node, BirthdayWithin):
        if c.birth_date is None:
            return False
        upcoming = calendar.next_birthday(c.birth_date, clock.today)
        return (upcoming - clock.today).days < node.days
    if isinstance(node, CreatedDate):
        return moment_matches([c.created_at], node.op, node.date, node.days, clock)
    if isinstance(node, FirstPurchase):
        bought = c.bought()
        return moment_matches([min(bought)] if bought else [], node.op, node.date, node.days, clock)
    if isinstance(node, LastPurchase):
        bought = c.bought()
        return moment_matches([max(bought)] if bought else [], node.op, node.date, node.days, clock)
    if isinstance(node, TotalSpent):
        value = Decimal(c.lifetime_value_minor()) / 100
        return (node.min is None or value >= node.min) and (node.max is None or value <= node.max)
    if isinstance(node, PurchaseCount):
        n = len(c.bought())
        return (node.min is None or n >= node.min) and (node.max is None or n <= node.max)
    if isinstance(node, BoughtBetween):
        start, end = clock.midnight(node.start), clock.midnight(node.end + timedelta(days=1))
        return any(start <= t < end for t in c.bought())
    if isinstance(node, CustomFieldIs):
        text = custom_text(c.custom_fields.get(node.key))
        if node.op == "is_set":
            return text != ""
        if node.op == "is_not_set":
            return text == ""
        return (text == node.value) == (node.op == "equals")
    raise TypeError(type(node).__name__)


def moment_matches(
    moments: list[datetime], op: str, day: date | None, days: int | None, clock: Clock
) -> bool:
    if op == "never":
        return not moments
    if not moments:
        return False
    (t,) = moments
    if op == "before":
        assert day is not None
        return t < clock.midnight(day)
    if op == "after":
        assert day is not None
        return t >= clock.midnight(day + timedelta(days=1))
    assert days is not None
    cutoff = clock.now - timedelta(days=days)
    return t >= cutoff if op == "within_last_days" else t < cutoff


def members(definition: Group, customers: Iterable[RefCustomer], clock: Clock) -> set[int]:
    return {c.id for c in customers if eligible(c) and matches(definition, c, clock)}


# --- predefined groups --------------------------------------------------------------------


def _month_before(day: date) -> date:
    return date(day.year - 1, 12, 1) if day.month == 1 else date(day.year, day.month - 1, 1)


def _eight_months_back(day: date) -> date:
    year, month = day.year, day.month - 8
    if month < 1:
        year, month = year - 1, month + 12
    for last in (31, 30, 29, 28):
        try:
            return date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable")


def predefined_members(key: str, customers: Iterable[RefCustomer], clock: Clock) -> set[int]:
    today = clock.today
    out = set()
    for c in customers:
        if not eligible(c):
            continue
        bought = c.bought()
        if key == "first_purchase":
            start = clock.midnight(_month_before(today))
            end = clock.midnight(today.replace(day=1))
            hit = bool(bought) and start <= min(bought) < end
        elif key == "lost_customers":
            hit = bool(bought) and max(bought) < clock.midnight(_eight_months_back(today))
        elif key == "all_customers":
            hit = True
        elif key == "network_members":
            hit = c.customer_type in ("loyal", "member")
        elif key == "non_members":
            hit = c.customer_type == "non_member"
        elif key == "birthdays":
            hit = c.birth_date is not None and (
                (calendar.next_birthday(c.birth_date, today) - today).days < 28
            )
        else:
            raise KeyError(key)
        if hit:
            out.add(c.id)
    return out
