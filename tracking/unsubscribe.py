"""``/r/unsubscribe/<token>``: the one-click unsubscribe of RFC 8058 and its page.

Public: the signed token is the only credential (no cookie, login or CSRF token; the /r/
prefix bypasses the auth middleware, which is where the CSRF check lives).

- POST with the form field ``List-Unsubscribe=One-Click`` (what a mail client sends for the
  ``List-Unsubscribe-Post`` header, and what the page's button sends) unsubscribes at once and
  answers 200 with a confirmation page: RFC 8058 forbids a redirect. Without that field: 400.
- GET only shows the page with the button, because mail scanners and link previews follow
  GET links.
- POST ``…/undo`` subscribes again, from the confirmation page.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath
from litestar.response import Template

from campaigns import services as campaigns
from customers.services import unsubscribe as service
from loyalmail.auth import FORM_TYPES
from loyalmail.errors import NotFound
from loyalmail.recipient_pages import PUBLIC_PAGE_HEADERS, invalid_link, recipient_page
from tracking import events

_ONE_CLICK = ("List-Unsubscribe", "One-Click")
_BAD_REQUEST = (
    "To unsubscribe, POST the form field List-Unsubscribe=One-Click (RFC 8058), "
    "or open this link in a browser.\n"
)


def client_of(request: Request) -> dict[str, str]:
    return {
        "ip": request.client.host if request.client else "",
        "user_agent": request.headers.get("user-agent", ""),
    }


async def record_event(found: campaigns.TokenRecipient, kind: str) -> None:
    """The campaign report's unsubscribes (an undo within the hour takes one back)."""
    await events.record(events.event_for(found, kind, datetime.now(UTC)))


async def _is_one_click(request: Request) -> bool:
    if not request.headers.get("content-type", "").startswith(FORM_TYPES):
        return False
    form = await request.form()
    return form.get(_ONE_CLICK[0]) == _ONE_CLICK[1]


class UnsubscribeController(Controller):
    path = "/r/unsubscribe"
    include_in_schema = False
    response_headers = PUBLIC_PAGE_HEADERS

    @get("/{token:str}")
    async def show(self, request: Request, token: FromPath[str]) -> Template:
        try:
            found = await campaigns.token_recipient("unsubscribe", token)
            shown = await service.describe_unsubscribe(found.merchant_id, found.customer_id)
        except NotFound:
            return invalid_link(request, await campaigns.link_owner("unsubscribe", token))
        return recipient_page("unsubscribe.html", shown, token)

    @post("/{token:str}", status_code=200)
    async def one_click(self, request: Request, token: FromPath[str]) -> Response[Any]:
        try:
            found = await campaigns.token_recipient("unsubscribe", token)
            if not await _is_one_click(request):
                return Response(_BAD_REQUEST, status_code=400, media_type="text/plain")
            if found.customer_id is not None:  # a test send has no one to unsubscribe
                if await service.unsubscribe(
                    found.merchant_id, found.customer_id, **client_of(request)
                ):
                    await record_event(found, "unsubscribe")
            shown = await service.describe_unsubscribe(found.merchant_id, found.customer_id)
        except NotFound:
            return invalid_link(request, await campaigns.link_owner("unsubscribe", token))
        return recipient_page("unsubscribe_done.html", shown, token)

    @post("/{token:str}/undo", status_code=200)
    async def undo(self, request: Request, token: FromPath[str]) -> Template:
        try:
            found = await campaigns.token_recipient("unsubscribe", token)
            outcome: service.Resubscribed = "resubscribed"
            if found.customer_id is not None:
                outcome = await service.resubscribe(
                    found.merchant_id, found.customer_id, **client_of(request)
                )
                if outcome == "resubscribed":
                    await record_event(found, "resubscribe")
            shown = await service.describe_unsubscribe(found.merchant_id, found.customer_id)
        except NotFound:
            return invalid_link(request, await campaigns.link_owner("unsubscribe", token))
        return recipient_page("unsubscribe_undone.html", shown, token, outcome=outcome)
