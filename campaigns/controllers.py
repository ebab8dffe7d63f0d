"""JSON API of campaigns: drafts, their check, previews as a customer, layouts and placeholders.

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
    PlaceholderOut,
    PreviewOut,
    PreviewRequest,
    TestSendOut,
    TestSendRequest,
)
from campaigns.sending.test_sends import request_test_send
from loyalmail.auth import principal_of
from loyalmail.i18n import gettext
from templates.layouts import LAYOUTS
from templates.placeholders import PLACEHOLDERS

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
        return CampaignList(items=await services.list_campaigns(principal_of(request).merchant_id))

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
