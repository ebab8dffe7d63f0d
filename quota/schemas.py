"""What the quota app returns at its edge: plain msgspec Structs, never ORM rows."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

import msgspec

SourceKind = Literal["allowance", "test", "pack"]
Pool = Literal["send", "test"]
EntryKind = Literal["grant", "purchase", "reserve", "spend", "release", "expire"]
Reference = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]+$")]


class SourceOut(msgspec.Struct, kw_only=True):
    id: int
    kind: SourceKind
    #: The merchant's month ('2026-11') of an allowance or the test sends; '' for a pack.
    period: str
    reference: str
    granted: int
    reserved: int
    spent: int
    expired: int
    available: int
    #: The last day it can be used, in the merchant's time zone; None: never expires.
    expires_on: date | None
    expires_at: datetime | None
    created_at: datetime
    basis_loyal: int | None = None


class Reservation(msgspec.Struct, kw_only=True):
    id: int
    key: str
    pool: Pool
    purpose: str
    units: int
    spent: int
    released: int
    expired: int
    created_at: datetime
    closed_at: datetime | None
    #: (source id, units) in draw order.
    parts: list[tuple[int, int]] = []

    @property
    def open(self) -> int:
        return self.units - self.spent - self.released - self.expired


class Draw(msgspec.Struct, kw_only=True):
    """How much of one source a send would use, and what is left of it afterwards."""

    source_id: int
    kind: SourceKind
    period: str
    reference: str
    units: int
    left_after: int
    expires_on: date | None


class SendEstimate(msgspec.Struct, kw_only=True):
    needed: int
    fits: bool
    available: int
    draws: list[Draw]
    #: Units missing when it does not fit (0 when it does).
    short_by: int
    #: Packs of PACK_SIZE that would cover the shortfall.
    packs_needed: int
    pack_size: int


class Refusal(msgspec.Struct, kw_only=True):
    """Why a reservation was refused: what it needed and what there is, source by source."""

    pool: Pool
    needed: int
    available: int
    sources: list[SourceOut]
    short_by: int
    packs_needed: int
    pack_size: int
    #: Test sends: the day the next month's ten arrive (the merchant's time zone).
    renews_on: date | None = None
    how_to_buy: str = ""


class TestSends(msgspec.Struct, kw_only=True):
    granted: int
    used: int
    reserved: int
    left: int
    renews_on: date


class Forecast(msgspec.Struct, kw_only=True):
    """Next month's allowance at today's count of loyal customers."""

    period: str
    loyal_customers: int
    allowance: int


class QuotaOverview(msgspec.Struct, kw_only=True):
    period: str
    allowance: SourceOut | None
    packs: list[SourceOut]
    packs_available: int
    test_sends: TestSends
    #: Everything a send may draw on right now (allowance + packs).
    available: int
    reserved: int
    forecast: Forecast
    pack_size: int


class HistoryEntry(msgspec.Struct, kw_only=True):
    id: int
    kind: EntryKind
    units: int
    created_at: datetime
    source_kind: SourceKind | None
    source_period: str
    source_reference: str
    reservation_id: int | None
    purpose: str
    #: A plain-English line (what the journal says); pages build theirs from the fields below.
    note: str
    #: An allowance grant: the loyal customers it was computed from; ``first_month``: it grew
    #: with them during the merchant's first month.
    loyal_customers: int | None = None
    first_month: bool = False
    #: A purchase: how many packs of ``PACK_SIZE``.
    packs: int | None = None
    #: A reservation: how much of it was spent and given back so far.
    spent: int | None = None
    released: int | None = None


class HistoryPage(msgspec.Struct, kw_only=True):
    entries: list[HistoryEntry]
    #: Pass as ``before`` to read the next (older) page; None when this is the last one.
    next_before: int | None


class EstimateRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    units: Annotated[int, msgspec.Meta(ge=0, le=100_000_000)]


class PackPurchase(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    reference: Reference
    packs: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 1


class PackRecorded(msgspec.Struct, kw_only=True):
    pack: SourceOut
    #: False: this reference was recorded before; nothing was credited again.
    created: bool


class GrantRun(msgspec.Struct, kw_only=True):
    merchants: int
    allowances_granted: int
    test_sends_granted: int
    sources_expired: int
    units_expired: int
