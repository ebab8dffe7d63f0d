"""The login form's protection against cross-site posts (issue 21: a ``POST /login`` from
another site logged the browser into the sender's account, a cross-site ``POST /logout``
ended the session).

Before a login there is no session to hold a CSRF token, so the form carries a pre-session
one: ``GET /login`` gives the browser a random value in a cookie and puts that value,
signed and dated, into the form. A post counts only when the signed value is fresh, is the
one in the cookie (another site can get a signed value of its own, but cannot set this
site's cookie), and when the Origin (or, without one, the Referer) names this site. A post
without either header is judged by the token alone (some privacy settings strip both).
"""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from litestar import Request
from litestar.response import Response

from loyalmail import cookies
from loyalmail.security import load_signed, new_token, signer
from loyalmail.settings import get_settings

LOGIN_CSRF_COOKIE = "lm_login_csrf"
#: The form's field, the same name as the session forms' (loyalmail.auth.CSRF_FIELD).
LOGIN_CSRF_FIELD = "_csrf"
_PURPOSE = "login-form"
#: A login page left open longer than this is answered with a fresh form.
FORM_MAX_AGE_SECONDS = 4 * 3600


def _browser_value(request: Request) -> str:
    value = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    # Kept across page loads, so that two open login tabs both work.
    return value if 16 <= len(value) <= 64 and value.isascii() else new_token(24)


def issue(request: Request) -> tuple[str, str]:
    """(the cookie's value, the form's token) for a login form shown now."""
    value = _browser_value(request)
    return value, signer(_PURPOSE).dumps(value)


def set_cookie(response: Response, request: Request, value: str) -> None:
    cookies.set_cookie(response, request, LOGIN_CSRF_COOKIE, value, path="/login")


def same_site_origin(request: Request) -> bool:
    """False when the Origin header (or, without one, the Referer) names another site than
    the one the request was sent to (its Host) or the installation's base URL."""
    origin = request.headers.get("origin")
    if origin is None:
        origin = request.headers.get("referer")
        if not origin:
            return True
    # "null" (a sandboxed frame, a redirect across sites) has no host: another site.
    claimed = urlsplit(origin).netloc.lower()
    ours = {
        request.headers.get("host", "").lower(),
        urlsplit(get_settings().base_url).netloc.lower(),
    }
    return bool(claimed) and claimed in ours


def form_is_genuine(request: Request, sent_token: str) -> bool:
    value = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    signed = load_signed(_PURPOSE, sent_token, FORM_MAX_AGE_SECONDS) if sent_token else None
    return (
        same_site_origin(request)
        and isinstance(signed, str)
        and bool(value)
        and hmac.compare_digest(signed, value)
    )
