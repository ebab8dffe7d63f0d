"""Dramatiq actors of the accounts app: thin, one service call, safe to run twice."""

from __future__ import annotations

import dramatiq

from loyalmail import broker

# The broker must exist before the first @dramatiq.actor, or dramatiq would make its own.
broker.setup()


@dramatiq.actor(queue_name="default", max_retries=0)
async def recheck_sending_domains() -> None:
    """The scheduler tick: check the sending domains whose last check is old. Two copies at
    once record the same findings."""
    from accounts.domains import recheck_due

    await recheck_due()
