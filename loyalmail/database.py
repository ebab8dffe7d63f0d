"""The database engine: SQLite by default, PostgreSQL when the URL says so.

``piccolo_conf.DB`` is built from the settings here. Tests (and the CLI) can point every
table at another engine with :func:`use_engine`, which is how one test suite runs on both.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import weakref
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from asyncpg.pool import PoolConnectionProxy
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine, PostgresTransaction
from piccolo.engine.sqlite import SQLiteEngine, SQLiteTransaction, TransactionType
from piccolo.table import Table

_current: Engine | None = None

#: Set on every PostgreSQL connection. Target-group counts are prepared statements whose best
#: plan depends on the values (a merchant of 800,000 customers or of 80): after five runs
#: PostgreSQL would settle on one generic plan with a blind estimate, measured 2× slower at a
#: million customers (benchmarks/segments.py), so plans are made for each call's values.
#: JIT compiles for 40–50 ms on plans just over its cost threshold, more than it saves on
#: queries that run in tens of milliseconds.
POSTGRES_SESSION_SETTINGS = {"plan_cache_mode": "force_custom_plan", "jit": "off"}


def postgres_session_settings() -> dict[str, str]:
    """:data:`POSTGRES_SESSION_SETTINGS`, and the installation's limit on a session idle in
    a transaction (settings ``database_idle_transaction_seconds``)."""
    from loyalmail.settings import get_settings

    idle_ms = round(get_settings().database_idle_transaction_seconds * 1000)
    return {**POSTGRES_SESSION_SETTINGS, "idle_in_transaction_session_timeout": str(idle_ms)}


#: The largest key of a Serial column (32 bits on PostgreSQL) and of a BIGINT one. A number
#: past them is nobody's row, and PostgreSQL would refuse it as a query parameter: callers
#: check input against these before it reaches a query.
LARGEST_KEY = 2**31 - 1
LARGEST_BIG_KEY = 2**63 - 1


async def _end_transaction(
    transaction: Any, exception: BaseException | None, give_back: Callable[[], Awaitable[Any]]
) -> bool:
    """Piccolo's way out of a transaction (roll back after an error, else commit), except
    that the connection is given back and the transaction forgotten whatever happens on the
    way: the rollback or commit may fail on a broken or locked connection. A nested
    transaction leaves all of it to its parent."""
    if transaction._parent:
        return exception is None
    try:
        if exception:
            if not transaction._rolled_back:
                await transaction.rollback()
        elif not transaction._committed and not transaction._rolled_back:
            await transaction.commit()
    finally:
        try:
            await give_back()
        finally:
            transaction.engine.current_transaction.reset(transaction.context)
    return exception is None


class ReleasingTransaction(PostgresTransaction):
    """Piccolo's PostgreSQL transaction, but its connection goes back whatever happens on
    the way out.

    Piccolo releases the connection only after a rollback or commit that succeeded. When the
    connection broke under the transaction (a network cut, PostgreSQL restarting), the
    rollback failed, the release was skipped and the pool lost that connection for good,
    until every worker thread waited forever on an empty pool (found by the fault suite's
    postgres-down scenario). And a connection opened while the loop had no pool yet (a
    worker's first job can start before its pool exists) is closed, not handed to a pool
    it never came from (asyncpg refuses that)."""

    async def __aexit__(self, exception_type: Any, exception: Any, traceback: Any) -> bool:
        return await _end_transaction(self, exception, self._give_back)

    async def _give_back(self) -> None:
        connection, pool = self.connection, self.engine.pool
        if isinstance(connection, PoolConnectionProxy):
            if pool is not None and connection._holder._pool is pool:
                await pool.release(connection)  # a broken one is terminated by asyncpg
                return
            connection = connection._con  # from a pool that is gone: close what it holds
        if connection is not None and not connection.is_closed():
            try:
                await connection.close(timeout=5)
            except Exception:
                connection.terminate()


class ClosingSQLiteTransaction(SQLiteTransaction):
    """Piccolo's SQLite transaction, but its connection is closed whatever happens.

    Piccolo closes it only after a COMMIT or ROLLBACK that worked, and not at all when BEGIN
    fails. A COMMIT that timed out ("database is locked") then left a connection open in
    the middle of its transaction: it kept the write lock, so every other write of the
    process failed after its busy timeout, until the garbage collector happened to close
    it; and aiosqlite's thread of a connection never closed is not a daemon, so the process
    could not exit (CI run of stop 17: ten SQLite tests failed "database is locked", then
    the run hung past its time). Closing discards whatever the transaction had not
    committed."""

    async def __aenter__(self) -> SQLiteTransaction:
        if self._parent is not None:
            return self._parent
        self.connection = await self.get_connection()
        try:
            await self.begin()
        except BaseException:
            await self.connection.close()
            raise
        self.context = self.engine.current_transaction.set(self)
        return self

    async def __aexit__(self, exception_type: Any, exception: Any, traceback: Any) -> bool:
        # A nested transaction has no connection of its own: looked up only when needed.
        return await _end_transaction(self, exception, lambda: self.connection.close())


class WalSQLiteEngine(SQLiteEngine):
    """Piccolo's SQLite engine on a database in write-ahead-log mode, with transactions that
    never leave their connection open (:class:`ClosingSQLiteTransaction`).

    In SQLite's default journal mode a COMMIT must wait until no other connection is
    reading: one long read (an export, a report) made the commits of every other request
    and job wait out the busy timeout and fail. With the write-ahead log, readers and the
    one writer do not wait for each other. The mode is stored in the database file, so
    setting it once when the engine is made covers every connection, in every process."""

    def __init__(self, path: str, timeout: float = 30) -> None:
        super().__init__(path=path, timeout=timeout)
        with contextlib.closing(sqlite3.connect(path, timeout=timeout)) as connection:
            connection.execute("PRAGMA journal_mode=WAL")

    def transaction(
        self,
        transaction_type: TransactionType = TransactionType.deferred,
        allow_nested: bool = True,
    ) -> ClosingSQLiteTransaction:
        return ClosingSQLiteTransaction(
            engine=self, transaction_type=transaction_type, allow_nested=allow_nested
        )


def sqlite_engine(path: Path | str) -> WalSQLiteEngine:
    """The SQLite engine of a database file (made, with its folder, if missing)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return WalSQLiteEngine(path=str(path), timeout=30)


class LoopPooledPostgresEngine(PostgresEngine):
    """Piccolo's PostgreSQL engine with one connection pool per event loop.

    An asyncpg pool belongs to the loop that made it. One process can run two loops that
    query the same engine: ``loyalmail serve`` without Redis runs the web app on uvicorn's
    loop and the worker threads' async actors on dramatiq's. With Piccolo's single ``pool``
    the actors would borrow connections of the web app's loop and fail; here each loop sees
    only its own pool (or none: then every transaction opens a connection of its own).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
            weakref.WeakKeyDictionary()
        )
        super().__init__(*args, **kwargs)

    def transaction(self, allow_nested: bool = True) -> ReleasingTransaction:
        return ReleasingTransaction(engine=self, allow_nested=allow_nested)

    @property
    def pool(self) -> Any:
        try:
            return self._pools.get(asyncio.get_running_loop())
        except RuntimeError:  # no running loop: no pool to use
            return None

    @pool.setter
    def pool(self, value: Any) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # Piccolo's __init__ sets None outside any loop
            return
        if value is None:
            self._pools.pop(loop, None)
        else:
            self._pools[loop] = value


def make_engine(url: str) -> Engine:
    parsed = urlparse(url)
    if parsed.scheme in {"postgres", "postgresql"}:
        config: dict[str, object] = {
            "host": parsed.hostname or "127.0.0.1",
            "port": parsed.port or 5432,
            "user": unquote(parsed.username or "postgres"),
            "database": (parsed.path or "/loyalmail").lstrip("/"),
        }
        if parsed.password:
            config["password"] = unquote(parsed.password)
        config["server_settings"] = postgres_session_settings()
        return LoopPooledPostgresEngine(config=config, log_queries=False)
    if parsed.scheme == "sqlite":
        # SQLAlchemy's convention: sqlite:///relative.db, sqlite:////absolute/path.db
        return sqlite_engine(unquote(url.removeprefix("sqlite:///")))
    raise ValueError(f"Unsupported database URL {url!r}: use sqlite:///path or postgresql://…")


def all_tables() -> list[type[Table]]:
    from piccolo.apps.migrations.tables import Migration
    from piccolo.conf.apps import Finder

    # Piccolo's own migration ledger is not in our registry but must follow the engine too.
    return [*Finder().get_table_classes(), Migration]


def use_engine(engine: Engine) -> None:
    """Point piccolo_conf and every registered table at ``engine``."""
    global _current
    import piccolo_conf

    piccolo_conf.DB = engine
    for table in all_tables():
        table._meta.db = engine
    _current = engine


def engine() -> Engine:
    if _current is not None:
        return _current
    import piccolo_conf

    return piccolo_conf.DB


def is_postgres(db: Engine | None = None) -> bool:
    return isinstance(db or engine(), PostgresEngine)
