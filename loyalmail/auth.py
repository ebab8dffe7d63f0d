"""Who is calling: a Bearer API token or a browser session cookie (with a CSRF check)."""

from __future__ import annotations

import hmac
from typing import Any

from litestar.connection import ASGIConnection, Request
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.middleware._utils import should_bypass_middleware  # the base class's own check
from litestar.types import Receive, Scope, Send

from accounts import services as accounts
from accounts.schemas import Principal
from loyalmail.form_token import form_field
from loyalmail.settings import get_settings

SESSION_COOKIE = "lm_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "_csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")

#: Paths without a merchant's credentials: health checks, static files, login, the recipients'
#: pages and the newsletter images their mail clients load.
#: The operator API checks its own token (quota.controllers.operator_guard), the bounce
#: webhooks their provider's signature (campaigns.bounces.controllers).
PUBLIC_PATHS = [
    "^/health",
    "^/static/",
    "^/login",
    "^/schema",
    "^/r/",
    "^/media/",
    "^/api/operator/",
    "^/api/webhooks/",
]


class AuthMiddleware(AbstractAuthenticationMiddleware):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The base class builds the connection from the scope alone, so the CSRF check of a
        # plain form post (no JavaScript, no header) could not read the ``_csrf`` field from
        # the body. Same logic, with ``receive``: the check reads as little of the body as it
        # must and hands the handler a ``receive`` that replays those bytes first.
        if not should_bypass_middleware(
            exclude_http_methods=self.exclude_http_methods,
            exclude_opt_key=self.exclude_opt_key,
            exclude_path_pattern=self.exclude,
            scope=scope,
            scopes=self.scopes,
        ):
            connection: ASGIConnection[Any, Any, Any, Any] = ASGIConnection(scope, receive)
            result = await self.authenticate_request(connection)
            principal = result.user
            if principal.via == "session" and scope.get("method", "GET") not in SAFE_METHODS:
                receive = await _check_csrf(connection, principal)
            scope["user"] = principal
            scope["auth"] = result.auth
        await self.app(scope, receive, send)

    async def authenticate_request(self, connection: ASGIConnection) -> AuthenticationResult:
        authorization = connection.headers.get("authorization", "")
        if authorization:
            scheme, _, credential = authorization.partition(" ")
            principal = None
            if scheme.lower() == "bearer":
                principal = await accounts.resolve_api_token(credential.strip())
            if principal is None:
                raise NotAuthorizedException("Invalid API token.")
            return AuthenticationResult(user=principal, auth=None)

        principal = await accounts.resolve_session(connection.cookies.get(SESSION_COOKIE, ""))
        if principal is None:
            raise NotAuthorizedException("Please log in.")
        return AuthenticationResult(user=principal, auth=None)


async def _check_csrf(connection: ASGIConnection, principal: Principal) -> Receive:
    """Refuse an unsafe request of a session without its token; the ``receive`` to go on
    with. Cookies ride along with cross-site requests; the token does not. Bearer tokens need
    no such check because a browser never attaches them by itself. A form's token is read
    without buffering an upload (:mod:`loyalmail.form_token`)."""
    sent = connection.headers.get(CSRF_HEADER, "")
    receive = connection.receive
    if not sent:
        sent, receive = await form_field(
            connection.headers.get("content-type", ""),
            receive,
            CSRF_FIELD,
            urlencoded_limit=get_settings().max_body_bytes,
        )
    # As bytes: compare_digest refuses a str with a non-ASCII character (a 500 before).
    if not sent or not hmac.compare_digest(sent.encode(), principal.csrf_token.encode()):
        raise PermissionDeniedException(
            "The form has expired or did not come from this site. Reload the page and try again."
        )
    return receive


def principal_of(request: Request) -> Principal:
    user = request.user
    assert isinstance(user, Principal)
    return user
