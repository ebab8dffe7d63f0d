"""Dramatiq actors of the quota app: thin, one service call, safe to run twice."""

from __future__ import annotations

import dramatiq

from loyalmail import broker

# The broker must exist before the first @dramatiq.actor, or dramatiq would make its own.
broker.setup()


@dramatiq.actor(queue_name="default", max_retries=3, min_backoff=5_000, max_backoff=120_000)
async def monthly_quota_job() -> None:
    """Grant every merchant's month and expire what is over. The scheduler sends it every few
    minutes, so a month is granted soon after it begins in any time zone; any number of
    copies may run at once (every grant and expiry is keyed)."""
    from quota.services import run_monthly_job

    await run_monthly_job()
