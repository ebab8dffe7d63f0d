"""The marketer's customer pages: list with search and filters, the customer page, add, edit,
erase. Forms re-render with readable messages; HTMX swaps only the table or the history."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from litestar import Controller, Request, get, post
from litestar.params import FromPath, URLEncodedBody
from litestar.response import Redirect, Template

from accounts import services as accounts
from accounts.schemas import MerchantOut
from customers.schemas import (
    CUSTOMER_TYPES,
    PROFILE_COLUMNS,
    ActivitySort,
    CustomerCreate,
    CustomerOut,
    CustomerQuery,
    CustomerUpdate,
    PurchaseCreate,
)
from customers.services import consent, loyalty, purchases
from customers.services import customers as service
from loyalmail.auth import principal_of
from loyalmail.errors import LoyalmailError, ValidationFailed, _
from loyalmail.i18n import RECIPIENT_LOCALES, gettext, language_name
from loyalmail.pages_controller import convert_form, is_htmx, page, partial

QUERY_FIELDS = frozenset(CustomerQuery.__struct_fields__)
#: The fields the list keeps in its links (filters, sort, page) and hands to the export.
FILTER_FIELDS = ("q", "customer_type", "email_status", "subscribed", "country", "city")
TEXT_FIELDS = PROFILE_COLUMNS
ACTIVITY_SORTS = ("occurred_at", "kind", "amount")


def _actor(request: Request) -> str:
    return principal_of(request).email


def _query_from(request: Request) -> tuple[CustomerQuery, str]:
    """The list's query from the URL; a bad filter shows a message and the unfiltered list."""
    params = {k: v.strip() for k, v in request.query_params.items() if k in QUERY_FIELDS}
    if params.get("country"):
        params["country"] = params["country"].upper()
    try:
        return service.parse_customer_query(params), ""
    except ValidationFailed:
        return CustomerQuery(), gettext(_("The search or filter is not valid."))


def _query_params(query: CustomerQuery, **changes: Any) -> dict[str, str]:
    values: dict[str, Any] = {name: getattr(query, name) for name in FILTER_FIELDS}
    values.update(sort=query.sort, order=query.order, page=query.page)
    values.update(changes)
    out: dict[str, str] = {}
    for key, value in values.items():
        if value is None or value == "":
            continue
        out[key] = str(value).lower() if isinstance(value, bool) else str(value)
    return out


def _list_context(query: CustomerQuery, result: Any) -> dict[str, Any]:
    def link(**changes: Any) -> str:
        return "/customers?" + urlencode(_query_params(query, **changes))

    def sort_link(column: str) -> str:
        order = "asc" if query.sort == column and query.order == "desc" else "desc"
        if query.sort != column and column in ("email", "last_name", "city", "country"):
            order = "asc"
        return link(sort=column, order=order, page=1)

    export = urlencode(
        {k: v for k, v in _query_params(query).items() if k not in ("page", "per_page")}
    )
    return {
        "query": query,
        "result": result,
        "pages": max(1, math.ceil(result.total / query.per_page)),
        "link": link,
        "sort_link": sort_link,
        "export_query": export,
    }


def _customer_form_values(customer: CustomerOut) -> dict[str, Any]:
    values: dict[str, Any] = {name: getattr(customer, name) for name in TEXT_FIELDS}
    values["birth_date"] = customer.birth_date.isoformat() if customer.birth_date else ""
    values["custom_fields"] = "\n".join(f"{k}: {v}" for k, v in customer.custom_fields.items())
    values["subscribed"] = customer.subscribed
    return values


def _parse_custom_fields(
    text: str, previous: dict[str, Any] | None = None
) -> tuple[dict[str, Any], str]:
    """``name: value`` per line. A value left as it was keeps its type (a number stays one)."""
    fields: dict[str, Any] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            return {}, gettext(_("Write one field per line, as name: value."))
        key, value = name.strip(), value.strip()
        old = (previous or {}).get(key)
        fields[key] = old if old is not None and str(old) == value else value
    return fields, ""


def _form_to_struct(
    data: dict[str, str], into: type[Any], previous: CustomerOut | None = None
) -> tuple[Any, dict[str, Any], dict[str, str]]:
    """(struct or None, values to show again, field errors)."""
    shown: dict[str, Any] = {name: data.get(name, "").strip() for name in TEXT_FIELDS}
    shown["country"] = shown["country"].upper()
    shown["custom_fields"] = data.get("custom_fields", "")
    values: dict[str, Any] = dict(shown)
    values["birth_date"] = shown["birth_date"] or None
    if not values["customer_type"]:
        del values["customer_type"]  # a form without the choice keeps the type as it is
    custom, custom_error = _parse_custom_fields(
        shown["custom_fields"], previous.custom_fields if previous else None
    )
    values["custom_fields"] = custom
    if into is CustomerCreate:
        shown["send_optin"] = values["send_optin"] = data.get("send_optin") == "on"
    else:
        shown["subscribed"] = data.get("subscribed") == "on"
        if previous is not None and shown["subscribed"] != previous.subscribed:
            values["subscribed"] = shown["subscribed"]
    struct, errors = convert_form(values, into)
    if custom_error:
        errors["custom_fields"] = custom_error
        struct = None
    return struct, shown, errors


