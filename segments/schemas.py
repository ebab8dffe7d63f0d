"""The filter language of custom target groups, and the typed values at the segments' edge.

A definition is a tree of JSON objects, each tagged by ``type``::

    {"type": "group", "match": "all", "negate": false, "conditions": [
        {"type": "customer_type", "op": "in", "values": ["loyal", "member"]},
        {"type": "total_spent", "min": "50"},
        {"type": "group", "match": "any", "conditions": [
            {"type": "country", "op": "in", "values": ["DE", "AT"]},
            {"type": "postal_code", "op": "starts_with", "values": ["80", "81"]}]}]}

``match: all`` is AND, ``any`` is OR, ``negate: true`` is NOT of the whole group. Every
condition is its own Struct, so msgspec checks the field names, operators and value types
(an unknown ``type`` or ``op`` is a 422 naming its path). What msgspec cannot say — depth,
size, a range whose ends are swapped — :func:`segments.validation.check_definition` does.
Nothing here ever becomes SQL text: :mod:`segments.compiler` maps each Struct to a fixed SQL
shape and binds every value as a parameter.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

import msgspec

from customers.schemas import CustomerType, Gender

SetOp = Literal["in", "not_in"]
ShortText = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Country = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{2}$")]
Language = Annotated[str, msgspec.Meta(pattern=r"^[a-z]{2}$")]
PostalPrefix = Annotated[str, msgspec.Meta(min_length=1, max_length=20)]
CustomKey = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Days = Annotated[int, msgspec.Meta(ge=1, le=36_600)]
Age = Annotated[int, msgspec.Meta(ge=0, le=130)]
Count = Annotated[int, msgspec.Meta(ge=0, le=10_000_000)]
#: Major units as text or number ("49.90"); compared with the lifetime value in minor units.
Money = Decimal

#: Age groups offered by the builder, as inclusive (min, max) years; ``None`` is open-ended.
AGE_GROUPS: dict[str, tuple[int | None, int | None]] = {
    "under_18": (None, 17),
    "18_24": (18, 24),
    "25_34": (25, 34),
    "35_44": (35, 44),
    "45_54": (45, 54),
    "55_64": (55, 64),
    "65_plus": (65, None),
}
AgeGroup = Literal["under_18", "18_24", "25_34", "35_44", "45_54", "55_64", "65_plus"]

MAX_VALUES = 500


class _Condition(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, tag_field="type"):
    """Base of every condition: ``type`` (the tag) names the field it looks at."""


class CustomerTypeIs(_Condition, kw_only=True, tag="customer_type"):
    op: SetOp = "in"
    values: Annotated[list[CustomerType], msgspec.Meta(min_length=1, max_length=3)]


class GenderIs(_Condition, kw_only=True, tag="gender"):
    """``""`` among the values matches customers whose gender is unknown."""

    op: SetOp = "in"
    values: Annotated[list[Gender], msgspec.Meta(min_length=1, max_length=4)]


class AgeGroupIs(_Condition, kw_only=True, tag="age_group"):
    """Customers without a birth date are in no age group."""

    values: Annotated[list[AgeGroup], msgspec.Meta(min_length=1, max_length=7)]


class AgeBetween(_Condition, kw_only=True, tag="age"):
    """Age in whole years on the merchant's today, inclusive; one end may be open."""

    min: Age | None = None
    max: Age | None = None


class BirthdayWithin(_Condition, kw_only=True, tag="birthday"):
    """A birthday from today through today + days − 1 (29 February: see segments.calendar)."""

    days: Annotated[int, msgspec.Meta(ge=1, le=366)] = 28


class CountryIs(_Condition, kw_only=True, tag="country"):
    op: SetOp = "in"
    values: Annotated[list[Country], msgspec.Meta(min_length=1, max_length=MAX_VALUES)]


class CityIs(_Condition, kw_only=True, tag="city"):
    """Exact match, as the city is stored (the builder offers the merchant's own cities)."""

    op: SetOp = "in"
    values: Annotated[list[ShortText], msgspec.Meta(min_length=1, max_length=MAX_VALUES)]


class PostalCodeIs(_Condition, kw_only=True, tag="postal_code"):
    """``in``: exactly one of the codes; ``starts_with``: begins with one of the prefixes."""

    op: Literal["in", "not_in", "starts_with"] = "in"
    values: Annotated[list[PostalPrefix], msgspec.Meta(min_length=1, max_length=MAX_VALUES)]


class LanguageIs(_Condition, kw_only=True, tag="language"):
    """Two-letter language codes; ``de`` matches ``de``, ``de_AT``, ``de_CH``."""

    op: SetOp = "in"
    values: Annotated[list[Language], msgspec.Meta(min_length=1, max_length=50)]


DateOp = Literal["before", "after", "within_last_days", "more_than_days_ago"]
PurchaseDateOp = Literal["before", "after", "within_last_days", "more_than_days_ago", "never"]


