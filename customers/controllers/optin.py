"""The recipient's double opt-in pages under /r/ (public: the signed token is the credential).

GET only shows the page with its one button, because mail scanners and link previews follow
GET links; the POST of that button confirms.
"""

from __future__ import annotations

from litestar import Controller, Request, get, post
from litestar.params import FromPath
from litestar.response import Template

from customers.services import consent
from loyalmail.errors import NotFound
from loyalmail.recipient_pages import PUBLIC_PAGE_HEADERS, invalid_link, recipient_page


class OptinController(Controller):
    path = "/r/optin"
    opt = {"exclude_from_auth": True}
    include_in_schema = False
    response_headers = PUBLIC_PAGE_HEADERS

    @get("/{token:str}")
    async def show(self, request: Request, token: FromPath[str]) -> Template:
        try:
            return recipient_page("optin.html", await consent.describe_optin(token), token)
        except NotFound:
            return invalid_link(request, await consent.optin_link_owner(token))

    @post("/{token:str}", status_code=200)
    async def confirm(self, request: Request, token: FromPath[str]) -> Template:
        ip = request.client.host if request.client else ""
        try:
            await consent.confirm_optin(
                token, ip=ip, user_agent=request.headers.get("user-agent", "")
            )
            return recipient_page("optin_done.html", await consent.describe_optin(token), token)
        except NotFound:
            return invalid_link(request, await consent.optin_link_owner(token))
