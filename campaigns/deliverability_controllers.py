"""The merchant's deliverability: its JSON API and its page in the Settings area.

Two-line handlers: who is calling, then one service call
(:mod:`campaigns.sending.deliverability`).
"""

from __future__ import annotations

from litestar import Controller, Request, get
from litestar.response import Template

from accounts import domains
from accounts.domains.pages_text import STATUS_LABELS as DOMAIN_STATUS_LABELS
from campaigns.pages_text import STATUS_LABELS, translate
from campaigns.schemas import Deliverability
from campaigns.sending.deliverability import deliverability
from loyalmail.auth import principal_of
from loyalmail.pages_controller import page


class DeliverabilityApiController(Controller):
    path = "/api/deliverability"
    tags = ["deliverability"]

    @get("/")
    async def figures(self, request: Request) -> Deliverability:
        """The last 30 days: messages sent (accepted), hard and soft bounces and complaints
        with their rates, in all and per campaign whose send started then (newest first),
        and the limits past which a running campaign pauses itself."""
        return await deliverability(principal_of(request).merchant_id)


class DeliverabilityPagesController(Controller):
    path = "/settings/deliverability"
    include_in_schema = False

    @get("/")
    async def show(self, request: Request) -> Template:
        merchant_id = principal_of(request).merchant_id
        figures = await deliverability(merchant_id)
        return await page(
            request,
            "deliverability.html",
            active="settings",
            figures=figures,
            sending_domains=await domains.list_domains(merchant_id),
            domain_status_labels=DOMAIN_STATUS_LABELS,
            reasons={c.campaign_id: translate(c.status_reason) for c in figures.campaigns},
            status_labels=STATUS_LABELS,
        )
