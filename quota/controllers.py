"""JSON API of the quota: what is left, what a send would use, the history; and the operator
API that records bought packs, runs the monthly grants and sets who is loyal (what the
allowance is counted from).

The operator API is outside the merchants' authentication: a merchant must never be able to
credit itself packs. It answers 404 unless ``LOYALMAIL_OPERATOR_TOKEN`` is set, and then only
to that token.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from litestar import Controller, Request, Response, get, post, put
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, NotFoundException
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, FromQuery, JSONBody, Parameter

from accounts import services as accounts
from customers.schemas import OperatorTypeResult, OperatorTypeSet
from customers.services import loyalty
from loyalmail import database
from loyalmail.auth import principal_of
from loyalmail.settings import get_settings
from quota import services
from quota.schemas import (
    EstimateRequest,
    GrantRun,
    HistoryPage,
    PackPurchase,
    PackRecorded,
    QuotaOverview,
    SendEstimate,
)


class QuotaApiController(Controller):
    path = "/api/quota"
    tags = ["quota"]

    @get("/")
    async def show(self, request: Request) -> QuotaOverview:
        """This month's allowance, packs, test sends and next month's forecast."""
        return await services.overview(principal_of(request).merchant_id)

    @get("/history")
    async def history(
        self,
        request: Request,
        before: FromQuery[Annotated[int | None, Parameter(ge=1, le=database.LARGEST_KEY)]] = None,
        limit: FromQuery[Annotated[int, Parameter(ge=1, le=200)]] = 50,
    ) -> HistoryPage:
        """Grants, purchases, reservations, releases and expiries, newest first."""
        merchant_id = principal_of(request).merchant_id
        return await services.history(merchant_id, before=before, limit=limit)

    @post("/estimate", status_code=200)
    async def estimate(self, request: Request, data: JSONBody[EstimateRequest]) -> SendEstimate:
        """What a send of ``units`` would use now, source by source (nothing is reserved)."""
        return await services.estimate(principal_of(request).merchant_id, data.units)


def operator_guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    expected = get_settings().operator_token
    if not expected:
        raise NotFoundException()
    scheme, _sep, credential = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(credential.strip(), expected):
        raise NotAuthorizedException("This needs the operator token.")


class OperatorQuotaController(Controller):
    path = "/api/operator"
    tags = ["operator"]
    guards = [operator_guard]

    @get("/merchants/{slug:str}/quota")
    async def show(self, slug: FromPath[str]) -> QuotaOverview:
        merchant = await accounts.get_merchant_by_slug(slug)
        return await services.overview(merchant.id)

    @post(
        "/merchants/{slug:str}/quota/packs",
        responses={
            200: ResponseSpec(PackRecorded, description="Recorded before: nothing credited")
        },
    )
    async def add_pack(
        self, slug: FromPath[str], data: JSONBody[PackPurchase]
    ) -> Response[PackRecorded]:
        """Record bought packs. The same ``reference`` again credits nothing (200, ``created``
        false); a new one answers 201."""
        merchant = await accounts.get_merchant_by_slug(slug)
        recorded = await services.buy_pack(merchant.id, data.reference, data.packs)
        return Response(recorded, status_code=201 if recorded.created else 200)

    @put("/merchants/{slug:str}/customers/type")
    async def set_customer_type(
        self, slug: FromPath[str], data: JSONBody[OperatorTypeSet]
    ) -> OperatorTypeResult:
        """The loyalty programme says what a customer of the merchant is, by address (with
        ``LOYALMAIL_LOYALTY_SOURCE=operator`` the only way a customer becomes loyal or stops
        being loyal). 404: no such merchant or customer; ``changed`` false: it was already."""
        merchant = await accounts.get_merchant_by_slug(slug)
        return await loyalty.set_type_by_operator(merchant.id, data.email, data.customer_type)

    @post("/quota/grant", status_code=200)
    async def grant(self) -> GrantRun:
        """Run the monthly job now: grant every merchant's month, expire what is over."""
        return await services.run_monthly_job()