def _service_errors(exc: LoyalmailError) -> dict[str, str]:
    message = gettext(exc.message)
    return {name: gettext(text) if text else message for name, text in exc.fields.items()}


def _form_options() -> dict[str, Any]:
    return {
        "type_options": [(t, t) for t in CUSTOMER_TYPES],
        "locale_options": [(code, language_name(code)) for code in RECIPIENT_LOCALES],
    }


async def _merchant(request: Request) -> MerchantOut:
    return await accounts.get_merchant(principal_of(request).merchant_id)


class CustomerPagesController(Controller):
    path = "/customers"
    include_in_schema = False

    @get("/")
    async def customer_list(self, request: Request) -> Template:
        merchant_id = principal_of(request).merchant_id
        query, problem = _query_from(request)
        result = await service.list_customers(merchant_id, query)
        context = _list_context(query, result)
        merchant = await _merchant(request)
        if is_htmx(request) and not request.headers.get("hx-history-restore-request"):
            return partial("_customer_table.html", merchant=merchant, problem=problem, **context)
        return await page(
            request,
            "customer_list.html",
            active="customers",
            merchant=merchant,
            problem=problem,
            **context,
        )

    # --- add and edit ---------------------------------------------------------------------

    async def _form_page(
        self,
        request: Request,
        *,
        customer: CustomerOut | None,
        values: dict[str, Any],
        errors: dict[str, str] | None = None,
        message: str = "",
        status_code: int = 200,
    ) -> Template:
        return await page(
            request,
            "customer_form.html",
            active="customers",
            customer=customer,
            values=values,
            errors=errors or {},
            message=message,
            status_code=status_code,
            **_form_options(),
        )

    @get("/new")
    async def new_form(self, request: Request) -> Template:
        values = {"customer_type": "non_member", "send_optin": True}
        return await self._form_page(request, customer=None, values=values)

    @post("/new", status_code=303)
    async def create(
        self, request: Request, data: URLEncodedBody[dict[str, str]]
    ) -> Redirect | Template:
        struct, shown, errors = _form_to_struct(data, CustomerCreate)
        if struct is not None:
            try:
                created = await service.create_customer(
                    principal_of(request).merchant_id,
                    struct,
                    source="marketer",
                    actor=_actor(request),
                    ip=request.client.host if request.client else "",
                    user_agent=request.headers.get("user-agent", "")[:300],
                )
            except LoyalmailError as exc:
                return await self._form_page(
                    request,
                    customer=None,
                    values=shown,
                    errors=_service_errors(exc),
                    message=gettext(exc.message),
                    status_code=exc.status_hint,
                )
            return Redirect(f"/customers/{created.id}?notice=created", status_code=303)
        return await self._form_page(
            request,
            customer=None,
            values=shown,
            errors=errors,
            message=gettext(_("Please correct the marked fields.")),
            status_code=422,
        )

    @get("/{customer_id:int}/edit")
    async def edit_form(self, request: Request, customer_id: FromPath[int]) -> Template:
        customer = await service.get_customer(principal_of(request).merchant_id, customer_id)
        return await self._form_page(
            request, customer=customer, values=_customer_form_values(customer)
        )

    @post("/{customer_id:int}/edit", status_code=303)
    async def update(
        self, request: Request, customer_id: FromPath[int], data: URLEncodedBody[dict[str, str]]
    ) -> Redirect | Template:
        merchant_id = principal_of(request).merchant_id
        customer = await service.get_customer(merchant_id, customer_id)
        struct, shown, errors = _form_to_struct(data, CustomerUpdate, previous=customer)
        if struct is not None:
            try:
                await service.update_customer(
                    merchant_id, customer_id, struct, actor=_actor(request)
                )
            except LoyalmailError as exc:
                return await self._form_page(
                    request,
                    customer=customer,
                    values=shown,
                    errors=_service_errors(exc),
                    message=gettext(exc.message),
                    status_code=exc.status_hint,
                )
            return Redirect(f"/customers/{customer_id}?notice=saved", status_code=303)
        return await self._form_page(
            request,
            customer=customer,
            values=shown,
            errors=errors,
            message=gettext(_("Please correct the marked fields.")),
            status_code=422,
        )

    # --- the customer page ----------------------------------------------------------------

    async def _activity(
        self, merchant_id: int, customer_id: int, request: Request
    ) -> dict[str, Any]:
        wanted = request.query_params.get("sort", "occurred_at")
        sort: ActivitySort = wanted if wanted in ACTIVITY_SORTS else "occurred_at"  # type: ignore[assignment]
        order: Literal["asc", "desc"] = (
            "asc" if request.query_params.get("order") == "asc" else "desc"
        )
        try:
            page_number = max(1, min(100_000, int(request.query_params.get("page", "1"))))
        except ValueError:
            page_number = 1
        activity = await purchases.list_activity(
            merchant_id, customer_id, sort=sort, order=order, page=page_number, per_page=25
        )
        return {
            "activity": activity,
            "activity_sort": sort,
            "activity_order": order,
            "activity_pages": max(1, math.ceil(activity.total / activity.per_page)),
        }

    async def _detail_page(
        self,
        request: Request,
        customer_id: int,
        *,
        purchase_values: dict[str, Any] | None = None,
        purchase_errors: dict[str, str] | None = None,
        action_error: str = "",
        status_code: int = 200,
    ) -> Template:
        merchant_id = principal_of(request).merchant_id
        customer = await service.get_customer(merchant_id, customer_id)
        merchant = await _merchant(request)
        return await page(
            request,
            "customer_detail.html",
            active="customers",
            merchant=merchant,
            customer=customer,
            insights=await purchases.get_insights(merchant_id, customer_id),
            consent_log=await consent.list_consent(merchant_id, customer_id),
            type_history=await loyalty.type_history(merchant_id, customer_id),
            purchase_values=purchase_values or {"kind": "purchase"},
            purchase_errors=purchase_errors or {},
            action_error=action_error,
            status_code=status_code,
            **await self._activity(merchant_id, customer_id, request),
        )

    @get("/{customer_id:int}")
    async def detail(self, request: Request, customer_id: FromPath[int]) -> Template:
        return await self._detail_page(request, customer_id)

    @get("/{customer_id:int}/activity")
    async def activity(self, request: Request, customer_id: FromPath[int]) -> Template:
        merchant_id = principal_of(request).merchant_id
        customer = await service.get_customer(merchant_id, customer_id)
        return partial(
            "_activity.html",
            merchant=await _merchant(request),
            customer=customer,
            **await self._activity(merchant_id, customer_id, request),
        )

    @post("/{customer_id:int}/purchases", status_code=303)
    async def add_purchase(
        self, request: Request, customer_id: FromPath[int], data: URLEncodedBody[dict[str, str]]
    ) -> Redirect | Template:
        merchant = await _merchant(request)
        shown = {k: data.get(k, "").strip() for k in ("kind", "amount", "occurred_at", "reference")}
        values: dict[str, Any] = {
            "kind": shown["kind"] or "purchase",
            "amount": shown["amount"].replace(",", "."),
            "reference": shown["reference"],
        }
        errors: dict[str, str] = {}
        if shown["occurred_at"]:
            try:
                # The form's datetime-local has no zone: it is the shop's local time.
                local = datetime.fromisoformat(shown["occurred_at"])
                values["occurred_at"] = local.replace(tzinfo=ZoneInfo(merchant.time_zone))
            except ValueError:
                errors["occurred_at"] = gettext(_("Enter a date and time."))
        struct, more = convert_form(values, PurchaseCreate)
        errors.update(more)
        if struct is not None and not errors:
            try:
                await purchases.add_purchase(merchant.id, customer_id, struct)
            except LoyalmailError as exc:
                if exc.status_hint == 404:
                    raise
                errors = _service_errors(exc) or {"amount": gettext(exc.message)}
            else:
                return Redirect(
                    f"/customers/{customer_id}?notice=purchase#activity", status_code=303
                )
        return await self._detail_page(
            request,
            customer_id,
            purchase_values=shown,
            purchase_errors=errors,
            status_code=422,
        )

    @post("/{customer_id:int}/optin", status_code=303)
    async def resend_optin(
        self, request: Request, customer_id: FromPath[int]
    ) -> Redirect | Template:
        merchant_id = principal_of(request).merchant_id
        try:
            await consent.request_optin(merchant_id, customer_id, actor=_actor(request))
        except LoyalmailError as exc:
            if exc.status_hint == 404:
                raise
            return await self._detail_page(
                request,
                customer_id,
                action_error=gettext(exc.message),
                status_code=exc.status_hint,
            )
        return Redirect(f"/customers/{customer_id}?notice=optin", status_code=303)

    # --- erasure --------------------------------------------------------------------------

    @get("/{customer_id:int}/erase")
    async def erase_confirm(self, request: Request, customer_id: FromPath[int]) -> Template:
        customer = await service.get_customer(principal_of(request).merchant_id, customer_id)
        return await page(request, "customer_erase.html", active="customers", customer=customer)

    @post("/{customer_id:int}/erase", status_code=303)
    async def erase(
        self, request: Request, customer_id: FromPath[int], data: URLEncodedBody[dict[str, str]]
    ) -> Redirect | Template:
        merchant_id = principal_of(request).merchant_id
        customer = await service.get_customer(merchant_id, customer_id)
        if data.get("confirm") != "erase":
            return await page(
                request,
                "customer_erase.html",
                active="customers",
                customer=customer,
                error=gettext(_("Tick the box to confirm the erasure.")),
                status_code=422,
            )
        await service.erase_customer(merchant_id, customer_id, actor=_actor(request))
        return Redirect("/customers?notice=erased", status_code=303)
