"""``/r/o/<token>.gif`` (the open pixel) and ``/r/c/<token>/<number>`` (a click).

Public: the signed token is the only credential, and it is verified without the database.
An open answers the 1×1 GIF once its event is stored; a click answers 302 to the link the
campaign registered under that number (campaigns.services.links) once its event is stored:
never to a URL from the request, so nothing here is an open redirect. A tampered, truncated
or other-purpose token, or a number the campaign has no link for: 404 and nothing stored
(a click's 404 is the recipient pages' "not valid" page, answered by the app).
HEAD requests get the same answer and are recorded as machine events (tracking.machines).
A test send's token (recipient 0) works but records nothing: its messages are untracked.

These two paths are what every opened message and every click hits, so they are plain ASGI
(:class:`TrackingFastPath`, in front of Litestar's router), not Litestar routes: routing,
the middleware stack, the request object and the response object cost more than the work
itself (benchmarks/tracking.py; docs/tracking.md, Speed). They need none of it: no
session, no language, no body. The per-address and per-token rate limits still apply: they
wrap this (loyalmail.app).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

from litestar.types import (
    ASGIApp,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    HTTPScope,
    Receive,
    Scope,
    Send,
)

from campaigns import services as campaigns
from tracking import events, tokens
from tracking.machines import Kind, machine_reason

log = logging.getLogger("loyalmail.tracking")

#: A transparent 1×1 GIF (43 bytes).
PIXEL = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
OPEN_PREFIX = "/r/o/"
CLICK_PREFIX = "/r/c/"

Headers = list[tuple[bytes, bytes]]
_NO_STORE: Headers = [(b"cache-control", b"no-store, private"), (b"x-robots-tag", b"noindex")]
#: The token stays out of the shop's analytics: no Referer on the redirected request.
_REDIRECT: Headers = [*_NO_STORE, (b"referrer-policy", b"no-referrer")]


@dataclass(frozen=True, slots=True)
class Answer:
    """What a GET answers; a HEAD answers the same without the body."""

    status: int
    headers: Headers
    body: bytes
    media_type: bytes = b"text/plain; charset=utf-8"

    async def send(self, send: Send, *, head: bool) -> None:
        headers = [
            (b"content-type", self.media_type),
            (b"content-length", str(len(self.body)).encode()),
            *self.headers,
        ]
        start: HTTPResponseStartEvent = {
            "type": "http.response.start",
            "status": self.status,
            "headers": headers,
        }
        body: HTTPResponseBodyEvent = {
            "type": "http.response.body",
            "body": b"" if head else self.body,
            "more_body": False,
        }
        await send(start)
        await send(body)


NOT_FOUND = Answer(404, _NO_STORE, b"This link is not valid.\n")
NOT_ALLOWED = Answer(405, [*_NO_STORE, (b"allow", b"GET, HEAD")], b"Method not allowed.\n")
#: Not stored, so not answered as if it were: the mail client may try again.
UNAVAILABLE = Answer(
    503, [*_NO_STORE, (b"retry-after", b"5")], b"This could not be recorded just now.\n"
)
PIXEL_ANSWER = Answer(200, _NO_STORE, PIXEL, b"image/gif")


@dataclass(frozen=True, slots=True)
class Visit:
    """The parts of a request the two endpoints look at."""

    method: str
    user_agent: str


def _visit(scope: HTTPScope) -> Visit:
    agent = b""
    for name, value in scope["headers"]:
        if name == b"user-agent":
            agent = value
            break
    return Visit(scope["method"], agent.decode("latin-1"))


async def _record(
    visit: Visit, kind: Kind, data: tokens.TokenData, link: int | None = None
) -> None:
    if data.recipient_id == 0:
        return
    reason = machine_reason(kind, visit.method, visit.user_agent)
    # A click that looks like a person's is checked against the time its message went out
    # (too soon: a gateway following every link); the writer does that for a whole batch
    # of clicks in one query.
    event = events.event_for(
        data, kind, datetime.now(UTC), link=link, reason=reason, check_speed=not reason
    )
    await events.record(event)


async def open_answer(visit: Visit, name: str) -> Answer:
    data = tokens.read("open", name.removesuffix(".gif"))
    if data is None or not name.endswith(".gif"):
        return NOT_FOUND
    await _record(visit, "open", data)
    return PIXEL_ANSWER


async def click_answer(visit: Visit, token: str, number: str) -> Answer:
    data = tokens.read("click", token)
    # ASCII digits only: str.isdigit() is also true of "²" (which int() refuses: a 5xx) and
    # of "١" or "１" (which int() reads as 1: another spelling of link 1).
    if data is None or not (number.isascii() and number.isdigit()) or len(number) > 6:
        return NOT_FOUND
    url = await campaigns.link_url(data.merchant_id, data.campaign_id, int(number))
    if url is None:
        return NOT_FOUND
    await _record(visit, "click", data, link=int(number))
    return Answer(302, [*_REDIRECT, (b"location", url.encode())], b"")


async def answer_for(scope: HTTPScope) -> Answer | None:
    """The answer to a pixel or click request; None for any other path."""
    path: str = scope["path"]
    if path.startswith(OPEN_PREFIX):
        parts = [path[len(OPEN_PREFIX) :]]
    elif path.startswith(CLICK_PREFIX):
        parts = path[len(CLICK_PREFIX) :].split("/")
    else:
        return None
    if scope["method"] not in ("GET", "HEAD"):
        return NOT_ALLOWED
    visit = _visit(scope)
    try:
        if path.startswith(OPEN_PREFIX):
            return await open_answer(visit, parts[0]) if "/" not in parts[0] else NOT_FOUND
        return await click_answer(visit, *parts) if len(parts) == 2 else NOT_FOUND
    except Exception:
        log.exception("a tracking request could not be answered")
        return UNAVAILABLE


class TrackingFastPath:
    """Answers the pixel and click paths itself; hands everything else to ``app``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        http = cast(HTTPScope, scope)
        answer = await answer_for(http)
        if answer is None or (answer is NOT_FOUND and http["path"].startswith(CLICK_PREFIX)):
            # A click that leads nowhere is a person at a browser: the app answers the page
            # of an invalid link (tracking.controllers.LinkNotFoundController), in their
            # language. Nothing was recorded.
            await self.app(scope, receive, send)
            return
        await answer.send(send, head=http["method"] == "HEAD")
