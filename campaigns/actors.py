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


@dramatiq.actor(queue_name="sending", max_retries=3, min_backoff=2_000, max_backoff=60_000)
async def send_batch(campaign_id: int, batch_id: int) -> None:
    """One batch of a running send. Running it twice (a redelivery, the reconciler) sends
    nothing twice: recipients are claimed with a lease."""
    from campaigns.sending.deliver import send_batch as deliver

    await deliver(campaign_id, batch_id)


@dramatiq.actor(queue_name="default", max_retries=0)
async def start_due_campaigns() -> None:
    """The scheduler tick: start the scheduled campaigns whose time has come."""
    from campaigns.sending.dispatch import start_due_campaigns as start

    await start()


@dramatiq.actor(queue_name="default", max_retries=0)
async def reconcile_sends() -> None:
    """The safety net under Redis: hand out lost batches again, finish what is done."""
    from campaigns.sending.control import reconcile

    await reconcile()
