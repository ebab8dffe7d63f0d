"""JSON API of the customer list: customers, purchases, insights, consent, dashboard.

Two-line handlers: who is calling (the principal's merchant), then one service call. Errors
are the domain's (loyalmail/errors.py), mapped to JSON in loyalmail/http_errors.py.
"""

from __future__ import annotations

from typing import Literal

from litestar import Controller, Request, delete, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from accounts.schemas import Principal
from customers.schemas import (
    ActivityPage,
    ActivitySort,
    ConsentEventOut,
    ConsentSource,
    CustomerCreate,
    CustomerOut,
    CustomerPage,
    CustomerUpdate,
    Dashboard,
    Insights,
    PurchaseCreate,
    PurchaseKind,
    PurchaseOut,
)
from customers.services import consent, customers, dashboard, purchases
from loyalmail.auth import principal_of


def _source(principal: Principal) -> ConsentSource:
    # An integration's token is "api"; a marketer in the browser is "marketer".
    return "api" if principal.via == "token" else "marketer"


def _client(request: Request) -> tuple[str, str]:
    return (request.client.host if request.client else ""), request.headers.get("user-agent", "")


class CustomerApiController(Controller):
    path = "/api"
    tags = ["customers"]

    @get("/customers")
    async def list_customers(self, request: Request) -> CustomerPage:
        """Search (``q``), filters, ``sort``/``order`` and ``page``/``per_page`` as in
        CustomerQuery; unknown or invalid parameters answer 422 naming the parameter."""
        query = customers.parse_customer_query(dict(request.query_params))
        return await customers.list_customers(principal_of(request).merchant_id, query)

    @post("/customers", status_code=HTTP_201_CREATED)
    async def create_customer(
        self, request: Request, data: JSONBody[CustomerCreate]
    ) -> CustomerOut:
        p, (ip, agent) = principal_of(request), _client(request)
        return await customers.create_customer(
            p.merchant_id,
            data,
            source=_source(p),
            actor=p.email,
            ip=ip,
            user_agent=agent,
            via="api",
        )

    @get("/customers/{customer_id:int}")
    async def get_customer(self, request: Request, customer_id: FromPath[int]) -> CustomerOut:
        return await customers.get_customer(principal_of(request).merchant_id, customer_id)

    @patch("/customers/{customer_id:int}")
    async def update_customer(
        self, request: Request, customer_id: FromPath[int], data: JSONBody[CustomerUpdate]
    ) -> CustomerOut:
        p = principal_of(request)
        return await customers.update_customer(
            p.merchant_id, customer_id, data, actor=p.email, source=_source(p), via="api"
        )

    @delete("/customers/{customer_id:int}", status_code=HTTP_204_NO_CONTENT)
    async def erase_customer(self, request: Request, customer_id: FromPath[int]) -> None:
        """Erasure: the customer and every row about them are deleted; only a keyed hash of
        the address stays on the suppression list."""
        p = principal_of(request)
        await customers.erase_customer(p.merchant_id, customer_id, actor=p.email)

    @post("/customers/{customer_id:int}/purchases", status_code=HTTP_201_CREATED)
    async def add_purchase(
        self, request: Request, customer_id: FromPath[int], data: JSONBody[PurchaseCreate]
    ) -> PurchaseOut:
        return await purchases.add_purchase(principal_of(request).merchant_id, customer_id, data)

    @get("/customers/{customer_id:int}/purchases")
    async def list_purchases(
        self,
        request: Request,
        customer_id: FromPath[int],
        kind: FromQuery[PurchaseKind | None] = None,
        sort: FromQuery[ActivitySort] = "occurred_at",
        order: FromQuery[Literal["asc", "desc"]] = "desc",
        page: FromQuery[int] = 1,
        per_page: FromQuery[int] = 50,
    ) -> ActivityPage:
        return await purchases.list_activity(
            principal_of(request).merchant_id,
            customer_id,
            kind=kind,
            sort=sort,
            order=order,
            page=page,
            per_page=per_page,
        )

    @get("/customers/{customer_id:int}/insights")
    async def insights(self, request: Request, customer_id: FromPath[int]) -> Insights:
        return await purchases.get_insights(principal_of(request).merchant_id, customer_id)

    @get("/customers/{customer_id:int}/consent")
    async def consent_log(
        self, request: Request, customer_id: FromPath[int]
    ) -> list[ConsentEventOut]:
        return await consent.list_consent(principal_of(request).merchant_id, customer_id)

    @post("/customers/{customer_id:int}/optin", status_code=200)
    async def resend_optin(self, request: Request, customer_id: FromPath[int]) -> CustomerOut:
        """Send the confirmation e-mail again (409 if the address is confirmed already)."""
        p = principal_of(request)
        return await consent.request_optin(
            p.merchant_id, customer_id, actor=p.email, source=_source(p)
        )

    @get("/dashboard")
    async def get_dashboard(self, request: Request) -> Dashboard:
        return await dashboard.dashboard(principal_of(request).merchant_id)
