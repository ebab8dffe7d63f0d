"""Many processes reserve at the same instant for one merchant whose quota fits only some of
them, on PostgreSQL: nobody overspends, nobody is refused while enough was there, and the
merchant next to it is unaffected."""

from __future__ import annotations

import asyncio
import multiprocessing

import pytest
from piccolo.engine.base import Engine

from quota.services.common import PACK_SIZE
from quota.tables import QuotaReservation, QuotaSource
from tests.conftest import TEST_DATABASE_URL, make_merchant, service_missing
from tests.quota.race_worker import ASK, compete

PROCESSES = 8
ROUNDS = 130  # 8 × 130 = 1,040 races


async def test_concurrent_reservations_never_overspend(db: Engine) -> None:
    if db.engine_type != "postgres":
        pytest.skip("SQLite has one writer at a time (BEGIN IMMEDIATE): nothing to race")
    if not TEST_DATABASE_URL:
        service_missing("PostgreSQL", "LOYALMAIL_TEST_DATABASE_URL is not set")
    contested = await make_merchant()
    bystander = await make_merchant()
    from quota import services as quota

    await quota.buy_pack(bystander.id, "plenty")
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(PROCESSES, timeout=120)
    go = context.Barrier(PROCESSES, timeout=120)
    results = context.Queue()
    competitors = [
        context.Process(
            target=compete,
            args=(TEST_DATABASE_URL, me, ROUNDS, contested.id, bystander.id, ready, go, results),
        )
        for me in range(PROCESSES)
    ]
    for process in competitors:
        process.start()
    # Read before joining: a process does not end while its result sits in the pipe.
    outcomes = [row for _ in competitors for row in await asyncio.to_thread(results.get, True, 300)]
    for process in competitors:
        await asyncio.to_thread(process.join, 60)
        assert process.exitcode == 0
    assert [o["error"] for o in outcomes if "error" in o] == []
    assert len(outcomes) == PROCESSES * ROUNDS

    # Round by round: what was there at its start decides exactly how many could win.
    left = 0
    for n in range(ROUNDS):
        left += PACK_SIZE
        winners = sum(1 for o in outcomes if o["round"] == n and o["won"])
        assert winners == min(PROCESSES, left // ASK), n
        left -= winners * ASK
    sources = await QuotaSource.select().where(QuotaSource.merchant == contested.id)
    assert all(s["spent"] + s["reserved"] + s["expired"] <= s["granted"] for s in sources)
    won = sum(o["units"] for o in outcomes)
    assert sum(s["reserved"] for s in sources) == won
    reservations = await QuotaReservation.select().where(QuotaReservation.merchant == contested.id)
    assert sum(r["units"] for r in reservations) == won
    assert won > 0 and any(not o["won"] for o in outcomes)

    # The bystander got every one of its units, from its own pack only.
    theirs = await QuotaSource.select().where(QuotaSource.merchant == bystander.id)
    assert sum(s["reserved"] for s in theirs) == PROCESSES * ROUNDS
    assert sum(s["granted"] for s in theirs if s["kind"] == "pack") == PACK_SIZE
