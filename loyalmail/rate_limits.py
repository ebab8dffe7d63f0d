"""Rate limits of the public endpoints that need no login (the /r/ recipient routes: pixel,
click, unsubscribe, web version, opt-in confirmation): per client address and per token.

A signed token cannot be forged, but a valid one can be replayed to inflate a campaign's
clicks or to load the database, and an address can try tokens by the thousand. Each gets a
budget per minute (settings ``public_rate_per_ip`` and ``public_rate_per_token``, 0: no
limit); past it the answer is 429 with Retry-After, and the request does nothing.

Counted in the process (fixed one-minute windows, forgotten when the window turns): no
network round trip on the pixel's hot path. With several web processes behind a balancer
each holds its own count, so the installation's budget is that many times larger.
The per-address budget is generous on purpose: Google's and Apple's image proxies fetch
every pixel of their users from a handful of addresses.

The sign-up form (``/r/signup/<slug>``) is different: its path names a shop, not a
recipient, so it has no per-token budget (that would let anyone close a shop's page for all
its visitors), and its POSTs — each may create a customer and send an e-mail — have their
own small budget per address (``signup_rate_per_ip``; people sign up once, scripts do not).
"""

from __future__ import annotations

import math
import time

from litestar.types import (
    ASGIApp,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Receive,
    Scope,
    Send,
)

from loyalmail.settings import get_settings

#: The paths under the limits.
PREFIX = "/r/"
#: The sign-up form's paths: no token in them, and a budget of their own for POSTs.
SIGNUP_PREFIX = "/r/signup/"
WINDOW_SECONDS = 60.0


class WindowCounter:
    """How many hits each key had in the current fixed window."""

    def __init__(self, limit: int, window: float = WINDOW_SECONDS) -> None:
        self.limit = limit
        self.window = window
        self._started = 0.0
        self._hits: dict[str, int] = {}

    def allow(self, key: str, now: float) -> float | None:
        """None when the hit is within the budget (and counted), else the seconds left."""
        if now - self._started >= self.window:
            self._started = now - (now % self.window)
            self._hits.clear()
        hits = self._hits.get(key, 0) + 1
        if hits > self.limit:
            return self._started + self.window - now
        self._hits[key] = hits
        return None


def token_of(path: str) -> str:
    """``/r/<kind>/<token>[/…]``: the token ("" when there is none)."""
    if path.startswith(SIGNUP_PREFIX):
        return ""  # a shop's slug, the same for all its visitors
    parts = path.split("/")
    return parts[3] if len(parts) > 3 else ""


def _counter(limit: int) -> WindowCounter | None:
    return WindowCounter(limit) if limit > 0 else None


class PublicRateLimit:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        settings = get_settings()
        self.per_ip = _counter(settings.public_rate_per_ip)
        self.per_token = _counter(settings.public_rate_per_token)
        self.signups_per_ip = _counter(settings.signup_rate_per_ip)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not path.startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        now = time.monotonic()
        client = scope.get("client")
        address = client[0] if client else ""
        waits = []
        if self.per_ip is not None:
            waits.append(self.per_ip.allow(address, now))
        if (
            self.signups_per_ip is not None
            and scope.get("method") == "POST"
            and path.startswith(SIGNUP_PREFIX)
        ):
            waits.append(self.signups_per_ip.allow(address, now))
        token = token_of(path)
        if self.per_token is not None and token:
            waits.append(self.per_token.allow(token, now))
        wait = max((w for w in waits if w is not None), default=None)
        if wait is None:
            await self.app(scope, receive, send)
            return
        start: HTTPResponseStartEvent = {
            "type": "http.response.start",
            "status": 429,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"retry-after", str(max(1, math.ceil(wait))).encode()),
                (b"cache-control", b"no-store"),
            ],
        }
        body: HTTPResponseBodyEvent = {
            "type": "http.response.body",
            "body": b"Too many requests; try again later.\n",
            "more_body": False,
        }
        await send(start)
        await send(body)
