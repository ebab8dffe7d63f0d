"""One competitor of the PostgreSQL race test, run in a process of its own."""

from __future__ import annotations

import asyncio
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from typing import Any

from loyalmail import database
from loyalmail.errors import QuotaExceeded

#: Units each competitor asks for in every round.
ASK = 3_000


def compete(
    url: str,
    me: int,
    rounds: int,
    contested: int,
    bystander: int,
    ready: Barrier,
    go: Barrier,
    results: Queue[list[dict[str, Any]]],
) -> None:
    """Each round: wait until competitor 0 has bought the round's pack, then reserve at the
    same instant as everyone else; also reserve one unit of the bystander merchant."""

    async def main() -> list[dict[str, Any]]:
        from quota import services as quota

        engine = database.make_engine(url)
        database.use_engine(engine)
        # A connection of its own for the whole run, as a worker process has.
        await engine.start_connection_pool(min_size=1, max_size=2)  # type: ignore[call-arg]
        results: list[dict[str, Any]] = []
        for n in range(rounds):
            await asyncio.to_thread(ready.wait)
            if me == 0:
                await quota.buy_pack(contested, f"round-{n}")
            await asyncio.to_thread(go.wait)
            try:
                reservation = await quota.reserve(contested, ASK, key=f"race:{n}:{me}")
                results.append({"round": n, "won": True, "units": reservation.units})
            except QuotaExceeded:
                results.append({"round": n, "won": False, "units": 0})
            await quota.reserve(bystander, 1, key=f"bystander:{n}:{me}")
        await engine.close_connection_pool()
        return results

    try:
        results.put(asyncio.run(main()))
    except BaseException as exc:
        # Reported instead of hanging the others at the barrier (which then breaks, timed).
        results.put([{"round": -1, "won": False, "units": 0, "error": repr(exc)}])
        go.abort()
        ready.abort()
