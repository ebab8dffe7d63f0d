"""Hand-written SQL on the open transaction, the same text on both engines.

The ledger (quota) and the send pipeline (campaigns.sending) write with conditional
statements whose WHERE clause carries the rule and whose RETURNING rows say whether it held.
They run on the connection of the transaction the caller opened with
:func:`write_transaction`, with sqlite3's ``?`` placeholders (numbered ``$n`` for asyncpg).
Times are UTC-aware datetimes: SQLite keeps them as ISO text (Piccolo's adapter), which
compares in order.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from piccolo.engine.sqlite import SQLiteEngine, TransactionType

from loyalmail import database
from loyalmail.errors import ServiceUnavailable, _

T = TypeVar("T")
log = logging.getLogger("loyalmail.sql")

#: How often a write transaction is tried again after losing a race it cannot resolve itself
#: (a PostgreSQL deadlock or serialization failure, or a concurrent first insert of a key).
ATTEMPTS = 20


class Retry(Exception):
    """A conditional statement found the row changed under it: run the transaction again."""


def placeholders(count: int) -> str:
    return ", ".join("?" * count)


def numbered(sql: str) -> str:
    """sqlite3's "?" as asyncpg's "$1, $2, …" (our SQL has no other "?")."""
    parts = sql.split("?")
    return parts[0] + "".join(f"${n}{part}" for n, part in enumerate(parts[1:], start=1))


def from_piccolo(sql: str) -> str:
    """Piccolo's ``{}`` placeholders (the segments compiler's) as sqlite3's ``?``."""
    return sql.replace("{}", "?")


def _connection() -> tuple[Any, bool]:
    db = database.engine()
    current = db.current_transaction.get()
    if current is None:
        raise RuntimeError("these statements run inside write_transaction()/read_transaction()")
    return current.connection, database.is_postgres(db)


async def fetch(sql: str, *args: Any) -> list[dict[str, Any]]:
    """Run ``sql`` on the open transaction's connection; rows as dicts."""
    connection, postgres = _connection()
    if postgres:
        return [dict(row) for row in await connection.fetch(numbered(sql), *args)]
    async with connection.execute(sql, args) as cursor:
        return [dict(row) for row in await cursor.fetchall()]


async def changed(sql: str, *args: Any) -> bool:
    """Run a conditional statement with RETURNING: did its rule hold (a row changed)?"""
    return bool(await fetch(sql, *args))


async def execute(sql: str, *args: Any) -> int:
    """Run a statement without RETURNING; the number of rows it touched."""
    connection, postgres = _connection()
    if postgres:
        status = await connection.execute(numbered(sql), *args)
        last = str(status).rsplit(" ", 1)[-1]
        return int(last) if last.isdigit() else 0
    async with connection.execute(sql, args) as cursor:
        return int(cursor.rowcount)


def is_unique_violation(exc: BaseException) -> bool:
    """sqlite3.IntegrityError (UNIQUE) / asyncpg's UniqueViolationError, without importing
    either driver here."""
    name = type(exc).__name__
    return name == "UniqueViolationError" or "UNIQUE constraint failed" in str(exc)


def _is_retryable(exc: BaseException) -> bool:
    # asyncpg's DeadlockDetectedError / SerializationError carry these SQLSTATEs; SQLite's
    # "database is locked" after its busy timeout is the same situation.
    state = getattr(exc, "sqlstate", None)
    return isinstance(exc, Retry) or state in {"40P01", "40001"} or "database is locked" in str(exc)


@asynccontextmanager
async def write_transaction() -> AsyncIterator[None]:
    """PostgreSQL: a plain transaction (the statements lock what they touch). SQLite:
    BEGIN IMMEDIATE takes the write lock up front, so no read-then-write can interleave."""
    db = database.engine()
    if isinstance(db, SQLiteEngine):
        async with db.transaction(transaction_type=TransactionType.immediate):
            yield
    else:
        async with db.transaction():
            yield


def read_transaction() -> Any:
    """A transaction for reads only (the statements run on a transaction's connection); on
    SQLite a deferred one, so it takes no write lock."""
    return database.engine().transaction()


async def with_retries(
    operation: Callable[[], Awaitable[T]],
    busy: str = _("The database is busy. Please try again in a moment."),
) -> T:
    """Run ``operation`` (which opens its own write transaction) until it commits without
    losing a race. Operations are idempotent by key or guarded by a state, so a retry
    cannot count twice."""
    for attempt in range(ATTEMPTS):
        try:
            return await operation()
        except Exception as exc:
            if not _is_retryable(exc):
                raise
            await asyncio.sleep(0.002 * (attempt + 1))
    raise ServiceUnavailable(busy)


#: SQLSTATEs of a database that is gone for now, besides connection exceptions (class 08):
#: the server shutting down, crashed or still starting (57P01–57P03), and the session ended
#: for sitting idle in its transaction (25P03: this process was stopped or frozen past
#: ``database_idle_transaction_seconds``); a new connection works.
_UNREACHABLE_STATES = frozenset({"57P01", "57P02", "57P03", "25P03"})


#: The longest one try of :func:`until_reachable` may take before it is made again.
ATTEMPT_SECONDS = 10.0


def is_unreachable(exc: BaseException) -> bool:
    """The database could not be reached or the connection broke under us (a network cut,
    PostgreSQL restarting): worth trying again once it is back, unlike any other error."""
    state = str(getattr(exc, "sqlstate", "") or "")
    if state.startswith("08") or state in _UNREACHABLE_STATES:
        return True
    if type(exc).__name__ == "InterfaceError" and "closed" in str(exc):
        return True  # asyncpg, on a connection the server or the network closed
    return isinstance(exc, OSError)


async def until_reachable(
    operation: Callable[[], Awaitable[T]], *, deadline: datetime, what: str
) -> T:
    """Run ``operation`` again while the database is unreachable, waiting 0.5, 1, 2 … 5 s
    between tries, as long as the next try can still start before ``deadline`` (UTC); then
    the last error is raised. For work whose result is only good until a deadline: a send
    worker's outcomes while its lease holds (recorded late, they are still ours; given up,
    they are sent again by whoever takes the lease over)."""
    wait = 0.5
    while True:
        try:
            # A try that hangs (a connection half-open after the network came back) is given
            # up and made again; a statement of this kind takes milliseconds.
            return await asyncio.wait_for(operation(), timeout=ATTEMPT_SECONDS)
        except Exception as exc:
            if not (is_unreachable(exc) or isinstance(exc, TimeoutError)) or (
                datetime.now(UTC) + timedelta(seconds=wait) >= deadline
            ):
                raise
            log.warning(
                "database unreachable while %s (%r); trying again in %.1f s", what, exc, wait
            )
        await asyncio.sleep(wait)
        wait = min(wait * 2, 5.0)
