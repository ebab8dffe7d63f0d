"""The SQLite engine (loyalmail.database.WalSQLiteEngine): a transaction never leaves its
connection open, and a long read does not make commits fail.

Each of these failed on Piccolo's own engine: the failed COMMIT kept the write lock (every
other write then failed "database is locked"), the failed BEGIN left a thread that keeps the
process from exiting, and the open read made the COMMIT wait out the busy timeout and fail.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from piccolo.engine.sqlite import TransactionType

from loyalmail.database import WalSQLiteEngine


def lingering_threads() -> set[threading.Thread]:
    """Threads that would keep the interpreter from exiting (aiosqlite's are such)."""
    return {t for t in threading.enumerate() if not t.daemon and t is not threading.main_thread()}


def threads_left_since(before: set[threading.Thread]) -> set[threading.Thread]:
    """The non-daemon threads started since `before` that are still running after a grace.

    aiosqlite's close() returns when its thread has answered the stop, a moment before that
    thread leaves its loop (CI run of stop 28 saw it still alive): a closed connection's thread
    ends within the grace, one never closed waits on its queue for ever."""
    started = lingering_threads() - before
    for thread in started:
        thread.join(timeout=2)
    return {thread for thread in started if thread.is_alive()}


@pytest.fixture
def path(tmp_path: Path) -> Path:
    made = tmp_path / "engine.sqlite"
    with sqlite3.connect(made) as connection:
        connection.execute("CREATE TABLE t (x INTEGER)")
    connection.close()
    return made


def rows(path: Path) -> list[int]:
    connection = sqlite3.connect(path)
    try:
        return [x for (x,) in connection.execute("SELECT x FROM t ORDER BY x")]
    finally:
        connection.close()


async def test_the_database_is_in_write_ahead_log_mode(path: Path) -> None:
    WalSQLiteEngine(path=str(path), timeout=1)
    connection = sqlite3.connect(path)
    try:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        connection.close()


async def test_a_failed_commit_closes_the_connection_and_keeps_no_lock(path: Path) -> None:
    engine = WalSQLiteEngine(path=str(path), timeout=1)
    before = lingering_threads()
    transaction = engine.transaction(transaction_type=TransactionType.immediate)

    async def commit_fails() -> None:
        raise sqlite3.OperationalError("database is locked")

    with pytest.raises(sqlite3.OperationalError, match="locked"):
        async with transaction:
            await engine.run_ddl("INSERT INTO t (x) VALUES (1)")
            transaction.commit = commit_fails  # type: ignore[method-assign]
    # The write lock went with the connection: another writer gets in at once.
    other = sqlite3.connect(path, timeout=0.2)
    try:
        other.execute("INSERT INTO t (x) VALUES (2)")
        other.commit()
    finally:
        other.close()
    assert rows(path) == [2]  # what was not committed is gone
    assert threads_left_since(before) == set()
    assert engine.current_transaction.get() is None


async def test_a_failed_begin_closes_the_connection(path: Path) -> None:
    engine = WalSQLiteEngine(path=str(path), timeout=0.2)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # someone else holds the write lock
    before = lingering_threads()
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            async with engine.transaction(transaction_type=TransactionType.immediate):
                pytest.fail("BEGIN IMMEDIATE cannot succeed while another writer holds the lock")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert threads_left_since(before) == set()
    assert engine.current_transaction.get() is None


async def test_a_long_read_does_not_make_a_commit_fail(path: Path) -> None:
    engine = WalSQLiteEngine(path=str(path), timeout=0.5)
    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute("BEGIN")
    assert reader.execute("SELECT COUNT(*) FROM t").fetchone() == (0,)  # holds its snapshot
    try:
        async with engine.transaction(transaction_type=TransactionType.immediate):
            await engine.run_ddl("INSERT INTO t (x) VALUES (3)")
        # The reader still sees its snapshot; the commit did not wait for it.
        assert reader.execute("SELECT COUNT(*) FROM t").fetchone() == (0,)
    finally:
        reader.execute("ROLLBACK")
        reader.close()
    assert rows(path) == [3]
