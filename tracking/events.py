"""Writing events: each request waits until its event is committed, and the commits are
shared.

A pixel or a click answers only once its event is stored (nothing is counted that a crash
could lose), but one INSERT per request would make PostgreSQL's commits the limit. So the
events of concurrent requests go into one multi-row INSERT and one commit (group commit):
while a batch is being written the next requests queue, and the writer takes all of them
at once (up to :data:`MOST_PER_BATCH`). A quiet server writes each event at once; a busy one
writes hundreds per commit. One writer per event loop (the database pool is per loop too).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from campaigns import services as campaigns
from loyalmail import sql
from tracking import queries
from tracking.machines import TOO_FAST_SECONDS

log = logging.getLogger("loyalmail.tracking")

#: Rows per INSERT: 8 values each stays under SQLite's 32,766 parameters, PostgreSQL's 65,535.
MOST_PER_BATCH = 1000
COLUMNS = "(merchant, campaign, recipient, kind, link, machine, reason, occurred_at)"


@dataclass(frozen=True, slots=True)
class Event:
    merchant_id: int
    campaign_id: int
    recipient_id: int
    kind: str  # open | click | unsubscribe | resubscribe
    occurred_at: datetime
    link: int | None = None
    reason: str = ""  # tracking.machines: "" is a person
    #: A click that looks like a person's: "too-fast" if it came within seconds of the
    #: message going out (checked by the writer, for a whole batch at once).
    check_speed: bool = False

    def values(self) -> tuple[object, ...]:
        return (
            self.merchant_id,
            self.campaign_id,
            self.recipient_id,
            self.kind,
            self.link,
            bool(self.reason),
            self.reason,
            self.occurred_at,
        )


class RecipientRef(Protocol):
    """A signed token's subject: tracking.tokens.TokenData, campaigns' TokenRecipient."""

    @property
    def merchant_id(self) -> int: ...
    @property
    def campaign_id(self) -> int: ...
    @property
    def recipient_id(self) -> int: ...


def event_for(
    ref: RecipientRef,
    kind: str,
    occurred_at: datetime,
    *,
    link: int | None = None,
    reason: str = "",
    check_speed: bool = False,
) -> Event:
    return Event(
        merchant_id=ref.merchant_id,
        campaign_id=ref.campaign_id,
        recipient_id=ref.recipient_id,
        kind=kind,
        occurred_at=occurred_at,
        link=link,
        reason=reason,
        check_speed=check_speed,
    )


def insert_statement(rows: int) -> str:
    one = "(?, ?, ?, ?, ?, ?, ?, ?)"
    return f"INSERT INTO tracking_event {COLUMNS} VALUES " + ", ".join([one] * rows)  # noqa: S608 - placeholders only


async def _settle_speed(events: list[Event]) -> list[Event]:
    """The events with "too-fast" set on clicks that came within seconds of their message
    going out: one query for the batch instead of one per click."""
    keys = [(e.merchant_id, e.campaign_id, e.recipient_id) for e in events if e.check_speed]
    if not keys:
        return events
    sent = await campaigns.sent_times(keys)
    settled = []
    for event in events:
        at = sent.get((event.merchant_id, event.campaign_id, event.recipient_id))
        if event.check_speed and at is not None:
            if (event.occurred_at - at).total_seconds() < TOO_FAST_SECONDS:
                event = dataclasses.replace(event, reason="too-fast")
        settled.append(event)
    return settled


#: (campaign, recipient) → [merchant, opens, clicks, machine opens, left at, back at].
PersonSums = dict[tuple[int, int], list[Any]]


def person_sums(events: list[Event]) -> PersonSums:
    """The batch's events added up per recipient, as ``tracking_person`` keeps them."""
    sums: PersonSums = {}
    for event in events:
        if event.recipient_id <= 0:
            continue
        key = (event.campaign_id, event.recipient_id)
        row = sums.setdefault(key, [event.merchant_id, 0, 0, 0, None, None])
        if event.kind in ("open", "click") and not event.reason:
            row[1 if event.kind == "open" else 2] += 1
        elif event.kind == "open":
            row[3] += 1
        elif event.kind in ("unsubscribe", "resubscribe"):
            slot = 4 if event.kind == "unsubscribe" else 5
            if row[slot] is None or event.occurred_at > row[slot]:
                row[slot] = event.occurred_at
    return sums


def hour_sums(events: list[Event]) -> dict[tuple[int, datetime], list[int]]:
    """People's opens and clicks per (campaign, hour in UTC): [merchant, opens, clicks]."""
    sums: dict[tuple[int, datetime], list[int]] = {}
    for event in events:
        if event.recipient_id <= 0 or event.reason or event.kind not in ("open", "click"):
            continue
        hour = event.occurred_at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        row = sums.setdefault((event.campaign_id, hour), [event.merchant_id, 0, 0])
        row[1 if event.kind == "open" else 2] += 1
    return sums


async def _add_up(events: list[Event]) -> None:
    """Add the batch to the per-person and per-hour sums, in the events' transaction (so
    the report, which reads the sums, always agrees with the events). Rows go in key order:
    two processes' batches lock shared rows in the same order, never crosswise."""
    people = sorted(person_sums(events).items())
    if people:
        values = [
            v
            for (campaign, recipient), (merchant, *rest) in people
            for v in (merchant, campaign, recipient, *rest)
        ]
        await sql.execute(queries.add_people_sql(len(people)), *values)
    hours = sorted(hour_sums(events).items())
    if hours:
        values = [
            v
            for (campaign, hour), (merchant, opens, clicks) in hours
            for v in (merchant, campaign, hour, opens, clicks)
        ]
        await sql.execute(queries.add_hours_sql(len(hours)), *values)


async def write_now(events: list[Event]) -> None:
    """One INSERT and commit for ``events``, with the sums the report reads."""
    async with sql.write_transaction():
        events = await _settle_speed(events)
        values = [value for event in events for value in event.values()]
        await sql.execute(insert_statement(len(events)), *values)
        await _add_up(events)


class EventWriter:
    """The writer of one event loop: a task runs while events wait and ends when none do."""

    def __init__(self) -> None:
        self._waiting: list[tuple[Event, asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None

    async def record(self, event: Event) -> None:
        """Return once ``event`` is committed; raise what the write raised."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((event, done))
        # No await between the task's last look at the queue and its end: a task that is
        # not done yet will still see this event.
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
        await done

    async def _run(self) -> None:
        while self._waiting:
            batch = self._waiting[:MOST_PER_BATCH]
            del self._waiting[:MOST_PER_BATCH]
            try:
                await write_now([event for event, _ in batch])
            except Exception as exc:  # every waiting request gets the error, not a hang
                log.warning("writing %s tracking events failed: %s", len(batch), exc)
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                continue
            for _, done in batch:
                if not done.done():
                    done.set_result(None)


_writers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, EventWriter] = (
    weakref.WeakKeyDictionary()
)


async def record(event: Event) -> None:
    """Store ``event`` (shared commit with the other requests of this moment)."""
    loop = asyncio.get_running_loop()
    writer = _writers.get(loop)
    if writer is None:
        writer = _writers[loop] = EventWriter()
    await writer.record(event)