class CreatedDate(_Condition, kw_only=True, tag="created"):
    """When the customer was added. ``before``/``after`` take a day of the merchant's
    calendar (``after`` means from the day after); the ``days`` ops count back from now."""

    op: DateOp
    date: date | None = None
    days: Days | None = None


class FirstPurchase(_Condition, kw_only=True, tag="first_purchase"):
    """The first purchase (kind purchase). Every op but ``never`` needs one to exist."""

    op: PurchaseDateOp
    date: date | None = None
    days: Days | None = None


class LastPurchase(_Condition, kw_only=True, tag="last_purchase"):
    op: PurchaseDateOp
    date: date | None = None
    days: Days | None = None


class TotalSpent(_Condition, kw_only=True, tag="total_spent"):
    """Lifetime value (purchases − refunds ± exchanges) in the merchant's currency, inclusive."""

    min: Money | None = None
    max: Money | None = None


class PurchaseCount(_Condition, kw_only=True, tag="purchase_count"):
    min: Count | None = None
    max: Count | None = None


class BoughtBetween(_Condition, kw_only=True, tag="bought_between"):
    """At least one purchase on a day from ``start`` to ``end`` (inclusive, merchant's days)."""

    start: date
    end: date


class CustomFieldIs(_Condition, kw_only=True, tag="custom_field"):
    """``equals``/``not_equals`` compare the value as text (``true``/``false`` for yes/no
    fields, numbers as written); ``not_equals`` and ``is_not_set`` include customers without
    the field."""

    key: CustomKey
    op: Literal["equals", "not_equals", "is_set", "is_not_set"]
    value: Annotated[str, msgspec.Meta(max_length=1000)] = ""


class Group(
    msgspec.Struct, kw_only=True, forbid_unknown_fields=True, tag_field="type", tag="group"
):
    match: Literal["all", "any"] = "all"
    negate: bool = False
    conditions: list[Node]


Condition = (
    CustomerTypeIs
    | GenderIs
    | AgeGroupIs
    | AgeBetween
    | BirthdayWithin
    | CountryIs
    | CityIs
    | PostalCodeIs
    | LanguageIs
    | CreatedDate
    | FirstPurchase
    | LastPurchase
    | TotalSpent
    | PurchaseCount
    | BoughtBetween
    | CustomFieldIs
)
Node = Group | Condition

# --- predefined groups -----------------------------------------------------------------------

PredefinedKey = Literal[
    "first_purchase",
    "lost_customers",
    "all_customers",
    "network_members",
    "non_members",
    "birthdays",
]
PREDEFINED_KEYS: tuple[PredefinedKey, ...] = (
    "first_purchase",
    "lost_customers",
    "all_customers",
    "network_members",
    "non_members",
    "birthdays",
)

# --- the edge ----------------------------------------------------------------------------------


class SegmentCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=120)]
    definition: Group
    description: Annotated[str, msgspec.Meta(max_length=500)] = ""


class SegmentUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=120)] | msgspec.UnsetType = (
        msgspec.UNSET
    )
    definition: Group | msgspec.UnsetType = msgspec.UNSET
    description: Annotated[str, msgspec.Meta(max_length=500)] | msgspec.UnsetType = msgspec.UNSET


class PreviewRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    definition: Group
    sample_size: Annotated[int, msgspec.Meta(ge=0, le=50)] = 10


class Member(msgspec.Struct, kw_only=True):
    """A sample member: enough to recognise the person, nothing more."""

    id: int
    email: str
    first_name: str
    last_name: str
    customer_type: str
    city: str
    country: str


class Preview(msgspec.Struct, kw_only=True):
    """What a group holds right now: every member is one recipient and costs one quota unit."""

    count: int
    quota_cost: int
    sample: list[Member]


class PredefinedOut(msgspec.Struct, kw_only=True):
    key: PredefinedKey
    name: str
    description: str
    count: int
    quota_cost: int


class SegmentOut(msgspec.Struct, kw_only=True):
    id: int
    name: str
    description: str
    definition: Group
    created_at: datetime
    updated_at: datetime
    count: int | None = None
    quota_cost: int | None = None


class SegmentList(msgspec.Struct, kw_only=True):
    items: list[SegmentOut]


class FieldOption(msgspec.Struct, kw_only=True):
    value: str
    label: str


class FieldSpec(msgspec.Struct, kw_only=True):
    """One condition type as the builder offers it (labels in the caller's language)."""

    type: str
    label: str
    kind: Literal[
        "set",
        "range",
        "money_range",
        "days",
        "date",
        "purchase_date",
        "between_dates",
        "custom_field",
        "postal_code",
    ]
    options: list[FieldOption] = []


class Catalog(msgspec.Struct, kw_only=True):
    fields: list[FieldSpec]
    currency: str
    custom_field_keys: list[str]
    cities: list[str]
