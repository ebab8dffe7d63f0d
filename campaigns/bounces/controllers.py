"""The bounce webhooks: providers and MTAs post bounces and complaints here.

No marketer login: the provider calls, and the signature made with the shared secret
(:mod:`campaigns.bounces.webhooks`) is its only credential. While
``LOYALMAIL_BOUNCE_WEBHOOK_SECRET`` is empty both endpoints answer 404, like the operator
API without its token: an endpoint that cannot check a signature does not exist.

The body is read raw, because the signature covers its exact bytes, and is decoded only
after the signature holds; the OpenAPI document gets its description from
:class:`_RawBodyOperation` instead of from a ``data`` parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

import msgspec
from litestar import Controller, Request, post
from litestar.connection import ASGIConnection
from litestar.exceptions import ClientException
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import Operation
from litestar.params import HeaderParameter

from campaigns.bounces import services, webhooks
from campaigns.bounces.schemas import BounceSummary, BounceWebhook
from loyalmail.errors import NotFound, ValidationFailed, _
from loyalmail.settings import get_settings

#: Media types of a raw report (the documentation's; the endpoint reads any body).
REPORT_TYPES = ("message/rfc822", "application/octet-stream")

SignatureHeader = Annotated[
    str | None,
    HeaderParameter(
        name=webhooks.HEADER,
        required=False,
        description='t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>; required '
        "(a request without it is answered 401)",
    ),
]


class WebhookError(msgspec.Struct):
    status_code: int
    detail: str
    #: Where the body is wrong (422): a JSON path and what is wrong there.
    fields: dict[str, str] | None = None


ERRORS = {
    401: ResponseSpec(WebhookError, False, "Not signed, or a signature that does not hold"),
    404: ResponseSpec(WebhookError, False, "LOYALMAIL_BOUNCE_WEBHOOK_SECRET is not set"),
    413: ResponseSpec(WebhookError, False, "The body is larger than 1 MiB"),
    422: ResponseSpec(WebhookError, False, "The body is empty, or not the format described"),
}


def _inlined(schema: Any, definitions: dict[str, Any]) -> Any:
    """msgspec's JSON schema without ``$defs`` (an OpenAPI document resolves ``#/$defs/…``
    at its own root): each reference replaced by what it names. The types do not recurse."""
    if isinstance(schema, dict):
        if "$ref" in schema:
            return _inlined(definitions[schema["$ref"].rpartition("/")[2]], definitions)
        return {key: _inlined(value, definitions) for key, value in schema.items()}
    if isinstance(schema, list):
        return [_inlined(item, definitions) for item in schema]
    return schema


def _json_schema(kind: type) -> dict[str, Any]:
    schema = msgspec.json.schema(kind)
    definitions = schema.pop("$defs", {})
    inlined: dict[str, Any] = _inlined(schema, definitions)
    return inlined


@dataclass
class _RawBodyOperation(Operation):
    #: The ``requestBody`` object of the OpenAPI document, as JSON.
    request_body_schema: ClassVar[dict[str, Any]] = {}

    def to_schema(self) -> dict[str, Any]:
        schema = super().to_schema()
        schema["requestBody"] = self.request_body_schema
        return schema


@dataclass
class _EventsOperation(_RawBodyOperation):
    request_body_schema: ClassVar[dict[str, Any]] = {
        "required": True,
        "description": "Bounce and complaint events (at most 1,000), signed.",
        "content": {"application/json": {"schema": _json_schema(BounceWebhook)}},
    }


@dataclass
class _ReportOperation(_RawBodyOperation):
    request_body_schema: ClassVar[dict[str, Any]] = {
        "required": True,
        "description": "One report as it arrived by mail (RFC 3464 DSN or RFC 5965 ARF), signed.",
        "content": {kind: {"schema": {"type": "string"}} for kind in REPORT_TYPES},
    }


async def webhooks_enabled(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    if not get_settings().bounce_webhook_secrets:
        raise NotFound(_("Bounce webhooks are not enabled on this installation."))


async def signed_body(request: Request, signature: str | None) -> bytes:
    """The body, once its signature holds."""
    try:
        body = await request.body()
    except ClientException as exc:
        if exc.status_code == 413:
            raise ClientException(
                status_code=413, detail=_("The body is larger than 1 MiB.")
            ) from exc
        raise
    webhooks.verify(get_settings().bounce_webhook_secrets, signature, body)
    if not body.strip():
        raise ValidationFailed(_("The request body is empty."), fields={"$": "empty"})
    return body


class BounceWebhookController(Controller):
    path = "/api/webhooks"
    tags = ["webhooks"]
    guards = [webhooks_enabled]
    request_max_body_size = webhooks.MAX_BODY_BYTES

    @post(
        "/bounces",
        status_code=200,
        operation_class=_EventsOperation,
        responses=ERRORS,
        summary="Bounce and complaint events from a provider",
    )
    async def bounces(self, request: Request, signature: SignatureHeader = None) -> BounceSummary:
        """A hard bounce or a complaint suppresses the address; soft and policy bounces are
        recorded. An event is matched by ``return_path`` (VERP) or ``message_id`` and acted on
        only when ``email`` is that recipient's; an event id seen before is a duplicate."""
        body = await signed_body(request, signature)
        return await services.process_webhook(webhooks.read_events(body))

    @post(
        "/dsn",
        status_code=200,
        operation_class=_ReportOperation,
        responses=ERRORS,
        summary="A bounce (DSN) or complaint (ARF) report as it arrived by mail",
    )
    async def report(self, request: Request, signature: SignatureHeader = None) -> BounceSummary:
        """For MTAs and providers that forward the report mail. Its recipient is found by the
        VERP address it was delivered to (Delivered-To / X-Original-To) or the original's
        Message-ID. A message that is no report is answered 200 with the reason: sending it
        again would not change that."""
        return await services.process_report(await signed_body(request, signature))
