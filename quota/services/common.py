"""What every ledger operation shares: the clock, the merchant's months, the write transaction
(:mod:`loyalmail.sql`'s, re-exported for the ledger's modules)."""

from __future__ import annotations

import calendar
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from loyalmail import sql
from loyalmail.errors import _
from loyalmail.sql import Retry, read_transaction, write_transaction
from quota.schemas import SourceOut

T = TypeVar("T")

__all__ = ["Retry", "read_transaction", "write_transaction"]

#: Units in one bought pack.
PACK_SIZE = 10_000
#: Test sends a merchant gets each month.
TEST_SENDS_PER_MONTH = 10
#: A month's allowance is this many units per loyal customer.
UNITS_PER_LOYAL_CUSTOMER = 2


def utc_now() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime | None) -> datetime:
    """An aware UTC time. SQLite compares stored times as ISO text, so every time the ledger
    writes or compares must have the same offset (+00:00)."""
    if moment is None:
        return utc_now()
    if moment.tzinfo is None:
        raise ValueError("the ledger needs aware datetimes")
    return moment.astimezone(UTC)


class Month:
    """One calendar month in a merchant's time zone, with its UTC bounds."""

    def __init__(self, year: int, month: int, time_zone: str) -> None:
        self.year, self.month, self.time_zone = year, month, time_zone
        zone = ZoneInfo(time_zone or "UTC")
        self.first_day = date(year, month, 1)
        self.last_day = date(year, month, calendar.monthrange(year, month)[1])
        self.starts_at = datetime(year, month, 1, tzinfo=zone).astimezone(UTC)
        following = self.last_day + timedelta(days=1)
        self.ends_at = datetime(following.year, following.month, 1, tzinfo=zone).astimezone(UTC)

    @classmethod
    def containing(cls, moment: datetime, time_zone: str) -> Month:
        local = moment.astimezone(ZoneInfo(time_zone or "UTC"))
        return cls(local.year, local.month, time_zone)

    @property
    def period(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    def next(self) -> Month:
        following = self.last_day + timedelta(days=1)
        return Month(following.year, following.month, self.time_zone)


def local_day(moment: datetime, time_zone: str) -> date:
    return moment.astimezone(ZoneInfo(time_zone or "UTC")).date()


def last_valid_day(expires_at: datetime | None, time_zone: str) -> date | None:
    """The last day a source can be used, in the merchant's time zone (it expires at the
    following midnight)."""
    if expires_at is None:
        return None
    return local_day(as_utc(expires_at) - timedelta(microseconds=1), time_zone)


def source_out(row: dict[str, Any], time_zone: str) -> SourceOut:
    expires_at = row["expires_at"]
    granted, reserved = int(row["granted"]), int(row["reserved"])
    spent, expired = int(row["spent"]), int(row["expired"])
    return SourceOut(
        id=int(row["id"]),
        kind=row["kind"],
        period=row["period"],
        reference=row["reference"],
        granted=granted,
        reserved=reserved,
        spent=spent,
        expired=expired,
        available=granted - spent - reserved - expired,
        expires_on=last_valid_day(expires_at, time_zone),
        expires_at=as_utc(expires_at) if expires_at is not None else None,
        created_at=as_utc(row["created_at"]),
        basis_loyal=row.get("basis_loyal"),
    )


async def with_retries(operation: Callable[[], Awaitable[T]]) -> T:
    """:func:`loyalmail.sql.with_retries` with the ledger's own "busy" message."""
    return await sql.with_retries(
        operation, _("The quota ledger is busy. Please try again in a moment.")
    )
