"""loyalmail.sql's waiting out of an unreachable database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from loyalmail import sql


def test_what_counts_as_an_unreachable_database() -> None:
    assert sql.is_unreachable(ConnectionResetError(104, "Connection reset by peer"))
    assert sql.is_unreachable(ConnectionRefusedError(111, "Connection refused"))
    assert sql.is_unreachable(asyncpg.exceptions.ConnectionDoesNotExistError("closed"))
    assert sql.is_unreachable(asyncpg.exceptions.AdminShutdownError("terminating"))
    assert sql.is_unreachable(asyncpg.exceptions.CannotConnectNowError("starting up"))
    assert sql.is_unreachable(asyncpg.InterfaceError("the underlying connection is closed"))
    assert not sql.is_unreachable(asyncpg.InterfaceError("another operation is in progress"))
    assert not sql.is_unreachable(asyncpg.exceptions.UniqueViolationError("duplicate key"))
    assert not sql.is_unreachable(ValueError("a bug"))


async def test_an_operation_is_tried_again_until_the_database_is_back() -> None:
    tries: list[int] = []

    async def flaky() -> str:
        tries.append(1)
        if len(tries) < 3:
            raise ConnectionResetError(104, "Connection reset by peer")
        return "recorded"

    deadline = datetime.now(UTC) + timedelta(seconds=30)
    assert await sql.until_reachable(flaky, deadline=deadline, what="a test") == "recorded"
    assert len(tries) == 3


async def test_other_errors_and_a_passed_deadline_are_raised_at_once() -> None:
    tries: list[int] = []

    async def broken() -> None:
        tries.append(1)
        raise ValueError("a bug is not an outage")

    with pytest.raises(ValueError):
        await sql.until_reachable(
            broken, deadline=datetime.now(UTC) + timedelta(seconds=30), what="x"
        )
    assert len(tries) == 1

    async def down() -> None:
        tries.append(1)
        raise ConnectionRefusedError(111, "Connection refused")

    with pytest.raises(ConnectionRefusedError):
        await sql.until_reachable(
            down, deadline=datetime.now(UTC) + timedelta(seconds=0.2), what="x"
        )
    assert len(tries) == 2  # the next try could not have started before the deadline
