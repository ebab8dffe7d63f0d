"""The per-person and per-hour sums the report reads (tracking_person, tracking_hour) are
written with the events and always agree with them: checked against sums worked out from the
events themselves, after batches that split one person's events, on both engines; and the
migration's backfill of earlier events gives the same rows."""

from __future__ import annotations

import importlib
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from piccolo.engine.postgres import PostgresEngine
from piccolo.querystring import QueryString

from accounts.schemas import MerchantOut
from loyalmail import database
from tests.campaigns.test_bounces import sent_messages
from tests.tracking.test_people import activity_fixture
from tracking import events
from tracking.tables import TrackingEvent, TrackingHour, TrackingPerson

T0 = datetime(2026, 11, 21, 7, 30, tzinfo=UTC)
BACKFILL = importlib.import_module(
    "tracking.piccolo_migrations.tracking_2026_11_25t18_38_00_000000"
)


def moment(value: Any) -> datetime:
    """A stored time as an aware datetime (SQLite's raw rows keep ISO text)."""
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return parsed.astimezone(UTC)


async def expected(campaign: int) -> tuple[dict[int, tuple[Any, ...]], Counter[tuple[Any, ...]]]:
    """The sums worked out in Python from the campaign's events."""
    people: dict[int, list[Any]] = {}
    hours: Counter[tuple[Any, ...]] = Counter()
    rows = await TrackingEvent.select().where(
        (TrackingEvent.campaign == campaign) & (TrackingEvent.recipient > 0)
    )
    for row in rows:
        person = people.setdefault(int(row["recipient"]), [0, 0, 0, None, None])
        at = moment(row["occurred_at"])
        human = not row["machine"]
        if row["kind"] in ("open", "click") and human:
            person[0 if row["kind"] == "open" else 1] += 1
            hours[(at.replace(minute=0, second=0, microsecond=0), row["kind"])] += 1
        elif row["kind"] == "open":
            person[2] += 1
        elif row["kind"] in ("unsubscribe", "resubscribe"):
            slot = 3 if row["kind"] == "unsubscribe" else 4
            person[slot] = at if person[slot] is None else max(person[slot], at)
    return {k: tuple(v) for k, v in people.items()}, hours


async def stored(campaign: int) -> tuple[dict[int, tuple[Any, ...]], Counter[tuple[Any, ...]]]:
    people = {
        int(row["recipient"]): (
            row["opens"],
            row["clicks"],
            row["machine_opens"],
            None if row["left_at"] is None else moment(row["left_at"]),
            None if row["back_at"] is None else moment(row["back_at"]),
        )
        for row in await TrackingPerson.select().where(TrackingPerson.campaign == campaign)
    }
    hours: Counter[tuple[Any, ...]] = Counter()
    for row in await TrackingHour.select().where(TrackingHour.campaign == campaign):
        hour = moment(row["hour"])
        hours[(hour, "open")] += row["opens"]
        hours[(hour, "click")] += row["clicks"]
    return people, +hours  # "+" drops the zero counts


async def test_random_batches_add_up_to_what_the_events_say(merchant: MerchantOut) -> None:
    sent = await sent_messages(merchant, 12)
    campaign = sent[0].campaign_id
    chance = random.Random(7)
    kinds = ["open"] * 5 + ["click"] * 3 + ["unsubscribe", "resubscribe"]
    made = [
        events.Event(
            merchant.id,
            campaign,
            chance.choice(sent).recipient_id,
            kind,
            T0 + timedelta(minutes=chance.randrange(0, 60 * 30)),
            link=0 if kind == "click" else None,
            reason=chance.choice(["", "", "", "apple-mpp", "scanner"])
            if kind != "resubscribe"
            else "",
        )
        for kind in (chance.choice(kinds) for _ in range(400))
    ]
    # Batches of every size, so one person's events land in one batch and across batches.
    start = 0
    while start < len(made):
        size = chance.randrange(1, 60)
        await events.write_now(made[start : start + size])
        start += size
    assert await stored(campaign) == await expected(campaign)
    assert len((await stored(campaign))[0]) == len({e.recipient_id for e in made})


async def test_the_migrations_backfill_gives_the_writers_rows(merchant: MerchantOut) -> None:
    fixture = await activity_fixture(merchant)
    written = await stored(fixture.campaign)
    assert written == await expected(fixture.campaign)

    engine = database.engine()
    await TrackingPerson.delete(force=True)
    await TrackingHour.delete(force=True)
    hour = BACKFILL.HOUR["postgres" if isinstance(engine, PostgresEngine) else "sqlite"]
    for statement in (BACKFILL.PEOPLE, BACKFILL.HOURS.format(hour=hour)):
        await engine.run_querystring(QueryString(statement))
    assert await stored(fixture.campaign) == written
