"""App assembly: every route, middleware and page folder is registered here, explicitly."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import msgspec
from litestar import Litestar, Request
from litestar.config.response_cache import ResponseCacheConfig
from litestar.datastructures import State
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException, ValidationException
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.params import BodyKwarg
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from litestar.types import ControllerRouterHandler

from loyalmail import database
from loyalmail.auth import PUBLIC_PATHS, AuthMiddleware
from loyalmail.errors import ValidationFailed, _
from loyalmail.http_errors import EXCEPTION_HANDLERS, document_errors
from loyalmail.openapi import DecimalSchema
from loyalmail.rate_limits import PublicRateLimit
from loyalmail.settings import Settings, get_settings

ROOT = Path(__file__).resolve().parent.parent

#: Folders of Jinja pages, one per app that has pages; searched in this order.
PAGE_DIRS = [
    ROOT / "loyalmail" / "pages",
    ROOT / "accounts" / "pages",
    ROOT / "customers" / "pages",
    ROOT / "segments" / "pages",
    ROOT / "campaigns" / "pages",
    ROOT / "tracking" / "pages",
]


def route_handlers() -> list[ControllerRouterHandler]:
    from accounts.controllers import AccountApiController, LoginController
    from accounts.domains.api import SendingDomainApiController
    from accounts.domains.page_controllers import SendingDomainPagesController
    from accounts.page_controllers import SettingsPagesController
    from campaigns.bounces.controllers import BounceWebhookController
    from campaigns.controllers import CampaignApiController
    from campaigns.deliverability_controllers import (
        DeliverabilityApiController,
        DeliverabilityPagesController,
    )
    from campaigns.page_controllers import CampaignPagesController
    from customers.controllers.api import CustomerApiController
    from customers.controllers.import_pages import ImportPagesController
    from customers.controllers.imports import ImportApiController
    from customers.controllers.optin import OptinController
    from customers.controllers.pages import CustomerPagesController
    from customers.controllers.signup import SignupController
    from customers.controllers.signup_pages import SignupPagesController
    from loyalmail.health import health
    from loyalmail.pages_controller import LanguageController, ShellPagesController
    from quota.controllers import OperatorQuotaController, QuotaApiController
    from segments.controllers import SegmentApiController
    from segments.page_controllers import SegmentPagesController
    from templates.controllers import MediaApiController, MediaFilesController
    from tracking.controllers import LinkNotFoundController, WebVersionController
    from tracking.preferences import PreferencesController
    from tracking.report_controllers import ReportApiController, ReportPagesController
    from tracking.unsubscribe import UnsubscribeController

    return [
        health,
        LoginController,
        AccountApiController,
        LanguageController,
        ShellPagesController,
        SettingsPagesController,
        SendingDomainPagesController,
        SendingDomainApiController,
        DeliverabilityPagesController,
        CustomerPagesController,
        SignupPagesController,
        ImportPagesController,
        CustomerApiController,
        OptinController,
        SignupController,
        ImportApiController,
        SegmentApiController,
        SegmentPagesController,
        CampaignApiController,
        CampaignPagesController,
        BounceWebhookController,
        DeliverabilityApiController,
        ReportApiController,
        ReportPagesController,
        QuotaApiController,
        OperatorQuotaController,
        MediaApiController,
        MediaFilesController,
        WebVersionController,
        LinkNotFoundController,
        UnsubscribeController,
        PreferencesController,
        create_static_files_router(path="/static", directories=[ROOT / "loyalmail" / "static"]),
    ]


def configure_jinja(engine: JinjaTemplateEngine) -> None:
    from loyalmail import i18n

    i18n.install(engine.engine)


async def _open_pool() -> None:
    db = database.engine()
    if database.is_postgres(db):
        await db.start_connection_pool()


async def _close_pool() -> None:
    db = database.engine()
    if database.is_postgres(db):
        await db.close_connection_pool()


async def ids_in_range(request: Request) -> None:
    """Before every handler: a path id out of the keys' range is a 404. Every number in a
    route's path is a 32-bit key (accounts, customers, segments, templates, campaigns); a
    larger one is nobody's, answered like any id that is not the caller's instead of the 500
    PostgreSQL's refusal of the query parameter would become."""
    for value in request.path_params.values():
        if isinstance(value, int) and not 0 <= value <= database.LARGEST_KEY:
            raise NotFoundException()


