"""Pooled SMTP connections of one worker process: a batch sends all its messages over one
connection taken from here, and gives it back for the next batch.

Opening a connection (TCP, STARTTLS or TLS, login) costs several round trips; a campaign of
100,000 messages over fresh connections would spend most of its time on them. A pool
belongs to one event loop (asyncio streams cannot change loops) and one relay
configuration; at most ``smtp_pool_size`` connections are open at once. A connection that
sat idle for a while is checked with NOOP before it is lent out, and one that broke is
closed instead of returned.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiosmtplib

from loyalmail import mail
from loyalmail.settings import Settings, get_settings

#: An idle connection older than this is checked with NOOP before use (relays close idle
#: connections after a minute or so).
CHECK_AFTER_IDLE_SECONDS = 5.0


@dataclass
class _Idle:
    client: aiosmtplib.SMTP
    since: float


@dataclass
class SmtpPool:
    settings: Settings
    size: int
    _idle: list[_Idle] = field(default_factory=list)
    _slots: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        self._slots = asyncio.Semaphore(self.size)

    async def _usable_idle(self) -> aiosmtplib.SMTP | None:
        while self._idle:
            idle = self._idle.pop()
            if not idle.client.is_connected:
                continue
            if time.monotonic() - idle.since < CHECK_AFTER_IDLE_SECONDS:
                return idle.client
            try:
                await idle.client.noop()
                return idle.client
            except (aiosmtplib.SMTPException, OSError):
                await _close(idle.client)
        return None

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[aiosmtplib.SMTP]:
        """A connected (and logged-in) client for this block. Raises aiosmtplib's errors
        when the relay cannot be reached."""
        async with self._slots:
            client = await self._usable_idle() or await mail.open_connection(self.settings)
            try:
                yield client
            except BaseException:
                await _close(client)
                raise
            if client.is_connected:
                self._idle.append(_Idle(client, time.monotonic()))

    async def close(self) -> None:
        while self._idle:
            await _close(self._idle.pop().client)


async def _close(client: aiosmtplib.SMTP) -> None:
    with contextlib.suppress(Exception):
        if client.is_connected:
            await asyncio.wait_for(client.quit(), timeout=2)
    client.close()


_pools: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[str, int, str, str], SmtpPool]
]
_pools = weakref.WeakKeyDictionary()


def pool_for(settings: Settings | None = None) -> SmtpPool:
    """This event loop's pool for the configured relay."""
    settings = settings or get_settings()
    key = (settings.smtp_host, settings.smtp_port, settings.smtp_security, settings.smtp_username)
    pools = _pools.setdefault(asyncio.get_running_loop(), {})
    pool = pools.get(key)
    if pool is None:
        pool = pools[key] = SmtpPool(settings, settings.smtp_pool_size)
    return pool
