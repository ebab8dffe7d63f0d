"""The marketer's campaign pages: the list, a new draft, the composer's steps, and sending.

Basics, target group, layout and summary are plain server-rendered forms, so they work
without JavaScript. The design step is ``loyalmail/static/composer.js``: it edits the blocks
through the JSON API (``/api/campaigns``) and shows a live preview. Everything it shows in
words comes from here, in the page's language, as JSON inside the page.

The summary sends (now, or at a time in the shop's time zone). From then on the campaign's
page is its progress page: figures counted from the recipients, refreshed by HTMX every two
seconds while it sends (a "Refresh" link without JavaScript), and pause, resume and cancel.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from babel import dates
from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, URLEncodedBody
from litestar.response import Redirect, Template

from accounts import domains
from accounts import services as accounts
from accounts.schemas import MerchantOut
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
from campaigns.schemas import (
    CampaignCreate,
    CampaignOut,
    CampaignUpdate,
    ScheduleRequest,
    SendProgress,
    TestSendRequest,
)
from campaigns.sending import control, dispatch
from campaigns.sending.envelope import envelope_of
from campaigns.sending.progress import progress
from campaigns.sending.test_sends import MAX_ADDRESSES, request_test_send
from campaigns.services.drafts import EDITABLE
from loyalmail.auth import principal_of
from loyalmail.errors import LoyalmailError, NotFound, QuotaExceeded, ValidationFailed, _
from loyalmail.i18n import babel_locale, gettext
from loyalmail.pages_controller import convert_form, id_in_field, is_htmx, page, partial
from quota.pages_context import summary_quota
from quota.pages_text import estimate_sentence
from quota.schemas import SendEstimate
from segments import services as segments
from templates.blocks import BLOCK_TYPES, MAX_BLOCKS
from templates.layouts import DEFAULT_LAYOUT, LAYOUTS
from templates.media import MAX_IMAGE_BYTES
from tracking.reports import with_figures

BASICS_FIELDS = ("name", "subject", "preheader", "sender_name")
FIX_FIELDS = _("Please correct the marked fields.")
#: A button of the progress page: pause, resume or cancel (merchant id, campaign id).
Control = Callable[[int, int], Awaitable[SendProgress]]
#: What a ``datetime-local`` input sends and shows: minutes, no offset.
LOCAL_INPUT = "%Y-%m-%dT%H:%M"


def to_progress(campaign_id: int, notice: str = "") -> Redirect:
    query = f"?notice={notice}" if notice else ""
    return Redirect(f"/campaigns/{campaign_id}/sending{query}", status_code=303)


def local_input(moment: datetime | None, time_zone: str) -> str:
    """A stored moment as a ``datetime-local`` value in the shop's time zone."""
    if moment is None:
        return ""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    try:
        zone = ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")  # an unusable setting must not take the summary down
    return aware.astimezone(zone).strftime(LOCAL_INPUT)


def refusal_sentence(exc: QuotaExceeded) -> str:
    """The quota's own sentence for a refused send (what it needs, what there is, how many
    packs would cover it), from the refusal's figures; the API's English one otherwise."""
    figures = exc.extra if isinstance(exc.extra, dict) else {}
    try:
        estimate = SendEstimate(
            needed=int(figures["needed"]),
            fits=False,
            available=int(figures["available"]),
            draws=[],
            short_by=int(figures["short_by"]),
            packs_needed=int(figures["packs_needed"]),
            pack_size=int(figures["pack_size"]),
        )
    except (KeyError, TypeError, ValueError):
        return translate(exc.message)
    return estimate_sentence(estimate)


def time_left(seconds: int | None) -> str:
    """Rounded as people say it ("5 minutes"); empty while nothing is measured yet."""
    if seconds is None:
        return ""
    return dates.format_timedelta(timedelta(seconds=seconds), locale=babel_locale())


async def _sender_of(merchant: MerchantOut, sender_name: str) -> dict[str, Any]:
    """Who the campaign will be from, as the summary says it: the shop's own address on its
    verified domain, or the installation's address with the shop's as Reply-To; or why no
    message can be signed now."""
    try:
        envelope = await envelope_of(merchant, sender_name)
    except domains.SigningUnavailable as exc:
        return {"error": translate(exc.message)}
    return {
        "name": envelope.sender.name,
        "address": envelope.sender.address,
        "reply_to": envelope.sender.reply_to,
        "own_domain": envelope.own_domain,
        "signed": envelope.dkim_key is not None,
    }


