"""Login and logout pages, the merchant's brand profile and API tokens over the JSON API."""

from __future__ import annotations

from litestar import Controller, Request, delete, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody, URLEncodedBody
from litestar.response import Redirect, Template

from accounts import services
from accounts.schemas import ApiTokenCreate, ApiTokenCreated, ApiTokenOut, Brand, MerchantOut
from loyalmail.auth import SESSION_COOKIE, principal_of
from loyalmail.errors import AuthenticationFailed, PermissionDenied, _
from loyalmail.settings import get_settings


def _safe_next(target: str | None) -> str:
    # Only paths on this site: "//evil.example" and "https://…" would make an open redirect.
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


class LoginController(Controller):
    path = "/"
    opt = {"exclude_from_auth": True}
    include_in_schema = False

    @get("/login")
    async def login_page(self, next: FromQuery[str | None] = None) -> Template:
        return Template("login.html", context={"next": _safe_next(next), "error": None})

    @post("/login", status_code=303)
    async def login(
        self,
        data: URLEncodedBody[dict[str, str]],
    ) -> Redirect | Template:
        target = _safe_next(data.get("next"))
        try:
            user = await services.authenticate(data.get("email", ""), data.get("password", ""))
        except AuthenticationFailed as exc:
            return Template(
                "login.html",
                context={"next": target, "error": exc.message, "email": data.get("email", "")},
                status_code=400,
            )
        token, _principal = await services.start_session(user)
        response = Redirect(target, status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            token,
            httponly=True,
            samesite="lax",
            secure=get_settings().secure_cookies,
            max_age=get_settings().session_days * 86400,
            path="/",
        )
        return response

    @post("/logout", status_code=303)
    async def logout(self, request: Request) -> Redirect:
        # Reached without auth so that a stale cookie can always be cleared.
        await services.end_session(request.cookies.get(SESSION_COOKIE, ""))
        response = Redirect("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response


class AccountApiController(Controller):
    path = "/api"
    tags = ["account"]

    @get("/merchant")
    async def get_merchant(self, request: Request) -> MerchantOut:
        return await services.get_merchant(principal_of(request).merchant_id)

    @put("/merchant")
    async def update_merchant(self, request: Request, data: JSONBody[Brand]) -> MerchantOut:
        principal = principal_of(request)
        require_owner_or_token(request)
        return await services.update_brand(principal.merchant_id, data)

    @get("/tokens")
    async def list_tokens(self, request: Request) -> list[ApiTokenOut]:
        return await services.list_api_tokens(principal_of(request).merchant_id)

    @post("/tokens")
    async def create_token(
        self, request: Request, data: JSONBody[ApiTokenCreate]
    ) -> ApiTokenCreated:
        require_owner_or_token(request)
        return await services.create_api_token(principal_of(request).merchant_id, data.name)

    @delete("/tokens/{token_id:int}")
    async def revoke_token(self, request: Request, token_id: FromPath[int]) -> None:
        require_owner_or_token(request)
        await services.revoke_api_token(principal_of(request).merchant_id, token_id)


def require_owner_or_token(request: Request) -> None:
    principal = principal_of(request)
    if principal.via == "session" and principal.role != "owner":
        raise PermissionDenied(_("Only the shop's owner may change this."))
