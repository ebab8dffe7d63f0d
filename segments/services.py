"""Target groups: counts, samples and the audience of predefined and saved custom groups.

Membership is always computed by the database in one statement over ``customer c``; no
customer is loaded into Python to be filtered. Every function takes the merchant explicitly
and an optional ``now`` (the tests' clock; otherwise the current instant).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec

from accounts import services as accounts
from customers.services.customers import currency_exponent
from customers.tables import Customer
from loyalmail import database
from loyalmail.errors import NotFound, _
from segments import queries
from segments.compiler import Context, Sql, compile_definition
from segments.predefined import PREDEFINED, predefined_condition
from segments.schemas import (
    PREDEFINED_KEYS,
    Catalog,
    Group,
    Member,
    PredefinedKey,
    PredefinedOut,
    Preview,
    SegmentCreate,
    SegmentOut,
    SegmentUpdate,
)
from segments.tables import Segment
from segments.validation import check_definition, decode_definition

#: How many of the merchant's cities the builder suggests.
CITY_SUGGESTIONS = 200


def now_utc() -> datetime:
    return datetime.now(UTC)


async def context(merchant_id: int, now: datetime | None = None) -> Context:
    merchant = await accounts.get_merchant(merchant_id)
    return Context(
        now=now or now_utc(),
        time_zone=merchant.time_zone,
        currency_exponent=currency_exponent(merchant.currency),
        postgres=database.is_postgres(),
    )


# --- evaluating a condition -----------------------------------------------------------------


async def _count(merchant_id: int, condition: Sql) -> int:
    rows = await Customer.raw(queries.count_sql(condition.text), merchant_id, *condition.params)
    return int(rows[0]["n"])


async def _sample(merchant_id: int, condition: Sql, size: int) -> list[Member]:
    if size == 0:
        return []
    rows = await Customer.raw(
        queries.sample_sql(condition.text), merchant_id, *condition.params, size
    )
    return [member_of(row) for row in rows]


def member_of(row: Mapping[str, Any]) -> Member:
    """A customer row (of the sample query or ``Customer.select()``) as a group member."""
    return Member(
        id=int(row["id"]),
        email=row["email"],
        first_name=row["first_name"],
        last_name=row["last_name"],
        customer_type=row["customer_type"],
        city=row["city"],
        country=row["country"],
    )


async def _preview(merchant_id: int, condition: Sql, sample_size: int) -> Preview:
    count = await _count(merchant_id, condition)
    # One recipient per member, one quota unit per recipient.
    return Preview(
        count=count, quota_cost=count, sample=await _sample(merchant_id, condition, sample_size)
    )


async def preview_definition(
    merchant_id: int, definition: Group, sample_size: int = 10, now: datetime | None = None
) -> Preview:
    """Count and sample of a definition, saved or not."""
    ctx = await context(merchant_id, now)
    check_definition(definition, ctx.currency_exponent)
    return await _preview(merchant_id, compile_definition(definition, ctx), sample_size)


async def count_definition(merchant_id: int, definition: Group, now: datetime | None = None) -> int:
    ctx = await context(merchant_id, now)
    check_definition(definition, ctx.currency_exponent)
    return await _count(merchant_id, compile_definition(definition, ctx))


# --- predefined groups ----------------------------------------------------------------------


def _predefined_key(key: str) -> PredefinedKey:
    if key not in PREDEFINED_KEYS:
        raise NotFound(_("There is no such target group."))
    return key


async def list_predefined(merchant_id: int, now: datetime | None = None) -> list[PredefinedOut]:
    """Every predefined group with its live count, in the order of PRODUCT §2."""
    ctx = await context(merchant_id, now)
    out = []
    for group in PREDEFINED.values():
        count = await _count(merchant_id, predefined_condition(group.key, ctx))
        out.append(
            PredefinedOut(
                key=group.key,
                name=group.name,
                description=group.description,
                count=count,
                quota_cost=count,
            )
        )
    return out


async def preview_predefined(
    merchant_id: int, key: str, sample_size: int = 10, now: datetime | None = None
) -> Preview:
    ctx = await context(merchant_id, now)
    condition = predefined_condition(_predefined_key(key), ctx)
    return await _preview(merchant_id, condition, sample_size)


# --- saved custom groups ----------------------------------------------------------------------


def _definition_of(row: Mapping[str, Any]) -> Group:
    raw = row["definition"]
    return decode_definition(json.loads(raw) if isinstance(raw, str) else raw)


def _segment_out(row: Mapping[str, Any], count: int | None = None) -> SegmentOut:
    return SegmentOut(
        id=int(row["id"]),
        name=row["name"],
        description=row["description"],
        definition=_definition_of(row),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        count=count,
        quota_cost=count,
    )


async def _row(merchant_id: int, segment_id: int) -> dict[str, Any]:
    row = (
        await Segment.select()
        .where((Segment.id == segment_id) & (Segment.merchant == merchant_id))
        .first()
    )
    if row is None:
        raise NotFound(_("There is no such target group."))
    return row


def _encode(definition: Group) -> str:
    return msgspec.json.encode(definition).decode()


async def create_segment(
    merchant_id: int, data: SegmentCreate, created_by: int | None = None
) -> SegmentOut:
    ctx = await context(merchant_id)
    check_definition(data.definition, ctx.currency_exponent)
    stamp = now_utc()
    rows = await Segment.insert(
        Segment(
            merchant=merchant_id,
            name=data.name.strip(),
            description=data.description.strip(),
            definition=_encode(data.definition),
            created_by=created_by,
            created_at=stamp,
            updated_at=stamp,
        )
    ).returning(Segment.id)
    return await get_segment(merchant_id, int(rows[0]["id"]))


async def get_segment(
    merchant_id: int, segment_id: int, with_count: bool = False, now: datetime | None = None
) -> SegmentOut:
    row = await _row(merchant_id, segment_id)
    segment = _segment_out(row)
    if with_count:
        count = await count_definition(merchant_id, segment.definition, now)
        segment = msgspec.structs.replace(segment, count=count, quota_cost=count)
    return segment


async def list_segments(
    merchant_id: int, with_counts: bool = True, now: datetime | None = None
) -> list[SegmentOut]:
    rows = (
        await Segment.select()
        .where(Segment.merchant == merchant_id)
        .order_by(Segment.name)
        .order_by(Segment.id)
    )
    if not with_counts:
        return [_segment_out(row) for row in rows]
    ctx = await context(merchant_id, now)
    out = []
    for row in rows:
        definition = _definition_of(row)
        count = await _count(merchant_id, compile_definition(definition, ctx))
        out.append(_segment_out(row, count))
    return out


async def update_segment(merchant_id: int, segment_id: int, data: SegmentUpdate) -> SegmentOut:
    await _row(merchant_id, segment_id)
    values: dict[Any, Any] = {Segment.updated_at: now_utc()}
    if data.name is not msgspec.UNSET:
        values[Segment.name] = data.name.strip()
    if data.description is not msgspec.UNSET:
        values[Segment.description] = data.description.strip()
    if data.definition is not msgspec.UNSET:
        ctx = await context(merchant_id)
        check_definition(data.definition, ctx.currency_exponent)
        values[Segment.definition] = _encode(data.definition)
    await Segment.update(values).where(
        (Segment.id == segment_id) & (Segment.merchant == merchant_id)
    )
    return await get_segment(merchant_id, segment_id)


async def delete_segment(merchant_id: int, segment_id: int) -> None:
    await _row(merchant_id, segment_id)
    await Segment.delete().where((Segment.id == segment_id) & (Segment.merchant == merchant_id))


async def preview_segment(
    merchant_id: int, segment_id: int, sample_size: int = 10, now: datetime | None = None
) -> Preview:
    segment = await get_segment(merchant_id, segment_id)
    return await preview_definition(merchant_id, segment.definition, sample_size, now)


# --- the audience, for the campaign dispatch -------------------------------------------------


class AudienceRef(msgspec.Struct, kw_only=True, frozen=True):
    """What a campaign names as its target group: a predefined key or a saved segment."""

    predefined: PredefinedKey | None = None
    segment_id: int | None = None


async def audience_query(
    merchant_id: int, ref: AudienceRef, now: datetime | None = None
) -> tuple[str, list[object]]:
    """The SELECT of the group's members (customer_id, email, email_normalized, locale) with
    its parameters, for one ``INSERT INTO … (…) SELECT …`` that freezes the audience in the
    dispatch transaction. Evaluated at ``now``: a birthday group frozen today holds today's
    birthdays."""
    ctx = await context(merchant_id, now)
    if ref.predefined is not None:
        condition = predefined_condition(_predefined_key(ref.predefined), ctx)
    elif ref.segment_id is not None:
        segment = await get_segment(merchant_id, ref.segment_id)
        condition = compile_definition(segment.definition, ctx)
    else:
        raise NotFound(_("There is no such target group."))
    return queries.audience_sql(condition.text), [merchant_id, *condition.params]


# --- what the builder offers ------------------------------------------------------------------


async def catalog(merchant_id: int, translate: Callable[[str], str] = lambda text: text) -> Catalog:
    """What the builder offers: the condition types of :mod:`segments.fields` with their labels
    put through ``translate``, and the merchant's cities and custom field names."""
    from segments.fields import field_specs

    merchant = await accounts.get_merchant(merchant_id)
    cities = await Customer.raw(queries.DISTINCT_CITIES, merchant_id, CITY_SUGGESTIONS)
    return Catalog(
        fields=field_specs(translate),
        currency=merchant.currency,
        custom_field_keys=await custom_field_keys(merchant_id),
        cities=[row["city"] for row in cities],
    )


async def custom_field_keys(merchant_id: int, scan: int = 2000) -> list[str]:
    """Custom field names in use, from the newest ``scan`` customers (a hint, not a census:
    JSON keys cannot be listed by both engines with one cheap query)."""
    rows = (
        await Customer.select(Customer.custom_fields)
        .where(Customer.merchant == merchant_id)
        .order_by(Customer.id, ascending=False)
        .limit(scan)
    )
    keys: set[str] = set()
    for row in rows:
        fields = row["custom_fields"]
        if isinstance(fields, str):
            fields = json.loads(fields or "{}")
        keys.update(fields or {})
    return sorted(keys)


async def preview_audience(
    merchant_id: int, ref: AudienceRef, sample_size: int = 10, now: datetime | None = None
) -> Preview:
    """Count, quota cost and sample of what a campaign names as its target group."""
    if ref.predefined is not None:
        return await preview_predefined(merchant_id, ref.predefined, sample_size, now)
    if ref.segment_id is not None:
        return await preview_segment(merchant_id, ref.segment_id, sample_size, now)
    raise NotFound(_("There is no such target group."))