async def strict_json_body(request: Request) -> None:
    """Before every handler with a JSON body: the body is decoded strictly into the handler's
    Struct, so a value of the wrong JSON type is refused (422) as the schema says. Litestar
    converts bodies leniently (``0`` or ``"no"`` for false, ``"12"`` for 12), which let
    schema-violating input through (found by the fuzzer). Malformed JSON and an empty body
    are left to Litestar's own answers."""
    parameter = request.route_handler.parsed_fn_signature.parameters.get("data")
    kwarg = parameter.kwarg_definition if parameter is not None else None
    if not isinstance(kwarg, BodyKwarg) or kwarg.media_type != RequestEncodingType.JSON:
        return
    body = await request.body()
    if not body.strip():
        return
    try:
        msgspec.json.decode(body, type=parameter.annotation, strict=True)  # type: ignore[union-attr]
    except msgspec.ValidationError as exc:
        message, _, where = str(exc).partition(" - at `")
        key = where.rstrip("`").removeprefix("$").removeprefix(".")
        raise ValidationException(
            detail=message, extra=[{"message": message, "key": key, "source": "body"}]
        ) from exc
    except msgspec.DecodeError:
        return


#: A JSON string's escaped NUL (``\\u0000``), not preceded by an escaping backslash.
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
_BODY_TYPES = ("application/json", "application/x-www-form-urlencoded")


async def no_nul_characters(request: Request) -> None:
    """Before every handler: a NUL character in the query or in a JSON or form body is a 422.
    PostgreSQL cannot store one in text (a 500 otherwise, after the earlier writes of the same
    request), SQLite would keep it, and no field of ours has a use for it. Streamed uploads
    (multipart) are checked by their readers."""
    query = request.scope["query_string"]
    if b"%00" in query.lower() or b"\x00" in query:
        raise ValidationFailed(_("Text may not contain the NUL character."))
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith(_BODY_TYPES):
        return
    limit = request.route_handler.resolve_request_max_body_size()
    if limit is not None and (request.content_length or 0) > limit:
        return  # the handler refuses it with its own 413
    body = await request.body()  # kept in the scope: the handler reads it from there
    where = "$"
    if content_type.startswith("application/json"):
        if _JSON_NUL.search(body) is None:
            return
        try:
            where = _nul_path(json.loads(body), "$") or "$"
        except (ValueError, RecursionError):
            return  # not JSON: the handler's decoder answers that
    elif b"%00" not in body.lower() and b"\x00" not in body:
        return
    raise ValidationFailed(
        _("Text may not contain the NUL character."), fields={where: _("contains NUL")}
    )


def _nul_path(value: object, path: str) -> str | None:
    """Where in a decoded JSON document the first NUL character is, as ``$.a[0].b``."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, list):
        items: list[tuple[str, object]] = [(f"{path}[{n}]", v) for n, v in enumerate(value)]
    elif isinstance(value, dict):
        items = []
        for key, item in value.items():
            if "\x00" in key:
                return path
            items.append((f"{path}.{key}", item))
    else:
        return None
    for where, item in items:
        found = _nul_path(item, where)
        if found:
            return found
    return None


async def before_every_handler(request: Request) -> None:
    await ids_in_range(request)
    await no_nul_characters(request)
    await strict_json_body(request)


def create_app(settings: Settings | None = None, *, use_pool: bool = True) -> Litestar:
    settings = settings or get_settings()
    from accounts.login_throttle import login_throttle
    from loyalmail.i18n import LocaleMiddleware
    from loyalmail.recipient_pages import HeadAsGet
    from loyalmail.security_headers import SecurityHeaders
    from tracking.redirects import TrackingFastPath

    template_engine_dirs: list[Path | os.PathLike[Any] | str] = [d for d in PAGE_DIRS if d.is_dir()]
    app = Litestar(
        route_handlers=route_handlers(),
        middleware=[
            DefineMiddleware(AuthMiddleware, exclude=PUBLIC_PATHS),
            LocaleMiddleware,
        ],
        before_request=before_every_handler,
        # The login attempts' counts: per app in memory (one process), shared through Redis.
        state=State({"login_throttle": login_throttle(settings)}),
        plugins=[DecimalSchema()],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        template_config=TemplateConfig(
            directory=template_engine_dirs,
            engine=JinjaTemplateEngine,
            engine_callback=configure_jinja,
        ),
        openapi_config=OpenAPIConfig(
            title="loyalmail",
            version="0.1.0",
            path="/schema",
            render_plugins=[SwaggerRenderPlugin()],
        ),
        on_startup=[_open_pool] if use_pool else [],
        on_shutdown=[_close_pool] if use_pool else [],
        request_max_body_size=settings.max_body_bytes,
        response_cache_config=ResponseCacheConfig(),
        debug=False,
    )
    # In front of the router, not a route middleware: the rate limits cover every /r/ path
    # (a made-up one too), and the pixel and the click are answered before routing.
    # A HEAD on a recipient page is answered as its GET (loyalmail.recipient_pages).
    # Outermost: the security headers reach every answer, the rate limit's 429 too.
    app.asgi_handler = SecurityHeaders(
        PublicRateLimit(TrackingFastPath(HeadAsGet(app.asgi_handler))),
        base_url=settings.base_url,
    )
    document_errors(app)
    return app
