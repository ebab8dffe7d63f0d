"""The campaign report: its JSON API and its page, with the lists of people (who opened,
clicked, unsubscribed) as JSON, CSV and a section of the page."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Request, get
from litestar.params import FromPath, FromQuery, Parameter
from litestar.response import Stream, Template

from campaigns import services as campaigns
from loyalmail import database
from loyalmail.auth import principal_of
from loyalmail.errors import _
from loyalmail.i18n import gettext
from loyalmail.pages_controller import page
from tracking import people
from tracking.chart import activity_svg
from tracking.reports import campaign_report
from tracking.schemas import CampaignReport, PeoplePage

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"

#: A keyset position is a recipient id (BIGINT): anything outside is refused with a 400 before
#: a query could fail on it.
After = Annotated[int, Parameter(ge=0, le=database.LARGEST_BIG_KEY)]


class ReportApiController(Controller):
    path = "/api/campaigns"
    tags = ["reports"]

    @get("/{campaign_id:int}/report")
    async def report(self, request: Request, campaign_id: FromPath[int]) -> CampaignReport:
        """Delivered, bounces, unique opens and clicks with their rates, machine opens apart,
        unsubscribes, clicks per link and people's activity per hour."""
        return await campaign_report(principal_of(request).merchant_id, campaign_id)

    @get("/{campaign_id:int}/report/people")
    async def people(
        self,
        request: Request,
        campaign_id: FromPath[int],
        activity: FromQuery[str] = "opened",
        after: FromQuery[After] = 0,
        limit: FromQuery[int] = 50,
    ) -> PeoplePage:
        """Who ``opened`` (a person's open or click), ``clicked``, ``unsubscribed`` (not taken
        back) or was seen by machines only (``machine_only``), in recipient order: pass
        ``next_after`` as ``after`` for the next page; ``limit`` is at most 100."""
        return await people.people_page(
            principal_of(request).merchant_id, campaign_id, activity, after=after, limit=limit
        )

    @get("/{campaign_id:int}/report/people.csv", media_type=CSV_MEDIA_TYPE)
    async def people_csv(
        self, request: Request, campaign_id: FromPath[int], activity: FromQuery[str] = "opened"
    ) -> Stream:
        """The whole list as CSV (UTF-8 with a byte-order mark, formulas neutralised)."""
        merchant_id = principal_of(request).merchant_id
        chosen = await people.check_list(merchant_id, campaign_id, activity)  # before the stream
        return Stream(
            people.csv_chunks(merchant_id, campaign_id, chosen),
            media_type=CSV_MEDIA_TYPE,
            headers={
                "content-disposition": (
                    f'attachment; filename="campaign-{campaign_id}-{chosen}.csv"'
                )
            },
        )


#: The report page's tabs over the lists of people.
PEOPLE_LISTS = (
    ("opened", _("Opened")),
    ("clicked", _("Clicked")),
    ("unsubscribed", _("Unsubscribed")),
    ("machine_only", _("Machine opens only")),
)


class ReportPagesController(Controller):
    path = "/campaigns"
    include_in_schema = False

    @get("/{campaign_id:int}/report")
    async def report_page(
        self,
        request: Request,
        campaign_id: FromPath[int],
        activity: FromQuery[str] = "opened",
        after: FromQuery[After] = 0,
    ) -> Template:
        merchant_id = principal_of(request).merchant_id
        campaign = await campaigns.get_campaign(merchant_id, campaign_id)
        report = await campaign_report(merchant_id, campaign_id)
        listed = await people.people_page(
            merchant_id, campaign_id, activity, after=after, limit=people.MOST_PER_PAGE
        )
        title, opens, clicks = _("Opens and clicks over time"), _("Opens"), _("Clicks")
        chart = activity_svg(report.activity, gettext(title), gettext(opens), gettext(clicks))
        return await page(
            request,
            "campaign_report.html",
            active="campaigns",
            campaign=campaign,
            report=report,
            chart=chart,
            people=listed,
            people_after=max(after, 0),
            people_lists=PEOPLE_LISTS,
        )
