"""The bounce webhooks' signature, and reading their JSON.

A provider (or an MTA forwarding reports) signs each request with the shared secret
``LOYALMAIL_BOUNCE_WEBHOOK_SECRET``, in the header

    X-Loyalmail-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>

The timestamp is signed with the body, and one older than five minutes (or as far in the
future) is refused: a captured request cannot be replayed later, and within those minutes the
event ids make a replay a duplicate. Several ``v1`` entries are allowed (a sender rotating its
secret signs with both); several secrets, comma-separated, are accepted while we rotate ours.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time

import msgspec

from campaigns.bounces.schemas import BounceWebhook
from loyalmail.errors import AuthenticationFailed, ValidationFailed, _

HEADER = "X-Loyalmail-Signature"
#: Largest body a webhook (or the CLI) reads: a report with its original message attached fits.
MAX_BODY_BYTES = 1_048_576
TOLERANCE_SECONDS = 300
_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")
_SECONDS = re.compile(r"[0-9]{1,12}")
_PATH = re.compile(r"^(?P<message>.*) - at `(?P<path>\$[^`]*)`$", re.DOTALL)


def signature(secret: str, body: bytes, timestamp: int) -> str:
    """The header value that signs ``body`` at ``timestamp``."""
    return f"t={timestamp},v1={_digest(secret, body, str(timestamp))}"


def _digest(secret: str, body: bytes, timestamp: str) -> str:
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify(secrets: list[str], header: str | None, body: bytes, now: float | None = None) -> None:
    """Nothing when one of ``secrets`` signed ``body`` within the tolerance; otherwise
    AuthenticationFailed saying what is wrong."""
    if not header or not header.strip():
        raise AuthenticationFailed(
            _("The request is not signed: send the X-Loyalmail-Signature header.")
        )
    timestamp, digests = "", []
    for item in header.split(",")[:10]:
        key, equals, value = item.strip().partition("=")
        if equals and key == "t" and _SECONDS.fullmatch(value):
            timestamp = value
        elif equals and key == "v1" and _HEX_DIGEST.fullmatch(value.lower()):
            digests.append(value.lower())
    if not timestamp or not digests:
        raise AuthenticationFailed(
            _("The signature header must read t=<unix seconds>,v1=<hex HMAC-SHA256>.")
        )
    if abs((time.time() if now is None else now) - int(timestamp)) > TOLERANCE_SECONDS:
        raise AuthenticationFailed(
            _("The signature is more than five minutes old or ahead: check the sender's clock.")
        )
    # Every comparison runs, in constant time, whichever matches.
    expected = [_digest(secret, body, timestamp) for secret in secrets]
    matches = [hmac.compare_digest(e, d) for e in expected for d in digests]
    if not any(matches):
        raise AuthenticationFailed(_("The signature does not match the request body."))


def read_events(body: bytes) -> BounceWebhook:
    """The events of a webhook body; ValidationFailed naming the offending part."""
    try:
        webhook = msgspec.json.decode(body, type=BounceWebhook)
    except msgspec.ValidationError as exc:
        found = _PATH.match(str(exc))
        path, problem = (found["path"], found["message"]) if found else ("$", str(exc))
        raise ValidationFailed(_("The request body is not valid."), fields={path: problem}) from exc
    except msgspec.DecodeError as exc:
        raise ValidationFailed(
            _("The request body is not valid JSON."), fields={"$": str(exc)}
        ) from exc
    missing = {
        f"$.events[{n}].bounce_type": "Required for a bounce: hard, soft or policy"
        for n, event in enumerate(webhook.events)
        if event.type == "bounce" and event.bounce_type is None
    }
    if missing:
        raise ValidationFailed(_("The request body is not valid."), fields=missing)
    return webhook
