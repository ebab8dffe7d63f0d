"""The marketer's side of the sign-up page: its address, the QR code that leads to it (on the
page, as a print view and as an SVG download). The QR code is drawn on the server, so the
page needs no script and the download is the very same picture."""

from __future__ import annotations

from litestar import Controller, Request, Response, get
from litestar.response import Template

from accounts import services as accounts
from customers.services import signup
from loyalmail.auth import principal_of
from loyalmail.i18n import email_translator, recipient_locale
from loyalmail.pages_controller import page

#: What the download is called: the shop's slug tells two shops' files apart.
SVG_NAME = "signup-qr-{slug}.svg"


class SignupPagesController(Controller):
    path = "/customers"
    include_in_schema = False

    @get("/signup")
    async def show(self, request: Request) -> Template:
        merchant = await accounts.get_merchant(principal_of(request).merchant_id)
        return await page(
            request,
            "signup_qr.html",
            active="customers",
            merchant=merchant,
            signup_url=signup.signup_url(merchant),
            qr_url=signup.signup_url(merchant, qr=True),
            qr_svg=signup.qr_svg(signup.signup_url(merchant, qr=True)),
        )

    @get("/signup/print")
    async def print_view(self, request: Request) -> Template:
        """A sheet for the counter: the shop's name, a call to action in the shop's language,
        the big code and the address for those who type."""
        merchant = await accounts.get_merchant(principal_of(request).merchant_id)
        locale = recipient_locale(merchant.default_locale)
        return Template(
            "signup_print.html",
            context={
                "merchant": merchant,
                "locale": locale,
                "t": email_translator(locale),
                "signup_url": signup.signup_url(merchant),
                "qr_svg": signup.qr_svg(signup.signup_url(merchant, qr=True)),
            },
        )

    @get("/signup-qr.svg")
    async def download(self, request: Request) -> Response[str]:
        merchant = await accounts.get_merchant(principal_of(request).merchant_id)
        svg = signup.qr_svg(signup.signup_url(merchant, qr=True))
        name = SVG_NAME.format(slug=merchant.slug)
        return Response(
            '<?xml version="1.0" encoding="UTF-8"?>\n' + svg,
            media_type="image/svg+xml",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
