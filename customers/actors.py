"""Dramatiq actors of the customers app: thin, ids in, one service call, safe to run twice."""

from __future__ import annotations

from typing import Any

import dramatiq

from loyalmail import broker

# The broker must exist before the first @dramatiq.actor, or dramatiq would make its own.
broker.setup()


@dramatiq.actor(queue_name="default", max_retries=8, min_backoff=5_000, max_backoff=600_000)
async def send_optin_email(customer_id: int) -> None:
    """The double opt-in e-mail for the customer's latest request. Temporary SMTP failures
    raise and are retried with back-off; a repeated delivery of the message sends nothing."""
    from customers.services.consent import send_optin_message

    await send_optin_message(customer_id)


#: An import of a few hundred thousand rows may take many minutes on a small machine.
IMPORT_TIME_LIMIT_MS = 4 * 60 * 60 * 1000


#: Both import actors: a crash (database down) is retried a few times with backoff.
IMPORT_ACTOR_OPTIONS: dict[str, Any] = {
    "queue_name": "imports",
    "max_retries": 3,
    "min_backoff": 2_000,
    "max_backoff": 60_000,
    "time_limit": IMPORT_TIME_LIMIT_MS,
}


@dramatiq.actor(**IMPORT_ACTOR_OPTIONS)
async def preview_import(merchant_id: int, job_id: int) -> None:
    """The dry run of an uploaded file. Unreadable files fail the job with a message; a crash
    (database down) raises and is retried, and the retry starts the preview over."""
    from customers.services.imports import preview

    await preview(merchant_id, job_id)


@dramatiq.actor(**IMPORT_ACTOR_OPTIONS)
async def apply_import(merchant_id: int, job_id: int) -> None:
    """Write a previewed import; a retry resumes after the last committed batch."""
    from customers.services.imports import apply

    await apply(merchant_id, job_id)


@dramatiq.actor(queue_name="default", max_retries=3, min_backoff=5_000, max_backoff=60_000)
async def end_due_pauses() -> None:
    """Periodic: subscribe again the recipients whose chosen pause has passed."""
    from customers.services.preferences import end_due_pauses as end_pauses

    await end_pauses()
