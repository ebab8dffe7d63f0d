"""The merchant's settings pages: the brand profile and, for owners, API tokens."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.params import FromPath, URLEncodedBody
from litestar.response import Redirect, Template

from accounts import services
from accounts.schemas import SUPPORTED_LOCALES, ApiTokenCreate, Brand, MerchantOut
from loyalmail.auth import principal_of
from loyalmail.errors import LoyalmailError, PermissionDenied, _
from loyalmail.i18n import gettext, language_name
from loyalmail.pages_controller import convert_form, page

BRAND_FIELDS = tuple(Brand.__struct_fields__)


def require_owner(request: Request) -> None:
    if principal_of(request).role != "owner":
        raise PermissionDenied(_("Only the shop's owner may change this."))


def _brand_values(merchant: MerchantOut) -> dict[str, Any]:
    return {name: getattr(merchant, name) for name in BRAND_FIELDS}


def _form_values(data: dict[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {k: v.strip() for k, v in data.items() if k in BRAND_FIELDS}
    for code_field in ("country", "currency"):
        if code_field in values:
            values[code_field] = values[code_field].upper()
    return values


class SettingsPagesController(Controller):
    path = "/settings"
    include_in_schema = False

    async def _brand_page(
        self,
        request: Request,
        *,
        values: dict[str, Any] | None = None,
        errors: dict[str, str] | None = None,
        message: str = "",
        status_code: int = 200,
    ) -> Template:
        principal = principal_of(request)
        merchant = await services.get_merchant(principal.merchant_id)
        return await page(
            request,
            "settings.html",
            active="settings",
            merchant=merchant,
            values=values or _brand_values(merchant),
            errors=errors or {},
            message=message,
            can_edit=principal.role == "owner",
            # The saved profile's gaps: no newsletter can go out until they are filled.
            legal_gaps=[
                {"field": gap.field, "message": gettext(gap.message)}
                for gap in services.legal_footer_problems(merchant)
            ],
            language_options=[(code, language_name(code)) for code in SUPPORTED_LOCALES],
            status_code=status_code,
        )

    @get("/")
    async def brand(self, request: Request) -> Template:
        return await self._brand_page(request)

    @post("/", status_code=303)
    async def save_brand(
        self, request: Request, data: URLEncodedBody[dict[str, str]]
    ) -> Redirect | Template:
        require_owner(request)
        values = _form_values(data)
        brand, errors = convert_form(values, Brand)
        if brand is not None:
            try:
                await services.update_brand(principal_of(request).merchant_id, brand)
            except LoyalmailError as exc:
                errors = {k: gettext(v or exc.message) for k, v in exc.fields.items()}
                errors = errors or {"__all__": gettext(exc.message)}
            else:
                return Redirect("/settings?notice=saved", status_code=303)
        return await self._brand_page(
            request,
            values=values,
            errors=errors,
            message=gettext(_("Please correct the marked fields.")),
            status_code=422,
        )

    async def _tokens_page(
        self,
        request: Request,
        *,
        created: str = "",
        error: str = "",
        status_code: int = 200,
    ) -> Template:
        require_owner(request)
        merchant_id = principal_of(request).merchant_id
        return await page(
            request,
            "api_tokens.html",
            active="settings",
            tokens=await services.list_api_tokens(merchant_id),
            created=created,
            error=error,
            status_code=status_code,
        )

    @get("/tokens")
    async def tokens(self, request: Request) -> Template:
        return await self._tokens_page(request)

    @post("/tokens", status_code=200)
    async def create_token(
        self, request: Request, data: URLEncodedBody[dict[str, str]]
    ) -> Template:
        require_owner(request)
        try:
            wanted = msgspec.convert({"name": data.get("name", "").strip()}, ApiTokenCreate)
        except msgspec.ValidationError:
            return await self._tokens_page(
                request,
                error=gettext(_("Give the token a name of at most 100 characters.")),
                status_code=422,
            )
        created = await services.create_api_token(principal_of(request).merchant_id, wanted.name)
        # Shown in this response only: the page is not cached and only the hash is stored.
        response = await self._tokens_page(request, created=created.token)
        response.headers["Cache-Control"] = "no-store"
        return response

    @post("/tokens/{token_id:int}/revoke", status_code=303)
    async def revoke_token(self, request: Request, token_id: FromPath[int]) -> Redirect:
        require_owner(request)
        await services.revoke_api_token(principal_of(request).merchant_id, token_id)
        return Redirect("/settings/tokens?notice=revoked", status_code=303)