class CampaignPagesController(Controller):
    path = "/campaigns"
    include_in_schema = False

    # --- the list and a new draft -------------------------------------------------------------

    @get("/")
    async def campaign_list(self, request: Request) -> Template:
        merchant_id = principal_of(request).merchant_id
        # The key figures of those that started sending: tracking's, one query for the list.
        campaigns = await with_figures(merchant_id, await services.list_campaigns(merchant_id))
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
    ) -> Template | Redirect:
        if campaign.status not in EDITABLE:
            # Sending or done: nothing to edit any more, its page is the progress page.
            return to_progress(campaign.id)
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
    ) -> Template | Redirect:
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
    async def basics(self, request: Request, campaign_id: FromPath[int]) -> Template | Redirect:
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
    ) -> Template | Redirect:
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
    async def audience(self, request: Request, campaign_id: FromPath[int]) -> Template | Redirect:
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
    async def layout(self, request: Request, campaign_id: FromPath[int]) -> Template | Redirect:
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
    async def design(self, request: Request, campaign_id: FromPath[int]) -> Template | Redirect:
        merchant_id = principal_of(request).merchant_id
        campaign = await services.get_campaign(merchant_id, campaign_id)
        if campaign.status not in EDITABLE:
            return to_progress(campaign_id)  # before rendering a preview nobody will see
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
    async def summary(self, request: Request, campaign_id: FromPath[int]) -> Template | Redirect:
        return await self._summary(request, campaign_id)

    @post("/{campaign_id:int}/test-send", status_code=303)
    async def test_send(self, request: Request, campaign_id: FromPath[int]) -> Redirect | Template:
        """The summary's "send a test" form: the checked team addresses, as the customer the
        preview shows. A refusal (quota, addresses) is shown on the summary; nothing is sent."""
        principal = principal_of(request)
        form = await request.form()
        addresses = [str(a) for a in form.getall("address", [])]
        wanted = str(form.get("customer", ""))
        customer_id = id_in_field(wanted)
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
        send_error: str = "",
        quota_short: bool = False,
        schedule_error: str = "",
        schedule_value: str | None = None,
        status_code: int = 200,
    ) -> Template | Redirect:
        """The summary step; ``*_error``: a refused test send, send or schedule, shown next
        to its form (``quota_short``: with the way to more quota)."""
        principal = principal_of(request)
        merchant_id = principal.merchant_id
        campaign = await services.get_campaign(merchant_id, campaign_id)
        if campaign.status not in EDITABLE:
            return to_progress(campaign_id)  # e.g. a second click on "Send now"
        merchant = await accounts.get_merchant(merchant_id)
        check = await services.check_campaign(merchant_id, campaign_id)
        sample = await audience_preview(merchant_id, campaign)
        problems = [
            {
                "message": translate(problem.message),
                "field": problem.field,
                "legal_footer": problem.legal_footer,
                # The brand's gaps link to their field on the settings page.
                "href": f"/settings#field-{problem.field}"
                if problem.legal_footer
                else "/settings#field-sender_email"
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
            sender=await _sender_of(merchant, campaign.sender_name),
            check=check,
            problems=problems,
            legal_gaps=any(problem.legal_footer for problem in check.problems),
            recipients=sample,
            quota=await summary_quota(merchant_id, sample.quota_cost if sample else None),
            layout_name=LAYOUTS[campaign.layout].name if campaign.layout in LAYOUTS else "",
            team_addresses=await accounts.user_emails(merchant_id),
            my_address=principal.email.lower(),
            test_error=test_error,
            send_error=send_error,
            quota_short=quota_short,
            schedule_error=schedule_error,
            # An overdue campaign's old time is of no use: the marketer picks a new one.
            schedule_value=schedule_value
            if schedule_value is not None
            else local_input(
                campaign.scheduled_at if campaign.status == "scheduled" else None,
                merchant.time_zone,
            ),
            schedule_min=local_input(datetime.now(UTC), merchant.time_zone),
            status_reason=translate(campaign.status_reason),
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

    # --- sending --------------------------------------------------------------------------------

    @post("/{campaign_id:int}/send", status_code=303)
    async def send_now(self, request: Request, campaign_id: FromPath[int]) -> Redirect | Template:
        """Freeze the target group, reserve its quota and start; then its progress page. A
        refusal (quota short, not ready, nobody left) is shown on the summary: the dispatch
        is one transaction, so nothing was frozen or reserved."""
        try:
            await dispatch.send_now(principal_of(request).merchant_id, campaign_id)
        except QuotaExceeded as exc:
            return await self._summary(
                request,
                campaign_id,
                send_error=refusal_sentence(exc),
                quota_short=True,
                status_code=exc.status_hint,
            )
        except LoyalmailError as exc:
            return await self._summary(
                request, campaign_id, send_error=translate(exc.message), status_code=exc.status_hint
            )
        return to_progress(campaign_id, "sending")

    @post("/{campaign_id:int}/schedule", status_code=303)
    async def schedule(
        self, request: Request, campaign_id: FromPath[int], data: URLEncodedBody[dict[str, str]]
    ) -> Redirect | Template:
        """Send at a time the marketer gives in the shop's time zone (again: reschedule)."""
        at = data.get("at", "").strip()[:40]
        try:
            if not at:
                raise ValidationFailed(_("Choose the day and the time."))
            await dispatch.schedule(
                principal_of(request).merchant_id, campaign_id, ScheduleRequest(at=at)
            )
        except LoyalmailError as exc:
            return await self._summary(
                request,
                campaign_id,
                schedule_error=translate(exc.message),
                schedule_value=at,
                status_code=exc.status_hint,
            )
        return Redirect(f"/campaigns/{campaign_id}/summary?notice=scheduled", status_code=303)

    @post("/{campaign_id:int}/unschedule", status_code=303)
    async def unschedule(self, request: Request, campaign_id: FromPath[int]) -> Redirect | Template:
        try:
            await dispatch.unschedule(principal_of(request).merchant_id, campaign_id)
        except LoyalmailError as exc:
            return await self._summary(
                request,
                campaign_id,
                schedule_error=translate(exc.message),
                status_code=exc.status_hint,
            )
        return Redirect(f"/campaigns/{campaign_id}/summary?notice=unscheduled", status_code=303)

    async def _figures(self, merchant: MerchantOut, campaign_id: int) -> dict[str, Any]:
        """What the progress fragment shows; counted from the recipients on every call."""
        figures = await progress(merchant.id, campaign_id)
        handled = figures.recipients - figures.remaining
        return {
            "campaign_id": campaign_id,
            "figures": figures,
            "handled": handled,
            "percent": round(100 * handled / figures.recipients) if figures.recipients else 0,
            "reason": translate(figures.status_reason),
            "time_left": time_left(figures.seconds_left),
            "time_zone": merchant.time_zone,
            "status_labels": STATUS_LABELS,
        }

    async def _sending(
        self, request: Request, campaign_id: int, *, error: str = "", status_code: int = 200
    ) -> Template:
        merchant_id = principal_of(request).merchant_id
        campaign = await services.get_campaign(merchant_id, campaign_id)
        merchant = await accounts.get_merchant(merchant_id)
        return await page(
            request,
            "campaign_sending.html",
            active="campaigns",
            merchant=merchant,
            campaign=campaign,
            audience_name=audience_label(campaign),
            notices=CAMPAIGN_NOTICES,
            error=error,
            status_code=status_code,
            **await self._figures(merchant, campaign_id),
        )

    @get("/{campaign_id:int}/sending")
    async def sending(self, request: Request, campaign_id: FromPath[int]) -> Template:
        return await self._sending(request, campaign_id)

    @get("/{campaign_id:int}/sending/figures")
    async def sending_figures(self, request: Request, campaign_id: FromPath[int]) -> Template:
        """The progress page's live part, which HTMX swaps in every two seconds."""
        merchant = await accounts.get_merchant(principal_of(request).merchant_id)
        return partial(
            "_campaign_sending_figures.html", **await self._figures(merchant, campaign_id)
        )

    async def _control(
        self, request: Request, campaign_id: int, action: Control, notice: str
    ) -> Redirect | Template:
        """Pause, resume or cancel, then back to the progress page; a refusal (it finished
        meanwhile, another marketer was quicker) is shown there with its status."""
        try:
            await action(principal_of(request).merchant_id, campaign_id)
        except LoyalmailError as exc:
            return await self._sending(
                request, campaign_id, error=translate(exc.message), status_code=exc.status_hint
            )
        return to_progress(campaign_id, notice)

    @post("/{campaign_id:int}/pause", status_code=303)
    async def pause(self, request: Request, campaign_id: FromPath[int]) -> Redirect | Template:
        return await self._control(request, campaign_id, control.pause, "paused")

    @post("/{campaign_id:int}/resume", status_code=303)
    async def resume(self, request: Request, campaign_id: FromPath[int]) -> Redirect | Template:
        return await self._control(request, campaign_id, control.resume, "resumed")

    @post("/{campaign_id:int}/cancel", status_code=303)
    async def cancel(self, request: Request, campaign_id: FromPath[int]) -> Redirect | Template:
        return await self._control(request, campaign_id, control.cancel, "cancelled")
