"""Random sequences of ledger operations against a plain model (tests/quota/model.py).

Grants, packs, reservations, spends, releases, month ends and repeats of any of them, on
SQLite and PostgreSQL. After every step: no source has spent + reserved + expired above
what it was granted; every balance equals the sum of its journal entries (conservation:
granted = spent + reserved + available + expired); each unit resolved at most once;
repeats change nothing; the allowance is drawn before packs; at most 10 test sends a month.

Hypothesis' state machines are synchronous, so the machine runs in a thread with an event
loop of its own (the engine opens its connections per query in tests, like the CLI does).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from piccolo.engine.base import Engine

from loyalmail.errors import Conflict, QuotaExceeded
from quota import services as quota
from quota.services import grants
from quota.services.common import Month
from quota.tables import QuotaEntry, QuotaReservation, QuotaSource
from tests.conftest import make_merchant
from tests.quota.model import Model, Source

T = TypeVar("T")
#: Small packs, so that sequences of small reservations exhaust them.
PACK = 25
KEYS = st.sampled_from([f"campaign:{n}" for n in range(6)])
TEST_KEYS = st.sampled_from([f"test:{n}" for n in range(10)])
#: What the sequences reached, over the whole run: the test asserts the interesting paths were
#: taken (a machine that only ever made refused reservations would prove little).
SEEN: Counter[str] = Counter()


def seen(label: str) -> None:
    event(label)
    SEEN[label] += 1


RECIPIENTS = st.lists(st.sampled_from([f"r{n}" for n in range(20)]), min_size=1, max_size=8)


class LedgerMachine(RuleBasedStateMachine):
    reservations = Bundle("reservations")

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.zone = "Europe/Berlin"
        self.merchant = self.run(make_merchant(time_zone=self.zone))
        self.model = Model()
        self.now = datetime.now(UTC).replace(microsecond=0)
        self.month = Month.containing(self.now, self.zone)
        self.last: Callable[[], Awaitable[Any]] | None = None
        self.start_month(loyal=20)

    def run(self, coroutine: Awaitable[T]) -> T:
        return self.loop.run_until_complete(coroutine)

    def teardown(self) -> None:
        self.loop.close()

    # --- helpers ---------------------------------------------------------------------------

    def start_month(self, loyal: int) -> None:
        """What the monthly job does: the allowance from the count, test sends, expiry."""
        self.run(quota.grant_allowance(self.merchant.id, self.month, loyal, counted_at=self.now))
        self.run(quota.ensure_current(self.merchant.id, self.now))
        self.run(quota.expire_sources(self.now, merchant_id=self.merchant.id))  # twice: no-op
        self.model.expire(self.now)
        self.adopt_new_sources({"allowance": 2 * loyal, "test": 10})

    def adopt_new_sources(self, expected: dict[str, int]) -> None:
        rows = self.run(QuotaSource.select().where(QuotaSource.merchant == self.merchant.id))
        for row in rows:
            if row["id"] in self.model.sources:
                continue
            assert row["granted"] == expected[row["kind"]], row
            self.model.sources[row["id"]] = Source(
                id=row["id"],
                kind=row["kind"],
                granted=row["granted"],
                expires_at=row["expires_at"],
                created_at=row["created_at"],
            )

    def snapshot(self) -> list[Any]:
        sources = self.run(
            QuotaSource.select()
            .where(QuotaSource.merchant == self.merchant.id)
            .order_by(QuotaSource.id)
        )
        reservations = self.run(
            QuotaReservation.select()
            .where(QuotaReservation.merchant == self.merchant.id)
            .order_by(QuotaReservation.id)
        )
        entries = self.run(QuotaEntry.count().where(QuotaEntry.merchant == self.merchant.id))
        return [sources, reservations, entries]

    # --- rules -----------------------------------------------------------------------------

    @rule(reference=st.sampled_from(["p1", "p2", "p3"]), packs=st.integers(1, 2))
    def buy_pack(self, reference: str, packs: int) -> None:
        async def operation() -> Any:
            return await quota.buy_pack(self.merchant.id, reference, packs, now=self.now)

        try:
            recorded = self.run(operation())
        except Conflict:
            existing = self.run(
                QuotaSource.select()
                .where(
                    (QuotaSource.merchant == self.merchant.id)
                    & (QuotaSource.reference == reference)
                )
                .first()
            )
            assert existing is not None and existing["granted"] != PACK * packs
            return
        assert recorded.pack.granted == PACK * packs
        seen("pack bought" if recorded.created else "pack recorded again")
        if recorded.created:
            self.adopt_new_sources({"pack": PACK * packs})
        self.last = operation

    @rule(target=reservations, key=KEYS, units=st.integers(0, 60))
    def reserve_send(self, key: str, units: int) -> str:
        return self._reserve(key, units, "send")

    @rule(target=reservations, key=TEST_KEYS, units=st.integers(2, 6))
    def reserve_test(self, key: str, units: int) -> str:
        return self._reserve(key, units, "test")

    def _reserve(self, key: str, units: int, pool: str) -> str:
        existing = self.model.reservations.get(key)

        async def operation() -> Any:
            return await quota.reserve(self.merchant.id, units, key=key, pool=pool, now=self.now)  # type: ignore[arg-type]

        if existing is not None:
            if existing.units != units or existing.pool != pool:
                with pytest.raises(Conflict):
                    self.run(operation())
                return key
            assert self.run(operation()).id == existing.id
            self.last = operation
            return key
        plan = self.model.plan(pool, units, self.now)
        seen(f"{pool} reservation " + ("refused" if plan is None else f"from {len(plan)} sources"))
        if plan is None:
            with pytest.raises(QuotaExceeded) as refused:
                self.run(operation())
            assert refused.value.extra["needed"] == units  # type: ignore[index]
            return key
        reservation = self.run(operation())
        # The database drew what the model drew, in the same order: the allowance (soonest
        # expiry) before packs, packs oldest first.
        assert reservation.parts == [(source.id, take) for source, take in plan]
        self.model.reserve(reservation.id, key, pool, plan)
        self.last = operation
        return key

    def _resolve(self, key: str, recipients: list[str], kind: str) -> None:
        reservation = self.model.reservations.get(key)
        if reservation is None:
            return
        call = quota.spend if kind == "spend" else quota.release

        async def operation() -> int:
            return await call(self.merchant.id, reservation.id, recipients, now=self.now)

        try:
            expected = self.model.resolve(key, recipients, kind, self.now)
        except ValueError:
            seen(f"{kind} refused")
            with pytest.raises(Conflict):
                self.run(operation())
            return
        seen(f"{kind} of {'some' if expected else 'no'} new units")
        assert self.run(operation()) == expected
        self.last = operation

    @rule(key=reservations, recipients=RECIPIENTS)
    def spend(self, key: str, recipients: list[str]) -> None:
        self._resolve(key, recipients, "spend")

    @rule(key=reservations, recipients=RECIPIENTS)
    def release(self, key: str, recipients: list[str]) -> None:
        self._resolve(key, recipients, "release")

    @rule(key=consumes(reservations))
    def release_rest(self, key: str) -> None:
        reservation = self.model.reservations.get(key)
        if reservation is None:
            return

        async def operation() -> int:
            return await quota.release_rest(self.merchant.id, reservation.id, now=self.now)

        expired_before = sum(p.expired for p in reservation.parts)
        expected = self.model.release_rest(key, self.now)
        if sum(p.expired for p in reservation.parts) > expired_before:
            seen("released units expired")
        assert self.run(operation()) == expected
        self.last = operation

    @rule(loyal=st.integers(0, 40), later=st.integers(0, 3 * 24 * 3600))
    def month_ends(self, loyal: int, later: int) -> None:
        self.now = self.month.ends_at + timedelta(seconds=later)
        self.month = Month.containing(self.now, self.zone)
        self.start_month(loyal)
        self.last = None

    @precondition(lambda self: self.last is not None)
    @rule()
    def repeat_last(self) -> None:
        before = self.snapshot()
        assert self.last is not None
        result = self.run(self.last())
        assert not (isinstance(result, int) and result), "a repeat resolved units again"
        assert self.snapshot() == before

    # --- invariants ------------------------------------------------------------------------

    @invariant()
    def balances_match_the_model_and_the_journal(self) -> None:
        rows = self.run(QuotaSource.select().where(QuotaSource.merchant == self.merchant.id))
        entries = self.run(QuotaEntry.select().where(QuotaEntry.merchant == self.merchant.id))
        assert {r["id"] for r in rows} == set(self.model.sources)
        for row in rows:
            source = self.model.sources[row["id"]]
            got = {k: row[k] for k in ("granted", "reserved", "spent", "expired")}
            assert got == {
                "granted": source.granted,
                "reserved": source.reserved,
                "spent": source.spent,
                "expired": source.expired,
            }, row
            assert row["spent"] + row["reserved"] + row["expired"] <= row["granted"]
            mine = [e for e in entries if e["source"] == row["id"]]
            total = {
                kind: sum(e["units"] for e in mine if e["kind"] == kind)
                for kind in ("grant", "purchase", "reserve", "spend", "release", "expire")
            }
            assert total["grant"] + total["purchase"] == row["granted"]
            assert total["spend"] == row["spent"]
            assert total["expire"] == row["expired"]
            assert total["reserve"] - total["spend"] - total["release"] == row["reserved"]
            if row["kind"] == "test":
                assert row["spent"] + row["reserved"] <= 10

    @invariant()
    def reservations_match_the_model(self) -> None:
        rows = self.run(
            QuotaReservation.select().where(QuotaReservation.merchant == self.merchant.id)
        )
        assert len(rows) == len(self.model.reservations)
        for row in rows:
            model = self.model.reservations[row["key"]]
            assert row["units"] == model.units
            assert row["spent"] == sum(p.spent for p in model.parts)
            assert row["released"] == sum(p.released for p in model.parts)
            assert row["expired"] == sum(p.expired for p in model.parts)
            assert (row["closed_at"] is not None) == model.closed
            assert row["spent"] + row["released"] + row["expired"] <= row["units"]


async def test_random_sequences_keep_every_rule(
    db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(grants, "PACK_SIZE", PACK)
    SEEN.clear()
    examples = 25 if db.engine_type == "sqlite" else 12
    await asyncio.to_thread(
        run_state_machine_as_test,
        LedgerMachine,
        settings=settings(
            max_examples=examples,
            stateful_step_count=50,
            deadline=None,
            # The same sequences every run: CI must not flake on which paths a random run
            # happened to reach (asserted below). Exploring more: raise max_examples locally.
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        ),
    )
    for path in (
        "send reservation from 2 sources",
        "send reservation refused",
        "test reservation refused",
        "spend of some new units",
        "release of some new units",
        "spend refused",
        "released units expired",
        "pack recorded again",
    ):
        assert SEEN[path] > 0, f"{path}: {sorted(SEEN.items())}"
