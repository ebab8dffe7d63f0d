"""The bounce webhooks' JSON at the edge: what a provider posts, and what it is answered."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

#: Events in one request at most (a provider batches; a larger batch is a 422).
MAX_EVENTS = 1000


class WebhookEvent(msgspec.Struct, kw_only=True):
    """One bounce or complaint. Fields a provider adds beyond these are ignored."""

    id: Annotated[
        str,
        msgspec.Meta(
            min_length=1,
            max_length=190,
            description="The provider's id of the event: the same id again is a duplicate.",
        ),
    ]
    type: Literal["bounce", "complaint"]
    bounce_type: Annotated[
        Literal["hard", "soft", "policy"] | None,
        msgspec.Meta(
            description="Required for a bounce. hard: the address does not exist (it is"
            " suppressed); soft: temporary (a full mailbox, a server down); policy: refused for"
            " the sender or the content (5.7.x), not for the address. Soft and policy bounces"
            " are recorded and suppress nothing."
        ),
    ] = None
    email: Annotated[
        str,
        msgspec.Meta(
            max_length=320,
            description="The recipient's address as we sent to it; the event is acted on only"
            " when it is the address of the recipient the message was for.",
        ),
    ] = ""
    message_id: Annotated[
        str,
        msgspec.Meta(
            max_length=998,
            description="The Message-ID of the message, with its brackets: <lm.…@…>.",
        ),
    ] = ""
    return_path: Annotated[
        str,
        msgspec.Meta(
            max_length=320,
            description="The message's envelope sender (the VERP return path), if reported.",
        ),
    ] = ""
    timestamp: Annotated[
        datetime | None, msgspec.Meta(description="When it happened (RFC 3339).")
    ] = None
    status: Annotated[
        str, msgspec.Meta(max_length=16, description="The enhanced status code, e.g. 5.1.1.")
    ] = ""
    diagnostic: Annotated[
        str,
        msgspec.Meta(
            max_length=2000,
            description="The receiving server's answer or the provider's explanation.",
        ),
    ] = ""


class BounceWebhook(msgspec.Struct, kw_only=True):
    events: Annotated[list[WebhookEvent], msgspec.Meta(min_length=1, max_length=MAX_EVENTS)]


class IgnoredEvent(msgspec.Struct, kw_only=True):
    #: The webhook event's id, or the address of a report's recipient ("message": the whole
    #: report).
    event: str
    #: unknown_message: names no message of ours; no_recipient: no such recipient;
    #: not_sent: the recipient was never sent the message; address_mismatch: the bounced
    #: address is not the recipient's; no_address: the report names nobody; not_a_failure:
    #: delivered, relayed or expanded, or feedback that is no complaint; not_a_report,
    #: unknown_report_type, no_recipients, unreadable: a message that is no DSN or ARF.
    reason: str


class BounceSummary(msgspec.Struct, kw_only=True):
    """What a request did. Ignored events are answered, not refused: sending them again
    would not change anything."""

    #: Events recorded now (each suppressed or not).
    processed: int
    #: Of those, hard bounces and complaints: their addresses are on the suppression list.
    suppressed: int
    #: Events recorded before (the same event id, or the same report again): nothing done.
    duplicates: int
    ignored: list[IgnoredEvent]
