"""The marketer's campaign pages: the list, a new draft, and the composer's steps.

Basics, target group, layout and summary are plain server-rendered forms, so they work
without JavaScript. The design step is ``loyalmail/static/composer.js``: it edits the blocks
through the JSON API (``/api/campaigns``) and shows a live preview. Everything it shows in
words comes from here, in the page's language, as JSON inside the page.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, URLEncodedBody
from litestar.response import Redirect, Template

from accounts import services as accounts
from campaigns import services
from campaigns.pages_context import (
    audience_choice,
    audience_from,
    audience_label,
    audience_preview,
    layouts,
    placeholders,
    preview_context,
)
from campaigns.pages_text import (
    CAMPAIGN_NOTICES,
    PROBLEM_STEPS,
    STATUS_LABELS,
    STEPS,
    field_errors,
    script_words,
    translate,
)
from campaigns.schemas import CampaignCreate, CampaignOut, CampaignUpdate, TestSendRequest
from campaigns.sending.test_sends import MAX_ADDRESSES, request_test_send
from loyalmail.auth import principal_of
from loyalmail.errors import LoyalmailError, NotFound, ValidationFailed, _
from loyalmail.i18n import gettext
from loyalmail.pages_controller import convert_form, is_htmx, page
from quota.pages_context import summary_quota
from segments import services as segments
from templates.blocks import BLOCK_TYPES, MAX_BLOCKS
from templates.layouts import DEFAULT_LAYOUT, LAYOUTS
from templates.media import MAX_IMAGE_BYTES

BASICS_FIELDS = ("name", "subject", "preheader", "sender_name")
FIX_FIELDS = _("Please correct the marked fields.")


class CampaignPagesController(Controller):
    path = "/campaigns"
    include_in_schema = False

    # --- the list and a new draft -------------------------------------------------------------

    @get("/")
    async def campaign_list(self, request: Request) -> Template:
        merchant_id = principal_of(request).merchant_id
        campaigns = await services.list_campaigns(merchant_id)
        return await page(
            request,
            "campaigns.html",
            active="campaigns",
            campaigns=[(c, audience_label(c)) for c in campaigns],
            status_labels=STATUS_LABELS,
            notices=CAMPAIGN_NOTICES,
        )

    async def _new_page(
        self,
        request: Request,
        values: dict[str, str],
        errors: dict[str, str] | None = None,
        message: str = "",
        status_code: int = 200,
    ) -> Template:
        return await page(
            request,
            "campaign_new.html",
            active="campaigns",
            values=values,
            errors=errors or {},
            message=message,
            layouts=layouts(),
            status_code=status_code,
        )

    @get("/new")
    async def new_form(self, request: Request) -> Template:
        return await self._new_page(request, {"name": "", "layout": DEFAULT_LAYOUT})

    @post("/new", status_code=303)
    async def create(
        self, request: Request, data: URLEncodedBody[dict[str, str]]
    ) -> Redirect | Template:
        principal = principal_of(request)
        shown = {"name": data.get("name", "").strip(), "layout": data.get("layout", "")}
        struct, errors = convert_form(
            {"name": shown["name"], "layout": shown["layout"] or DEFAULT_LAYOUT}, CampaignCreate
        )
        if struct is not None:
            try:
                created = await services.create_campaign(
                    principal.merchant_id, struct, created_by=principal.user_id
                )
            except LoyalmailError as exc:
                errors = field_errors(exc) or {"name": translate(exc.message)}
            else:
                return Redirect(f"/campaigns/{created.id}?notice=campaign_created", status_code=303)
        return await self._new_page(request, shown, errors, gettext(FIX_FIELDS), status_code=422)

    # --- the composer's steps -----------------------------------------------------------------

    async def _step(
        self,
        request: Request,
        step: str,
        campaign: CampaignOut,
        *,
        status_code: int = 200,
        **context: Any,
    ) -> Template:
        return await page(
            request,
            f"campaign_{step}.html",
            active="campaigns",
            campaign=campaign,
            audience_name=audience_label(campaign),
            step=step,
            steps=STEPS,
            status_labels=STATUS_LABELS,
            notices=CAMPAIGN_NOTICES,
            status_code=status_code,
            **context,
        )

    async def _basics(
        self,
        request: Request,
        campaign: CampaignOut,
        values: dict[str, str] | None = None,
        errors: dict[str, str] | None = None,
        message: str = "",
        status_code: int = 200,
    ) -> Template:
        shown = values or {name: getattr(campaign, name) for name in BASICS_FIELDS}
        return await self._step(
            request,
            "basics",
            campaign,
            values=shown,
            errors=errors or {},
            message=message,
            placeholders=placeholders(),
            status_code=status_code,
        )

    @get("/{campaign_id:int}")
    async def basics(self, request: Request, campaign_id: FromPath[int]) -> Template:
        merchant_id = principal_of(request).merchant_id
        return await self._basics(request, await services.get_campaign(merchant_id, campaign_id))

    @post("/{campaign_id:int}/basics", status_code=303)
    async def save_basics(
        self, request: Request, campaign_id: FromPath[int], data: URLEncodedBody[dict[str, str]]
    ) -> Redirect | Template:
        merchant_id = principal_of(request).merchant_id
        campaign = await services.get_campaign(merchant_id, campaign_id)
        shown = {name: data.get(name, "").strip() for name in BASICS_FIELDS}
        struct, errors = convert_form(shown, CampaignUpdate)
        if struct is not None:
            try:
                await services.update_campaign(merchant_id, campaign_id, struct)
            except LoyalmailError as exc:
                if isinstance(exc, NotFound):
                    raise
                return await self._basics(
                    request, campaign, shown, field_errors(exc), translate(exc.message), 422
                )
            return Redirect(f"/campaigns/{campaign_id}/audience?notice=saved", status_code=303)
        return await self._basics(request, campaign, shown, errors, gettext(FIX_FIELDS), 422)

    async def _audience(
        self,
        request: Request,
        campaign: CampaignOut,
        chosen: str | None = None,
        error: str = "",
        status_code: int = 200,
    ) -> Template:
        merchant_id = principal_of(request).merchant_id
        return await self._step(
            request,
            "audience",
            campaign,
            predefined=await segments.list_predefined(merchant_id),
            saved=await segments.list_segments(merchant_id),
            chosen=audience_choice(campaign) if chosen is None else chosen,
            error=error,
            status_code=status_code,
        )

    @get("/{campaign_id:int}/audience")
    async def audience(self, request: Request, campaign_id: FromPath[int]) -> Template:
        merchant_id = principal_of(request).merchant_id
        return await self._audience(request, await services.get_campaign(merchant_id, campaign_id))

    @post("/{campaign_id:int}/audience", status_code=303)
    async def save_audience(
        self, request: Request, campaign_id: FromPath[int], data: URLEncodedBody[dict[str, str]]
    ) -> Redirect | Template:
        merchant_id = principal_of(request).merchant_id
        campaign = await services.get_campaign(merchant_id, campaign_id)
        chosen = data.get("audience", "")
        audience = audience_from(chosen)
        if audience is None:
            error = gettext(_("Choose a target group."))
            return await self._audience(request, campaign, chosen, error, 422)
        try:
            await services.update_campaign(
                merchant_id, campaign_id, CampaignUpdate(audience=audience)
            )
        except LoyalmailError as exc:
            if isinstance(exc, NotFound):
                raise
            message = next(iter(field_errors(exc).values()), translate(exc.message))
            return await self._audience(request, campaign, chosen, message, 422)
        return Redirect(f"/campaigns/{campaign_id}/layout?notice=saved", status_code=303)

    @get("/{campaign_id:int}/layout")
    async def layout(self, request: Request, campaign_id: FromPath[int]) -> Template:
        merchant_id = principal_of(request).merchant_id
        campaign = await services.get_campaign(merchant_id, campaign_id)
        return await self._step(
            request, "layout", campaign, layouts=layouts(), chosen=campaign.layout, error=""
        )

    @post("/{campaign_id:int}/layout", status_code=303)
    async def save_layout(
        self, request: Request, campaign_id: FromPath[int], data: URLEncodedBody[dict[str, str]]
    ) -> Redirect | Template:
        merchant_id = principal_of(request).merchant_id
        campaign = await services.get_campaign(merchant_id, campaign_id)
        chosen = data.get("layout", "")
        error = "" if chosen in LAYOUTS else gettext(_("Choose one of the offered values."))
        if not error:
            try:
                # Only the layout changes: the blocks stay as the marketer left them.
                await services.update_campaign(
                    merchant_id, campaign_id, CampaignUpdate(layout=chosen)
                )
            except LoyalmailError as exc:
                if isinstance(exc, NotFound):
                    raise
                error = translate(exc.message)
        if error:
            return await self._step(
                request,
                "layout",
                campaign,
                layouts=layouts(),
                chosen=chosen,
                error=error,
                status_code=422,
            )
        return Redirect(f"/campaigns/{campaign_id}/design?notice=saved", status_code=303)

    @get("/{campaign_id:int}/design")
    async def design(self, request: Request, campaign_id: FromPath[int]) -> Template:
        merchant_id = principal_of(request).merchant_id
        campaign = await services.get_campaign(merchant_id, campaign_id)
        merchant = await accounts.get_merchant(merchant_id)
        sample = await audience_preview(merchant_id, campaign)
        preview = await preview_context(request, merchant, campaign, sample)
        config = {
            **script_words(),
            "campaign": {
                "id": campaign.id,
                "layout": campaign.layout,
                "blocks": msgspec.to_builtins(campaign.blocks),
            },
            "block_order": list(BLOCK_TYPES),
            "max_blocks": MAX_BLOCKS,
            "max_upload_bytes": MAX_IMAGE_BYTES,
            "placeholders": placeholders(),
        }
        return await self._step(
            request, "design", campaign, merchant=merchant, config=config, **preview
        )

    @get("/{campaign_id:int}/summary")
    async def summary(self, request: Request, campaign_id: FromPath[int]) -> Template:
        return await self._summary(request, campaign_id)

    @post("/{campaign_id:int}/test-send", status_code=303)
    async def test_send(self, request: Request, campaign_id: FromPath[int]) -> Redirect | Template:
        """The summary's "send a test" form: the checked team addresses, as the customer the
        preview shows. A refusal (quota, addresses) is shown on the summary; nothing is sent."""
        principal = principal_of(request)
        form = await request.form()
        addresses = [str(a) for a in form.getall("address", [])]
        wanted = str(form.get("customer", ""))
        customer_id = int(wanted) if wanted.isdigit() and len(wanted) < 12 else None
        try:
            if not 1 <= len(addresses) <= MAX_ADDRESSES:
                raise ValidationFailed(_("Choose who gets the test: one to five addresses."))
            await request_test_send(
                principal.merchant_id,
                campaign_id,
                TestSendRequest(addresses=addresses, customer_id=customer_id),
            )
        except LoyalmailError as exc:
            # Shown on the summary (which itself answers 404 for another merchant's campaign).
            return await self._summary(
                request, campaign_id, test_error=translate(exc.message), status_code=exc.status_hint
            )
        customer = f"&customer={customer_id}" if customer_id is not None else ""
        return Redirect(
            f"/campaigns/{campaign_id}/summary?notice=test_sent{customer}", status_code=303
        )

    async def _summary(
        self,
        request: Request,
        campaign_id: int,
        *,
        test_error: str = "",
        status_code: int = 200,
    ) -> Template:
        principal = principal_of(request)
        merchant_id = principal.merchant_id
        campaign = await services.get_campaign(merchant_id, campaign_id)
        merchant = await accounts.get_merchant(merchant_id)
        check = await services.check_campaign(merchant_id, campaign_id)
        sample = await audience_preview(merchant_id, campaign)
        problems = [
            {
                "message": translate(problem.message),
                "href": "/settings"
                if problem.field == "sender_email"
                else f"/campaigns/{campaign_id}{PROBLEM_STEPS.get(problem.field, '')}",
            }
            for problem in check.problems
        ]
        return await self._step(
            request,
            "summary",
            campaign,
            merchant=merchant,
            check=check,
            problems=problems,
            recipients=sample,
            quota=await summary_quota(merchant_id, sample.quota_cost if sample else None),
            layout_name=LAYOUTS[campaign.layout].name if campaign.layout in LAYOUTS else "",
            team_addresses=await accounts.user_emails(merchant_id),
            my_address=principal.email.lower(),
            test_error=test_error,
            status_code=status_code,
            **await preview_context(request, merchant, campaign, sample),
        )

    @post("/{campaign_id:int}/delete", status_code=303)
    async def delete(self, request: Request, campaign_id: FromPath[int]) -> Redirect | Response:
        """Delete a draft, then back to the list (HTMX after a confirmation, or a plain form)."""
        await services.delete_campaign(principal_of(request).merchant_id, campaign_id)
        target = "/campaigns?notice=campaign_deleted"
        if is_htmx(request):
            return Response(content=b"", status_code=204, headers={"HX-Redirect": target})
        return Redirect(target, status_code=303)
