"""Dramatiq actors of the campaigns app: thin, ids in, one service call, safe to run twice."""

from __future__ import annotations

import dramatiq

from loyalmail import broker

# The broker must exist before the first @dramatiq.actor, or dramatiq would make its own.
broker.setup()


@dramatiq.actor(queue_name="default", max_retries=6, min_backoff=5_000, max_backoff=300_000)
async def deliver_test_send(
    merchant_id: int,
    campaign_id: int,
    reservation_id: int,
    addresses: list[str],
    customer_id: int | None,
) -> None:
    """A test send's messages. A retry sends only to the addresses not yet resolved."""
    from campaigns.sending.test_sends import deliver_test_send as deliver

    await deliver(merchant_id, campaign_id, reservation_id, addresses, customer_id)
