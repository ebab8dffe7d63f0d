"""The settings pages of sending domains: the list with the add form, and one domain's DNS
records with their state, the check, the key rotation and removal."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import FromPath, URLEncodedBody
from litestar.response import Redirect, Template

from accounts import domains
from accounts.domains.pages_text import CHECK_LABELS, NOTICES, RECORD_LABELS, STATUS_LABELS
from accounts.page_controllers import require_owner
from accounts.services import get_merchant
from loyalmail.auth import principal_of
from loyalmail.errors import LoyalmailError
from loyalmail.i18n import gettext
from loyalmail.pages_controller import page
from loyalmail.settings import get_settings


async def _sender_note(merchant_id: int) -> dict[str, Any]:
    """Who the shop's mail is from now: its own domain, or the installation's address."""
    merchant = await get_merchant(merchant_id)
    identity = await domains.sending_identity(merchant)
    return {
        "own_domain": identity.own_domain,
        "from_address": identity.address,
        "from_name": identity.name,
        "reply_to": identity.reply_to,
    }


class SendingDomainPagesController(Controller):
    path = "/settings/domains"
    include_in_schema = False

    async def _list(
        self, request: Request, *, error: str = "", value: str = "", status_code: int = 200
    ) -> Template:
        merchant_id = principal_of(request).merchant_id
        try:
            sender = await _sender_note(merchant_id)
        except domains.SigningUnavailable as exc:
            sender, error = {}, error or gettext(exc.message)
        return await page(
            request,
            "sending_domains.html",
            active="settings",
            notices=NOTICES,
            domains=await domains.list_domains(merchant_id),
            status_labels=STATUS_LABELS,
            sender=sender,
            error=error,
            value=value,
            status_code=status_code,
        )

    @get("/")
    async def list_page(self, request: Request) -> Template:
        return await self._list(request)

    @post("/", status_code=303)
    async def add(self, request: Request, data: URLEncodedBody[dict[str, str]]) -> Any:
        require_owner(request)
        wanted = data.get("domain", "")[:300]
        try:
            added = await domains.add_domain(principal_of(request).merchant_id, wanted)
        except LoyalmailError as exc:
            return await self._list(
                request, error=gettext(exc.message), value=wanted, status_code=422
            )
        return Redirect(f"/settings/domains/{added.id}?notice=added", status_code=303)

    @get("/{domain_id:int}")
    async def detail(self, request: Request, domain_id: FromPath[int]) -> Template:
        return await self._detail(request, domain_id)

    async def _detail(
        self, request: Request, domain_id: int, *, error: str = "", status_code: int = 200
    ) -> Template:
        domain = await domains.get_domain(principal_of(request).merchant_id, domain_id)
        checks = {check.name + check.kind: check for check in domain.checks}
        return await page(
            request,
            "sending_domain.html",
            active="settings",
            notices=NOTICES,
            domain=domain,
            checks=checks,
            status_labels=STATUS_LABELS,
            check_labels=CHECK_LABELS,
            record_labels=RECORD_LABELS,
            fallback_from=get_settings().effective_fallback_from,
            error=error,
            status_code=status_code,
        )

    @post("/{domain_id:int}/check", status_code=303)
    async def check(self, request: Request, domain_id: FromPath[int]) -> Redirect:
        require_owner(request)
        checked = await domains.check_domain(principal_of(request).merchant_id, domain_id)
        # The notice says the outcome; the records below say why.
        notice = "verified" if checked.status == "verified" else "checked"
        return Redirect(f"/settings/domains/{domain_id}?notice={notice}", status_code=303)

    @post("/{domain_id:int}/rotate", status_code=303)
    async def rotate(self, request: Request, domain_id: FromPath[int]) -> Any:
        require_owner(request)
        try:
            await domains.rotate_key(principal_of(request).merchant_id, domain_id)
        except LoyalmailError as exc:
            if exc.status_hint == 404:
                raise
            return await self._detail(
                request, domain_id, error=gettext(exc.message), status_code=exc.status_hint
            )
        return Redirect(f"/settings/domains/{domain_id}?notice=rotated", status_code=303)

    @post("/{domain_id:int}/remove", status_code=303)
    async def remove(self, request: Request, domain_id: FromPath[int]) -> Redirect:
        require_owner(request)
        await domains.remove_domain(principal_of(request).merchant_id, domain_id)
        return Redirect("/settings/domains?notice=removed", status_code=303)
