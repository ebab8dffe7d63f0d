"""What the marketer's pages show of the quota: the quota page itself, the dashboard card and
the composer summary's line. The services give the figures; ``pages_text`` puts them into the
page's words."""

from __future__ import annotations

from typing import Any

from loyalmail.i18n import gettext
from loyalmail.settings import get_settings
from quota import services
from quota.pages_text import (
    KIND_LABELS,
    KIND_SIGNS,
    dashboard_hint,
    describe_test_sends,
    details,
    estimate_sentence,
    month_and_year,
    source_label,
)
from quota.schemas import HistoryEntry


def _history_row(entry: HistoryEntry) -> dict[str, Any]:
    return {
        "entry": entry,
        "label": gettext(KIND_LABELS.get(entry.kind, entry.kind)),
        "sign": KIND_SIGNS.get(entry.kind, ""),
        "source": source_label(entry),
        "details": " · ".join(part for part in (entry.purpose, details(entry)) if part),
    }


async def quota_page(merchant_id: int, before: int | None = None) -> dict[str, Any]:
    overview = await services.overview(merchant_id)
    history = await services.history(merchant_id, before=before)
    return {
        "overview": overview,
        "month": month_and_year(overview.period),
        "next_month": month_and_year(overview.forecast.period),
        "history": [_history_row(entry) for entry in history.entries],
        "next_before": history.next_before,
        "before": before,
        "buy_url": get_settings().pack_purchase_url,
        "loyalty_source": get_settings().loyalty_source,
    }


async def dashboard_card(merchant_id: int) -> dict[str, Any]:
    overview = await services.overview(merchant_id)
    return {"available": overview.available, "hint": dashboard_hint(overview)}


async def summary_quota(merchant_id: int, units: int | None) -> dict[str, Any]:
    """The composer summary's quota lines. ``units`` None: no target group yet, so there is
    nothing to estimate (the test sends are shown all the same)."""
    overview = await services.overview(merchant_id)
    # What the overview holds is what a send may draw on, in draw order: no second look.
    sources = ([overview.allowance] if overview.allowance else []) + overview.packs
    estimate = services.estimate_from(sources, units) if units is not None else None
    return {
        "estimate": estimate,
        "sentence": estimate_sentence(estimate) if estimate is not None else "",
        "test_sends": describe_test_sends(overview.test_sends),
        "buy_url": get_settings().pack_purchase_url,
    }
