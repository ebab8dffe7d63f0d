"""A plain model of the quota ledger: what the database must agree with after every step."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class Source:
    id: int
    kind: str
    granted: int
    expires_at: datetime | None
    created_at: datetime
    reserved: int = 0
    spent: int = 0
    expired: int = 0

    @property
    def available(self) -> int:
        return self.granted - self.spent - self.reserved - self.expired

    def usable(self, now: datetime) -> bool:
        return self.expires_at is None or self.expires_at > now

    def draw_order(self) -> tuple[bool, datetime, datetime, int]:
        return (
            self.expires_at is None,
            self.expires_at or self.created_at,
            self.created_at,
            self.id,
        )


@dataclass
class Part:
    source: Source
    units: int
    spent: int = 0
    released: int = 0
    expired: int = 0

    @property
    def open(self) -> int:
        return self.units - self.spent - self.released - self.expired


@dataclass
class Reservation:
    id: int
    key: str
    pool: str
    units: int
    parts: list[Part]
    closed: bool = False
    resolved: set[str] = field(default_factory=set)

    @property
    def open(self) -> int:
        return sum(p.open for p in self.parts)


POOL_KINDS = {"send": ("allowance", "pack"), "test": ("test",)}


class Model:
    def __init__(self) -> None:
        self.sources: dict[int, Source] = {}
        self.reservations: dict[str, Reservation] = {}

    def plan(self, pool: str, units: int, now: datetime) -> list[tuple[Source, int]] | None:
        drawable = sorted(
            (
                s
                for s in self.sources.values()
                if s.kind in POOL_KINDS[pool] and s.usable(now) and s.available > 0
            ),
            key=Source.draw_order,
        )
        plan: list[tuple[Source, int]] = []
        missing = units
        for source in drawable:
            if missing == 0:
                break
            take = min(missing, source.available)
            plan.append((source, take))
            missing -= take
        return plan if missing == 0 else None

    def reserve(
        self, reservation_id: int, key: str, pool: str, plan: list[tuple[Source, int]]
    ) -> None:
        parts = []
        for source, take in plan:
            source.reserved += take
            parts.append(Part(source, take))
        units = sum(take for _, take in plan)
        self.reservations[key] = Reservation(reservation_id, key, pool, units, parts)

    def resolve(self, key: str, recipients: list[str], kind: str, now: datetime) -> int:
        """The expected number of newly resolved units; raises ValueError where the ledger
        must refuse (closed reservation, more than it holds)."""
        reservation = self.reservations[key]
        fresh = [r for r in dict.fromkeys(recipients) if r not in reservation.resolved]
        if not fresh:
            return 0
        if reservation.closed or reservation.open < len(fresh):
            raise ValueError("refused")
        parts = [p for p in reservation.parts if p.open > 0]
        if kind == "release":
            parts.reverse()
        remaining = len(fresh)
        for part in parts:
            take = min(part.open, remaining)
            if take == 0:
                continue
            remaining -= take
            source = part.source
            source.reserved -= take
            if kind == "spend":
                part.spent += take
                source.spent += take
            elif source.usable(now):
                part.released += take
            else:
                part.expired += take
                source.expired += take
        reservation.resolved.update(fresh)
        return len(fresh)

    def release_rest(self, key: str, now: datetime) -> int:
        reservation = self.reservations[key]
        if reservation.closed:
            return 0
        total = 0
        for part in reservation.parts:
            rest = part.open
            total += rest
            part.source.reserved -= rest
            if part.source.usable(now):
                part.released += rest
            else:
                part.expired += rest
                part.source.expired += rest
        reservation.closed = True
        return total

    def expire(self, now: datetime) -> None:
        for source in self.sources.values():
            if not source.usable(now) and source.available > 0:
                source.expired += source.available
