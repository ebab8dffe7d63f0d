"""Send rates held across every worker process: per merchant and for the SMTP relay.

dramatiq's window rate limiter keeps a counter per second in the broker's backend (Redis
with several workers, memory in the embedded mode), so two workers on two machines share one
budget. A message waits until both its merchant's and the relay's window have room. With a
rate of 0 (the default) there is no limit and no round trip.
"""

from __future__ import annotations

import asyncio
import threading
import time

from dramatiq.rate_limits import RateLimiterBackend, WindowRateLimiter
from dramatiq.rate_limits.backends import RedisBackend, StubBackend

from loyalmail.settings import get_settings

_backend: RateLimiterBackend | None = None
_backend_url: str | None = None
_lock = threading.Lock()


def _limits_backend() -> RateLimiterBackend:
    global _backend, _backend_url
    url = get_settings().redis_url
    with _lock:
        if _backend is None or _backend_url != url:
            _backend = RedisBackend(url=url) if url else StubBackend()
            _backend_url = url
        return _backend


def _acquire(limiter: WindowRateLimiter) -> bool:
    with limiter.acquire(raise_on_failure=False) as acquired:
        return bool(acquired)


async def _wait(key: str, per_second: int) -> None:
    limiter = WindowRateLimiter(_limits_backend(), key, limit=per_second, window=1)
    # The backend call is a blocking Redis round trip: off the event loop. There is no
    # event to wait on: the window is polled, once per window.
    while True:
        if await asyncio.to_thread(_acquire, limiter):
            return
        await asyncio.sleep(1.0 - (time.time() % 1.0) + 0.001)  # the next window


async def wait_for_slot(merchant_id: int) -> None:
    """Return when one more message may go out for ``merchant_id`` and for the relay."""
    settings = get_settings()
    if settings.send_rate_per_relay > 0:
        relay = f"{settings.smtp_host}:{settings.smtp_port}"
        await _wait(f"loyalmail-rate-relay-{relay}", settings.send_rate_per_relay)
    if settings.send_rate_per_merchant > 0:
        await _wait(f"loyalmail-rate-merchant-{merchant_id}", settings.send_rate_per_merchant)
