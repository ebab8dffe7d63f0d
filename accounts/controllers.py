"""Login and logout pages, the merchant's brand profile and API tokens over the JSON API."""

from __future__ import annotations

import hmac
import math

from litestar import Controller, Request, delete, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody, URLEncodedBody
from litestar.response import Redirect, Template

from accounts import login_csrf, services
from accounts.login_throttle import LoginThrottle
from accounts.schemas import ApiTokenCreate, ApiTokenCreated, ApiTokenOut, Brand, MerchantOut
from loyalmail.auth import CSRF_FIELD, CSRF_HEADER, FORM_TYPES, SESSION_COOKIE, principal_of
from loyalmail.cookies import set_cookie
from loyalmail.errors import AuthenticationFailed, PermissionDenied, _
from loyalmail.i18n import gettext, ngettext
from loyalmail.settings import get_settings

FORM_EXPIRED = _(
    "The form has expired or did not come from this site. Reload the page and try again."
)


def _safe_next(target: str | None) -> str:
    # Only paths on this site: "//evil.example" and "https://…" would make an open redirect.
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def _wait_message(seconds: int) -> str:
    if seconds < 60:
        text = ngettext(
            "Too many attempts. Try again in %(num)d second.",
            "Too many attempts. Try again in %(num)d seconds.",
            seconds,
        )
        return text % {"num": seconds}
    minutes = math.ceil(seconds / 60)
    text = ngettext(
        "Too many attempts. Try again in %(num)d minute.",
        "Too many attempts. Try again in %(num)d minutes.",
        minutes,
    )
    return text % {"num": minutes}


def _login_page(
    request: Request,
    *,
    target: str,
    error: str | None = None,
    email: str = "",
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Template:
    """The form, with a fresh pre-session CSRF token (accounts.login_csrf) every time."""
    cookie_value, token = login_csrf.issue(request)
    response = Template(
        "login.html",
        context={"next": target, "error": error, "email": email, "csrf_token": token},
        status_code=status_code,
        headers={"Cache-Control": "no-store", **(headers or {})},
    )
    login_csrf.set_cookie(response, request, cookie_value)
    return response


def _client_address(request: Request) -> str:
    # The peer, or the client a trusted proxy named (loyalmail.serving): as the /r/ limits.
    return request.client.host if request.client else ""


class LoginController(Controller):
    path = "/"
    opt = {"exclude_from_auth": True}
    include_in_schema = False

    @get("/login")
    async def login_page(self, request: Request, next: FromQuery[str | None] = None) -> Template:
        return _login_page(request, target=_safe_next(next))

    @post("/login", status_code=303)
    async def login(
        self,
        request: Request,
        data: URLEncodedBody[dict[str, str]],
    ) -> Redirect | Template:
        target = _safe_next(data.get("next"))
        email = data.get("email", "")
        if not login_csrf.form_is_genuine(request, data.get(login_csrf.LOGIN_CSRF_FIELD, "")):
            return _login_page(
                request, target=target, error=gettext(FORM_EXPIRED), email=email, status_code=403
            )
        throttle: LoginThrottle = request.app.state.login_throttle
        address = _client_address(request)
        # Before the password is looked at: a throttled attempt costs no argon2 check.
        wait = math.ceil(await throttle.admit(email, address))
        if wait > 0:
            return _login_page(
                request,
                target=target,
                error=_wait_message(wait),
                email=email,
                status_code=429,
                headers={"Retry-After": str(wait)},
            )
        try:
            user = await services.authenticate(email, data.get("password", ""))
        except AuthenticationFailed as exc:
            await throttle.failed(email, address)
            return _login_page(
                request, target=target, error=gettext(exc.message), email=email, status_code=400
            )
        await throttle.succeeded(email, address)
        token, _principal = await services.start_session(user)
        response = Redirect(target, status_code=303)
        max_age = get_settings().session_days * 86400
        set_cookie(response, request, SESSION_COOKIE, token, max_age=max_age)
        response.delete_cookie(login_csrf.LOGIN_CSRF_COOKIE, path="/login")
        return response

    @post("/logout", status_code=303)
    async def logout(self, request: Request) -> Redirect:
        # Reached without the auth middleware so that a stale cookie can always be cleared;
        # a live session ends only with its CSRF token, sent from this site.
        cookie = request.cookies.get(SESSION_COOKIE, "")
        principal = await services.resolve_session(cookie)
        if principal is not None:
            sent = request.headers.get(CSRF_HEADER, "")
            if not sent and request.headers.get("content-type", "").startswith(FORM_TYPES):
                sent = str((await request.form()).get(CSRF_FIELD, ""))
            genuine = bool(sent) and hmac.compare_digest(sent, principal.csrf_token)
            if not genuine or not login_csrf.same_site_origin(request):
                raise PermissionDenied(FORM_EXPIRED)
            await services.end_session(cookie)
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
        # As the tokens page: a token's name and use tell how the shop is integrated.
        require_owner_or_token(request)
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
