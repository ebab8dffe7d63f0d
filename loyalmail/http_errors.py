"""The one place that maps errors to HTTP: JSON for the API, a readable page for browsers."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

import msgspec
from litestar import Litestar, MediaType, Request, Response
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    ValidationException,
)
from litestar.openapi import ResponseSpec
from litestar.response import Redirect, Template
from litestar.routes import HTTPRoute
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from python_multipart.exceptions import FormParserError

from loyalmail.errors import LoyalmailError

log = logging.getLogger("loyalmail")


def _wants_json(request: Request) -> bool:
    path = request.url.path
    if path.startswith("/api/") or path == "/health":
        return True
    return "text/html" not in request.headers.get("accept", "") and not request.headers.get(
        "hx-request"
    )


def _error_response(
    request: Request,
    status: int,
    message: str,
    fields: dict[str, str] | None = None,
    extra: object = None,
) -> Response:
    if _wants_json(request):
        body: dict[str, object] = {"status_code": status, "detail": message}
        if fields:
            body["fields"] = fields
        if extra is not None:
            body["extra"] = extra
        return Response(body, status_code=status, media_type=MediaType.JSON)
    return Template(
        "error.html",
        context={"status_code": status, "message": message, "fields": fields or {}},
        status_code=status,
    )


def domain_error(request: Request, exc: LoyalmailError) -> Response:
    return _error_response(request, exc.status_hint, exc.message, exc.fields, exc.extra)


def _json_path(key: str) -> str:
    # Litestar names the body parameter itself "data"; anything deeper is a path inside it.
    return "$" if key in ("", "data") else f"$.{key}"


def http_error(request: Request, exc: HTTPException) -> Response:
    if isinstance(exc, NotAuthorizedException) and not _wants_json(request):
        target = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
        if request.headers.get("hx-request"):
            return Response("", status_code=401, headers={"HX-Redirect": f"/login?next={target}"})
        return Redirect(f"/login?next={target}")
    if isinstance(exc, ValidationException):
        problems = [e for e in exc.extra or [] if isinstance(e, dict) and e.get("source") == "body"]
        if problems:
            # Well-formed JSON of the wrong shape: unprocessable, with the path of each problem
            # in ``fields`` the way domain errors name theirs. Malformed JSON stays a 400.
            fields = {_json_path(str(e.get("key", ""))): str(e.get("message")) for e in problems}
            return _error_response(
                request, 422, "The request body is not valid.", fields=fields, extra=exc.extra
            )
        return _error_response(
            request, exc.status_code, "The request is not valid.", extra=exc.extra
        )
    if isinstance(exc, NotFoundException):
        return _error_response(request, 404, "Not found.")
    return _error_response(request, exc.status_code, str(exc.detail))


def too_deep(request: Request, exc: RecursionError) -> Response:
    # msgspec stops decoding a body nested deeper than the interpreter can follow; that is the
    # caller's input (a definition of thousands of nested groups), not our failure.
    return _error_response(request, 422, "The request is nested too deeply.")


def not_utf8(request: Request, exc: UnicodeDecodeError) -> Response:
    # A JSON body must be UTF-8 (RFC 8259); litestar's decoder lets the error escape.
    return _error_response(request, 400, "The request body is not valid UTF-8.")


def unreadable_form(request: Request, exc: FormParserError) -> Response:
    # python-multipart's refusal of a body it cannot parse (a 5 MB part header, a broken
    # boundary) wherever a handler parses one: the caller's input, not our failure.
    return _error_response(request, 400, "The form data could not be read.")


def unexpected_error(request: Request, exc: Exception) -> Response:
    # Logged with the traceback for the operator; the caller sees a plain sentence only.
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return _error_response(
        request, HTTP_500_INTERNAL_SERVER_ERROR, "Something went wrong on our side."
    )


EXCEPTION_HANDLERS = {
    LoyalmailError: domain_error,
    HTTPException: http_error,
    RecursionError: too_deep,
    UnicodeDecodeError: not_utf8,
    FormParserError: unreadable_form,
    Exception: unexpected_error,
}


class ApiError(msgspec.Struct, omit_defaults=True):
    """The body of every error the JSON API answers (built by :func:`_error_response`)."""

    status_code: int
    detail: str
    #: Where the input was wrong: a body's JSON path (``$.email``) or a field's name.
    fields: dict[str, str] = msgspec.field(default_factory=dict)
    #: Structured detail: a quota refusal's figures, the decoder's list of problems.
    extra: Any = None


UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _error_spec(description: str) -> ResponseSpec:
    return ResponseSpec(ApiError, generate_examples=False, description=description)


def document_errors(app: Litestar) -> None:
    """Declare in the OpenAPI schema the answers this map gives to the JSON API's handlers,
    so that a client (and the fuzzer) can rely on them: 401 without valid credentials, 404
    for an id that is not the caller's, 413 for a body past the limit, 409 and 403 for what
    a state or a role forbids, 422 for input that breaks a rule."""
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or not route.path.startswith("/api/"):
            continue
        for handler in route.route_handlers:
            if not handler.include_in_schema or any(
                code >= 400 for code in (handler.responses or {})
            ):
                continue  # not shown, or a handler that documents its own errors (webhooks)
            methods = set(handler.http_methods)
            specs = {
                401: _error_spec("No API token, or one that is not valid"),
                422: _error_spec("Input that breaks a rule; ``fields`` says where"),
            }
            if route.path_parameters or methods & UNSAFE_METHODS:
                specs[404] = _error_spec("Not found, or another merchant's")
            if methods & UNSAFE_METHODS:
                specs[403] = _error_spec("The caller's role may not do this")
                specs[409] = _error_spec("The object's state (or the quota) does not allow it")
                specs[413] = _error_spec("The request body is too large")
            handler.responses = {**specs, **(handler.responses or {})}
