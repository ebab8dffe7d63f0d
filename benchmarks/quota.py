"""Benchmark: quota reservations and spends per second on PostgreSQL, 8 concurrent clients.

    uv run python benchmarks/quota.py            # 10 s per phase
    uv run python benchmarks/quota.py --quick    # 2 s per phase

Eight client processes work for one merchant at once (the worst case: every write meets the
same allowance row), each with its own connection:

* reserve: a campaign's all-or-nothing reservation (10 units, a key of its own), including
  the month check every reservation makes first;
* spend, batch of 100: what a send worker does after an SMTP batch (one idempotent journal
  entry per recipient, balances in the same transaction); the figure is units per second;
* spend, one at a time: the same, one recipient per call;
* reference: a bare conditional UPDATE … RETURNING on a one-row table per round trip from
  the same processes: the ceiling any ledger write of ours could reach.

Target (issue 5): at least 5,000 spends per second. The database is dropped and made again
(``--database-url``, default loyalmail_bench_quota). The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import multiprocessing
import sys
import time
from datetime import timedelta
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/loyalmail_bench_quota"
CLIENTS = 8
SPEND_TARGET = 5_000
BATCH = 100


async def _prepare(url: str) -> int:
    import asyncpg

    from loyalmail import database

    admin_url, name = url.rsplit("/", 1)
    admin = await asyncpg.connect(f"{admin_url}/postgres")
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    database.use_engine(database.make_engine(url))
    from piccolo.apps.migrations.commands.forwards import run_forwards

    from accounts import services as accounts
    from accounts.schemas import MerchantCreate
    from accounts.tables import Merchant
    from quota import services as quota

    with contextlib.redirect_stdout(io.StringIO()):  # Piccolo prints a heading per app
        result = await run_forwards("all")
    assert result.success, result.message
    merchant = await accounts.create_merchant(
        MerchantCreate(slug="bench", name="Bench", time_zone="Europe/Berlin")
    )
    # A merchant past its first month (no top-up count on every call), with plenty of packs.
    await Merchant.update({Merchant.created_at: Merchant.created_at - timedelta(days=400)}).where(
        Merchant.id == merchant.id
    )
    await quota.buy_pack(merchant.id, "bench", 100_000)
    return merchant.id


def _client(
    url: str, me: int, merchant_id: int, phase: str, seconds: float, go: Barrier, out: Queue[Any]
) -> None:
    async def main() -> int:
        import asyncpg

        from loyalmail import database
        from quota import services as quota

        engine = database.make_engine(url)
        database.use_engine(engine)
        await engine.start_connection_pool(min_size=1, max_size=1)  # type: ignore[call-arg]
        reference = await asyncpg.connect(url)
        reservation = None
        if phase.startswith("spend"):
            reservation = await quota.reserve(merchant_id, 10_000_000, key=f"{phase}:{me}")
        await asyncio.to_thread(go.wait)
        done = 0
        ends = time.perf_counter() + seconds
        while time.perf_counter() < ends:
            if phase == "reserve":
                await quota.reserve(merchant_id, 10, key=f"r:{me}:{done}")
                done += 1
            elif phase == "spend-batch":
                assert reservation is not None
                keys = [f"{me}:{done + n}" for n in range(BATCH)]
                done += await quota.spend(merchant_id, reservation.id, keys)
            elif phase == "spend-one":
                assert reservation is not None
                done += await quota.spend(merchant_id, reservation.id, [f"{me}:{done}"])
            else:
                row = await reference.fetchval(
                    "UPDATE bench_counter SET n = n + 1 WHERE id = 1 AND n + 1 <= cap RETURNING id"
                )
                assert row == 1
                done += 1
        await reference.close()
        await engine.close_connection_pool()
        return done

    out.put(asyncio.run(main()))


def _phase(url: str, merchant_id: int, phase: str, seconds: float) -> float:
    context = multiprocessing.get_context("spawn")
    go = context.Barrier(CLIENTS + 1)
    out = context.Queue()
    processes = [
        context.Process(target=_client, args=(url, me, merchant_id, phase, seconds, go, out))
        for me in range(CLIENTS)
    ]
    for process in processes:
        process.start()
    go.wait()
    started = time.perf_counter()
    total = sum(out.get(timeout=seconds + 120) for _ in processes)
    elapsed = time.perf_counter() - started
    for process in processes:
        process.join(30)
    return total / elapsed


async def _reference_table(url: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(url)
    await connection.execute(
        "CREATE TABLE bench_counter (id int PRIMARY KEY, n bigint, cap bigint);"
        " INSERT INTO bench_counter VALUES (1, 0, 9223372036854775807)"
    )
    await connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--quick", action="store_true", help="2 s per phase instead of 10")
    parser.add_argument("--seconds", type=float, default=None)
    args = parser.parse_args()
    seconds = args.seconds or (2.0 if args.quick else 10.0)
    merchant_id = asyncio.run(_prepare(args.database_url))
    asyncio.run(_reference_table(args.database_url))
    figures = {
        "reservations_per_s": _phase(args.database_url, merchant_id, "reserve", seconds),
        "spends_per_s_batch_100": _phase(args.database_url, merchant_id, "spend-batch", seconds),
        "spends_per_s_one_at_a_time": _phase(args.database_url, merchant_id, "spend-one", seconds),
        "reference_conditional_updates_per_s": _phase(
            args.database_url, merchant_id, "reference", seconds
        ),
    }
    heading = f"Quota ledger on PostgreSQL, {CLIENTS} client processes, one merchant"
    print(f"\n{heading}, {seconds:g} s per phase")
    print(f"{'figure':<46} {'per second':>12} {'target':>10}")
    labels = {
        "reservations_per_s": "reservations (10 units each)",
        "spends_per_s_batch_100": f"spends, batches of {BATCH} (units)",
        "spends_per_s_one_at_a_time": "spends, one per call",
        "reference_conditional_updates_per_s": "reference: bare conditional UPDATE",
    }
    for key, label in labels.items():
        target = f"≥ {SPEND_TARGET:,}" if key == "spends_per_s_batch_100" else ""
        print(f"{label:<46} {figures[key]:>12,.0f} {target:>10}")
    report: dict[str, object] = {k: round(v, 1) for k, v in figures.items()}
    report["spend_target_met"] = figures["spends_per_s_batch_100"] >= SPEND_TARGET
    report["clients"] = CLIENTS
    report["seconds_per_phase"] = seconds
    print(json.dumps(report))


if __name__ == "__main__":
    main()
