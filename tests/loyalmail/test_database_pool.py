"""PostgreSQL connection pools per event loop, and the worker's pool on the actors' loop."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from dramatiq.asyncio import EventLoopThread, get_event_loop_thread, set_event_loop_thread

from loyalmail import broker as broker_setup
from loyalmail import database
from tests.conftest import TEST_DATABASE_URL, service_missing


@pytest.fixture
async def postgres() -> AsyncIterator[database.LoopPooledPostgresEngine]:
    """An engine on the test database (no tables needed: the queries ask the server)."""
    if not TEST_DATABASE_URL:
        service_missing("PostgreSQL", "LOYALMAIL_TEST_DATABASE_URL is not set")
    engine = database.make_engine(TEST_DATABASE_URL)
    assert isinstance(engine, database.LoopPooledPostgresEngine)
    try:
        await engine.run_ddl("SELECT 1")
    except OSError as exc:
        service_missing("PostgreSQL", str(exc))
    yield engine


async def backend_pid(engine: Any) -> int:
    async with engine.transaction() as transaction:
        return int(await transaction.connection.fetchval("SELECT pg_backend_pid()"))


def test_every_event_loop_sees_only_its_own_pool(
    postgres: database.LoopPooledPostgresEngine,
) -> None:
    both_started = threading.Barrier(2, timeout=20)
    seen: dict[str, tuple[int, int, int]] = {}

    async def one_loop(name: str) -> None:
        assert postgres.pool is None
        await postgres.start_connection_pool(min_size=1, max_size=1)
        pool = postgres.pool
        assert pool is not None
        await asyncio.to_thread(both_started.wait)  # the other loop's pool exists meanwhile
        assert postgres.pool is pool
        # One connection in the pool: both transactions ran on it.
        seen[name] = (id(pool), await backend_pid(postgres), await backend_pid(postgres))
        await postgres.close_connection_pool()
        assert postgres.pool is None

    threads = [threading.Thread(target=asyncio.run, args=(one_loop(name),)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    (pool_a, first_a, second_a), (pool_b, first_b, second_b) = seen["a"], seen["b"]
    assert pool_a != pool_b
    assert first_a == second_a and first_b == second_b and first_a != first_b
    assert postgres.pool is None  # outside any loop


async def test_a_loop_without_a_pool_opens_a_connection_per_transaction(
    postgres: database.LoopPooledPostgresEngine,
) -> None:
    assert postgres.pool is None
    assert await backend_pid(postgres) != await backend_pid(postgres)


@pytest.fixture
def actors_loop() -> Iterator[EventLoopThread]:
    """A stand-in for the event loop dramatiq's AsyncIO middleware starts at worker boot;
    the session's worker keeps its own."""
    previous = get_event_loop_thread()
    loop_thread = EventLoopThread(logging.getLogger("test"))
    loop_thread.start(timeout=5)
    set_event_loop_thread(loop_thread)
    try:
        yield loop_thread
    finally:
        loop_thread.stop()
        set_event_loop_thread(previous)


def test_a_worker_opens_a_pool_on_the_actors_loop_and_closes_it_at_shutdown(
    postgres: database.LoopPooledPostgresEngine, actors_loop: EventLoopThread
) -> None:
    previous = database.engine()
    database.use_engine(postgres)
    try:
        middleware = broker_setup.DatabasePool()
        worker = SimpleNamespace(worker_threads=3)
        middleware.after_worker_boot(broker_setup.get_broker(), worker)  # type: ignore[arg-type]

        async def pool_size() -> tuple[int, int]:
            pool = postgres.pool
            assert pool is not None
            pids = {await backend_pid(postgres) for _ in range(5)}
            return pool.get_max_size(), len(pids)

        assert actors_loop.run_coroutine(pool_size()) == (5, 1)  # threads + 2; reused
        assert postgres.pool is None  # this test's own loop has none
        middleware.before_worker_shutdown(broker_setup.get_broker(), worker)  # type: ignore[arg-type]

        async def pool_now() -> object:
            return postgres.pool

        assert actors_loop.run_coroutine(pool_now()) is None
    finally:
        database.use_engine(previous)


async def _broken_transaction(engine: Any, killer: Any) -> None:
    """A transaction whose connection the server closes under it (as a network cut or a
    restart of PostgreSQL would): the statement after that fails."""
    async with engine.transaction() as transaction:
        pid = await transaction.connection.fetchval("SELECT pg_backend_pid()")
        await killer.fetchval("SELECT pg_terminate_backend($1)", pid)
        await transaction.connection.fetchval("SELECT 1")


async def test_a_broken_connection_goes_back_to_the_pool(
    postgres: database.LoopPooledPostgresEngine,
) -> None:
    # Piccolo released a transaction's connection only after a rollback that worked: three
    # broken connections emptied this pool of two for good, and the next transaction waited
    # forever (the fault suite's postgres-down scenario hung every send worker this way).
    import asyncpg

    await postgres.start_connection_pool(min_size=1, max_size=2)
    killer = await asyncpg.connect(TEST_DATABASE_URL)
    try:
        for _ in range(3):
            with pytest.raises((asyncpg.PostgresConnectionError, asyncpg.InterfaceError, OSError)):
                await _broken_transaction(postgres, killer)
        assert await asyncio.wait_for(backend_pid(postgres), timeout=10) > 0
        assert postgres.current_transaction.get() is None
    finally:
        await killer.close()
        await postgres.close_connection_pool()


async def test_a_connection_opened_before_the_pool_is_closed_not_released_to_it(
    postgres: database.LoopPooledPostgresEngine,
) -> None:
    # A worker's first job can open its transaction before the worker's pool exists; asyncpg
    # refused to take that connection back ("is not a member of this pool") and the job failed.
    assert postgres.pool is None
    async with postgres.transaction() as transaction:
        await postgres.start_connection_pool(min_size=1, max_size=1)
        connection = transaction.connection
        assert await connection.fetchval("SELECT 1") == 1
    try:
        assert connection.is_closed()
        assert await backend_pid(postgres) > 0  # the pool works
    finally:
        await postgres.close_connection_pool()


async def test_a_session_idle_in_its_transaction_is_ended() -> None:
    """A frozen process must not hold its locks for ever: PostgreSQL ends its session after
    ``database_idle_transaction_seconds``, and the next try (a new connection) counts the
    error as the database being unreachable, not as a bug."""
    from loyalmail import sql
    from tests.settings_env import settings_env

    if not TEST_DATABASE_URL:
        service_missing("PostgreSQL", "LOYALMAIL_TEST_DATABASE_URL is not set")
    with settings_env({"LOYALMAIL_DATABASE_IDLE_TRANSACTION_SECONDS": "0.5"}):
        engine = database.make_engine(TEST_DATABASE_URL)
    with pytest.raises(Exception) as ended:
        async with engine.transaction() as transaction:
            assert await transaction.connection.fetchval("SELECT 1") == 1
            await asyncio.sleep(1.5)  # frozen, inside the transaction
            await transaction.connection.fetchval("SELECT 2")
    assert sql.is_unreachable(ended.value), repr(ended.value)
    # Another connection of the same engine works.
    assert [dict(row) for row in await engine.run_ddl("SELECT 3 AS n")] == [{"n": 3}]
