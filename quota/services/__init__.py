"""Quota services: where units come from (grants), how sends use them (ledger), and what the
marketer sees (overview). They know nothing of HTTP."""

from quota.services.common import PACK_SIZE, TEST_SENDS_PER_MONTH, Month
from quota.services.grants import (
    buy_pack,
    ensure_current,
    expire_sources,
    grant_allowance,
    grant_test_sends,
    run_monthly_job,
)
from quota.services.ledger import (
    get_reservation,
    release,
    release_rest,
    release_rest_in_transaction,
    reservation_by_key,
    reserve,
    reserve_in_transaction,
    resolve_in_transaction,
    spend,
    unresolved,
)
from quota.services.overview import estimate, estimate_from, history, overview

__all__ = [
    "PACK_SIZE",
    "TEST_SENDS_PER_MONTH",
    "Month",
    "buy_pack",
    "ensure_current",
    "estimate",
    "estimate_from",
    "expire_sources",
    "get_reservation",
    "grant_allowance",
    "grant_test_sends",
    "history",
    "overview",
    "release",
    "release_rest",
    "release_rest_in_transaction",
    "reservation_by_key",
    "reserve",
    "reserve_in_transaction",
    "resolve_in_transaction",
    "run_monthly_job",
    "spend",
    "unresolved",
]
