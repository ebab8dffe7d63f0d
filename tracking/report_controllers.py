"""The campaign report: its JSON API and its page."""

from __future__ import annotations

from litestar import Controller, Request, get
from litestar.params import FromPath
from litestar.response import Template

from campaigns import services as campaigns
from loyalmail.auth import principal_of
from loyalmail.errors import _
from loyalmail.i18n import gettext
from loyalmail.pages_controller import page
from tracking.chart import activity_svg
from tracking.reports import campaign_report
from tracking.schemas import CampaignReport


class ReportApiController(Controller):
    path = "/api/campaigns"
    tags = ["reports"]

    @get("/{campaign_id:int}/report")
    async def report(self, request: Request, campaign_id: FromPath[int]) -> CampaignReport:
        """Delivered, bounces, unique opens and clicks with their rates, machine opens apart,
        unsubscribes, clicks per link and people's activity per hour."""
        return await campaign_report(principal_of(request).merchant_id, campaign_id)


class ReportPagesController(Controller):
    path = "/campaigns"
    include_in_schema = False

    @get("/{campaign_id:int}/report")
    async def report_page(self, request: Request, campaign_id: FromPath[int]) -> Template:
        merchant_id = principal_of(request).merchant_id
        campaign = await campaigns.get_campaign(merchant_id, campaign_id)
        report = await campaign_report(merchant_id, campaign_id)
        title, opens, clicks = _("Opens and clicks over time"), _("Opens"), _("Clicks")
        chart = activity_svg(report.activity, gettext(title), gettext(opens), gettext(clicks))
        return await page(
            request,
            "campaign_report.html",
            active="campaigns",
            campaign=campaign,
            report=report,
            chart=chart,
        )
