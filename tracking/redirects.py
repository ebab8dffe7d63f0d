"""``/r/o/<token>.gif`` (the open pixel) and ``/r/c/<token>/<number>`` (a click).

Public: the signed token is the only credential, and it is verified without the database.
An open answers the 1×1 GIF once its event is stored; a click answers 302 to the link the
campaign registered under that number (campaigns.services.links) once its event is stored:
never to a URL from the request, so nothing here is an open redirect. A tampered, truncated
or other-purpose token, or a number the campaign has no link for: 404 and nothing stored.
HEAD requests get the same answer and are recorded as machine events (tracking.machines).
A test send's token (recipient 0) works but records nothing: its messages are untracked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from litestar import Controller, Request, Response, get, head
from litestar.params import FromPath

from campaigns import services as campaigns
from loyalmail.errors import ServiceUnavailable, _
from tracking import events, tokens
from tracking.machines import Kind, machine_reason

#: A transparent 1×1 GIF (43 bytes).
PIXEL = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
_NO_STORE = {"Cache-Control": "no-store, private", "X-Robots-Tag": "noindex"}
#: The token stays out of the shop's analytics: no Referer on the redirected request.
_REDIRECT_HEADERS = {**_NO_STORE, "Referrer-Policy": "no-referrer"}


async def _record(
    request: Request, kind: Kind, data: tokens.TokenData, now: datetime, link: int | None = None
) -> None:
    if data.recipient_id == 0:
        return
    seconds = None
    if kind == "click":
        sent = await campaigns.sent_at(data.merchant_id, data.campaign_id, data.recipient_id)
        seconds = None if sent is None else (now - sent).total_seconds()
    reason = machine_reason(kind, request.method, request.headers.get("user-agent", ""), seconds)
    event = events.event_for(data, kind, now, link=link, reason=reason)
    try:
        await events.record(event)
    except Exception as exc:
        # Not stored, so not answered as if it were: 503, and the mail client may try again.
        busy = _("This could not be recorded just now. Please try again.")
        raise ServiceUnavailable(busy) from exc


@dataclass(frozen=True, slots=True)
class Answer:
    """What a GET answers; a HEAD answers the same without the body."""

    status: int
    headers: dict[str, str]
    body: bytes
    media_type: str = "text/plain"

    def response(self) -> Response[bytes]:
        return Response(
            self.body, status_code=self.status, media_type=self.media_type, headers=self.headers
        )

    def head(self) -> Response[None]:
        return Response(
            None, status_code=self.status, media_type=self.media_type, headers=self.headers
        )


NOT_FOUND = Answer(404, _NO_STORE, b"This link is not valid.\n")


async def _open(request: Request, name: str) -> Answer:
    data = tokens.read("open", name.removesuffix(".gif"))
    if data is None or not name.endswith(".gif"):
        return NOT_FOUND
    await _record(request, "open", data, datetime.now(UTC))
    return Answer(200, _NO_STORE, PIXEL, "image/gif")


async def _click(request: Request, token: str, number: int) -> Answer:
    data = tokens.read("click", token)
    if data is None:
        return NOT_FOUND
    url = await campaigns.link_url(data.merchant_id, data.campaign_id, number)
    if url is None:
        return NOT_FOUND
    await _record(request, "click", data, datetime.now(UTC), link=number)
    return Answer(302, {**_REDIRECT_HEADERS, "Location": url}, b"")


class OpenController(Controller):
    path = "/r/o"
    include_in_schema = False

    @get("/{name:str}")
    async def pixel(self, request: Request, name: FromPath[str]) -> Response[bytes]:
        return (await _open(request, name)).response()

    @head("/{name:str}")
    async def pixel_head(self, request: Request, name: FromPath[str]) -> Response[None]:
        return (await _open(request, name)).head()


class ClickController(Controller):
    path = "/r/c"
    include_in_schema = False

    @get("/{token:str}/{number:int}")
    async def click(
        self, request: Request, token: FromPath[str], number: FromPath[int]
    ) -> Response[bytes]:
        return (await _click(request, token, number)).response()

    @head("/{token:str}/{number:int}")
    async def click_head(
        self, request: Request, token: FromPath[str], number: FromPath[int]
    ) -> Response[None]:
        return (await _click(request, token, number)).head()
