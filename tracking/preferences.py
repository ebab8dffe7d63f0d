"""``/r/preferences/<token>``: the recipient's preference page — pause the newsletters for a
few months, leave them, or ask for erasure.

Reached from the unsubscribe page with the message's unsubscribe token (the same credential:
it already lets its holder unsubscribe). GET only shows the page (link scanners follow
links); each choice is a POST of its own form. Public like every /r/ route: no cookie,
login or CSRF token, and under the /r/ rate limits.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date
from litestar import Controller, Request, get, post
from litestar.params import FromPath
from litestar.response import Template

from campaigns import services as campaigns
from customers.services import preferences as service
from loyalmail.auth import FORM_TYPES
from loyalmail.errors import NotFound
from loyalmail.pages_controller import id_in_field
from loyalmail.recipient_pages import PUBLIC_PAGE_HEADERS, invalid_link, recipient_page
from tracking.unsubscribe import client_of, record_event


def _day_formatter(locale: str, time_zone: str) -> Any:
    """Dates in the recipient's language and the shop's time zone (Serbian in Latin script,
    like the page's texts)."""
    zone = ZoneInfo(time_zone or "UTC")
    babel_locale = "sr_Latn" if locale == "sr" else locale

    def day(value: datetime) -> str:
        return format_date(value.astimezone(zone), "long", locale=babel_locale)

    return day


async def _page(token: str, notice: str = "", status_code: int = 200) -> Template:
    """The page; ``notice`` names what a POST just did (shown at the top)."""
    found = await campaigns.token_recipient("unsubscribe", token)
    shown = await service.describe_preferences(found.merchant_id, found.customer_id)
    response = recipient_page(
        "preferences.html",
        shown,
        token,
        notice=notice,
        months=service.PAUSE_MONTHS,
        day=_day_formatter(shown.locale, shown.time_zone),
        sample=found.customer_id is None,
    )
    response.status_code = status_code
    return response


async def _form(request: Request) -> dict[str, str]:
    if not request.headers.get("content-type", "").startswith(FORM_TYPES):
        return {}
    form = await request.form()
    return {key: str(value) for key, value in form.items()}


class PreferencesController(Controller):
    path = "/r/preferences"
    include_in_schema = False
    response_headers = PUBLIC_PAGE_HEADERS

    @get("/{token:str}")
    async def show(self, request: Request, token: FromPath[str]) -> Template:
        try:
            return await _page(token)
        except NotFound:
            return invalid_link(request, await campaigns.link_owner("unsubscribe", token))

    @post("/{token:str}/pause", status_code=200)
    async def pause(self, request: Request, token: FromPath[str]) -> Template:
        try:
            found = await campaigns.token_recipient("unsubscribe", token)
            chosen = (await _form(request)).get("months", "")
            months = id_in_field(chosen, digits=3) or 0
            if months not in service.PAUSE_MONTHS:
                return await _page(token, "choose_pause", status_code=400)
            if found.customer_id is None:
                return await _page(token, "sample")
            was_subscribed = (
                await service.describe_preferences(found.merchant_id, found.customer_id)
            ).state == "subscribed"
            changed = await service.pause(
                found.merchant_id, found.customer_id, months, **client_of(request)
            )
            if changed and was_subscribed:
                # The report counts a pause as an unsubscribe: this campaign lost the reader.
                await record_event(found, "unsubscribe")
            return await _page(token, "paused" if changed else "")
        except NotFound:
            return invalid_link(request, await campaigns.link_owner("unsubscribe", token))

    @post("/{token:str}/leave", status_code=200)
    async def leave(self, request: Request, token: FromPath[str]) -> Template:
        return await self._leave(request, token, erasure=False)

    @post("/{token:str}/erase", status_code=200)
    async def erase(self, request: Request, token: FromPath[str]) -> Template:
        return await self._leave(request, token, erasure=True)

    async def _leave(self, request: Request, token: str, *, erasure: bool) -> Template:
        try:
            found = await campaigns.token_recipient("unsubscribe", token)
            if found.customer_id is None:
                return await _page(token, "sample")
            before = await service.describe_preferences(found.merchant_id, found.customer_id)
            changed = await service.leave(
                found.merchant_id, found.customer_id, erasure=erasure, **client_of(request)
            )
            if changed and before.state == "subscribed":
                await record_event(found, "unsubscribe")
            notice = "erasure" if erasure else "left"
            return await _page(token, notice if changed else "")
        except NotFound:
            return invalid_link(request, await campaigns.link_owner("unsubscribe", token))
