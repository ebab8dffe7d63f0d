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
from datetime import datetime
from typing import Protocol

from campaigns import services as campaigns
from loyalmail import sql
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


async def write_now(events: list[Event]) -> None:
    """One INSERT and commit for ``events``."""
    async with sql.write_transaction():
        events = await _settle_speed(events)
        values = [value for event in events for value in event.values()]
        await sql.execute(insert_statement(len(events)), *values)


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
