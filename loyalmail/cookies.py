"""The app's cookies: HttpOnly, SameSite=Lax, and Secure by one rule."""

from __future__ import annotations

from litestar import Request
from litestar.response import Response

from loyalmail.settings import get_settings


def cookies_secure(request: Request) -> bool:
    """Whether a cookie set in answer to ``request`` gets ``Secure``: always with the setting,
    and whenever the request came over HTTPS. Behind a reverse proxy the scheme is the one a
    trusted proxy named in X-Forwarded-Proto (settings.trusted_proxies, applied by
    loyalmail.serving); anybody else's header never changes it."""
    return get_settings().secure_cookies or request.url.scheme == "https"


def set_cookie(
    response: Response,
    request: Request,
    name: str,
    value: str,
    *,
    path: str = "/",
    max_age: int | None = None,
) -> None:
    response.set_cookie(
        name,
        value,
        httponly=True,
        samesite="lax",
        secure=cookies_secure(request),
        max_age=max_age,
        path=path,
    )
