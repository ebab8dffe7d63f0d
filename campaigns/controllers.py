"""JSON API of campaigns: drafts, their check, previews as a customer, layouts and placeholders,
test sends, and sending: now, scheduled, paused, resumed, cancelled, and its progress.

Two-line handlers: who is calling, then one service call.
"""

from __future__ import annotations

from litestar import Controller, Request, delete, get, patch, post
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from campaigns import services
from campaigns.schemas import (
    CampaignCreate,
    CampaignList,
    CampaignOut,
    CampaignUpdate,
    CheckOut,
    LayoutOut,
    PauseRequest,
    PlaceholderOut,
    PreviewOut,
    PreviewRequest,
    ScheduleRequest,
    SendProgress,
    TestSendOut,
    TestSendRequest,
)
from campaigns.sending import control, dispatch
from campaigns.sending.progress import progress as send_progress
from campaigns.sending.test_sends import request_test_send
from loyalmail.auth import principal_of
from loyalmail.i18n import gettext
from templates.layouts import LAYOUTS
from templates.placeholders import PLACEHOLDERS
from tracking.reports import with_figures

#: What each placeholder shows for the sample person, so the composer can explain it.
PLACEHOLDER_EXAMPLES = {
    "salutation": "Dear Mr Example",
    "first_name": "Alex",
    "last_name": "Example",
    "full_name": "Alex Example",
    "email": "alex.example@example.com",
    "city": "Berlin",
    "birthday": "June 15",
    "lifetime_value": "€123.45",
}


class CampaignApiController(Controller):
    path = "/api/campaigns"
    tags = ["campaigns"]

    @get("/layouts")
    async def layouts(self) -> list[LayoutOut]:
        """The branded layouts a campaign can start from, with their starter blocks."""
        return [
            LayoutOut(
                key=layout.key,
                name=gettext(layout.name),
                description=gettext(layout.description),
                starter_blocks=list(layout.starter_blocks),
            )
            for layout in LAYOUTS.values()
        ]

    @get("/placeholders")
    async def placeholders(self) -> list[PlaceholderOut]:
        """Placeholders for subject, preheader and blocks: ``{{ name }}`` or
        ``{{ name | fallback }}``."""
        return [
            PlaceholderOut(name=name, label=gettext(label), example=PLACEHOLDER_EXAMPLES[name])
            for name, label in PLACEHOLDERS.items()
        ]

    @get("")
    async def list_campaigns(self, request: Request) -> CampaignList:
        """Each campaign that started sending has its key ``figures``, as its report counts
        them (tracking: one query for all of them)."""
        merchant_id = principal_of(request).merchant_id
        return CampaignList(
            items=await with_figures(merchant_id, await services.list_campaigns(merchant_id))
        )

    @post("", status_code=HTTP_201_CREATED)
    async def create_campaign(
        self, request: Request, data: JSONBody[CampaignCreate]
    ) -> CampaignOut:
        """A new draft; without blocks it starts with its layout's starter blocks."""
        p = principal_of(request)
        return await services.create_campaign(p.merchant_id, data, created_by=p.user_id)

    @get("/{campaign_id:int}")
    async def get_campaign(self, request: Request, campaign_id: FromPath[int]) -> CampaignOut:
        return await services.get_campaign(principal_of(request).merchant_id, campaign_id)

    @patch("/{campaign_id:int}")
    async def update_campaign(
        self, request: Request, campaign_id: FromPath[int], data: JSONBody[CampaignUpdate]
    ) -> CampaignOut:
        """Change what is present; a change that cannot be rendered is refused whole."""
        merchant_id = principal_of(request).merchant_id
        return await services.update_campaign(merchant_id, campaign_id, data)

    @delete("/{campaign_id:int}", status_code=HTTP_204_NO_CONTENT)
    async def delete_campaign(self, request: Request, campaign_id: FromPath[int]) -> None:
        await services.delete_campaign(principal_of(request).merchant_id, campaign_id)

    @get("/{campaign_id:int}/check")
    async def check_campaign(self, request: Request, campaign_id: FromPath[int]) -> CheckOut:
        """What still stops the campaign from being sent."""
        return await services.check_campaign(principal_of(request).merchant_id, campaign_id)

    @post("/{campaign_id:int}/preview", status_code=200)
    async def preview_campaign(
        self, request: Request, campaign_id: FromPath[int], data: JSONBody[PreviewRequest]
    ) -> PreviewOut:
        """The message as a customer (or a sample person) would get it; ``draft`` previews
        unsaved edits."""
        merchant_id = principal_of(request).merchant_id
        return await services.preview_campaign(merchant_id, campaign_id, data)

    @post("/{campaign_id:int}/test-sends", status_code=202)
    async def test_send(
        self, request: Request, campaign_id: FromPath[int], data: JSONBody[TestSendRequest]
    ) -> TestSendOut:
        """Send the campaign as a customer (or a sample person) to up to five of the team's
        login addresses, paid from the month's ten test sends; delivered in the background."""
        return await request_test_send(principal_of(request).merchant_id, campaign_id, data)

    @post("/{campaign_id:int}/send", status_code=202)
    async def send_now(self, request: Request, campaign_id: FromPath[int]) -> SendProgress:
        """Freeze the target group, reserve the quota for exactly that many and start
        sending. 409 with the figures when the quota does not cover it (nothing is frozen),
        409 when it is being sent already, 422 when it is not ready."""
        return await dispatch.send_now(principal_of(request).merchant_id, campaign_id)

    @post("/{campaign_id:int}/schedule", status_code=200)
    async def schedule(
        self, request: Request, campaign_id: FromPath[int], data: JSONBody[ScheduleRequest]
    ) -> SendProgress:
        """Send at a time (without an offset: the shop's time zone); again to reschedule."""
        return await dispatch.schedule(principal_of(request).merchant_id, campaign_id, data)

    @delete("/{campaign_id:int}/schedule", status_code=200)
    async def unschedule(self, request: Request, campaign_id: FromPath[int]) -> SendProgress:
        """Drop the schedule: the campaign is a draft again."""
        return await dispatch.unschedule(principal_of(request).merchant_id, campaign_id)

    @post("/{campaign_id:int}/pause", status_code=200)
    async def pause(
        self,
        request: Request,
        campaign_id: FromPath[int],
        data: JSONBody[PauseRequest | None] = None,
    ) -> SendProgress:
        reason = data.reason if data is not None else ""
        return await control.pause(principal_of(request).merchant_id, campaign_id, reason)

    @post("/{campaign_id:int}/resume", status_code=200)
    async def resume(self, request: Request, campaign_id: FromPath[int]) -> SendProgress:
        return await control.resume(principal_of(request).merchant_id, campaign_id)

    @post("/{campaign_id:int}/cancel", status_code=200)
    async def cancel(self, request: Request, campaign_id: FromPath[int]) -> SendProgress:
        """Stop for good; the unused rest of the reservation goes back."""
        return await control.cancel(principal_of(request).merchant_id, campaign_id)

    @get("/{campaign_id:int}/progress")
    async def progress(self, request: Request, campaign_id: FromPath[int]) -> SendProgress:
        """Sent, failed, remaining, the rate over the last minute and the time left."""
        return await send_progress(principal_of(request).merchant_id, campaign_id)
