"""The predefined target groups of PRODUCT §2, as SQL conditions on the merchant's calendar.

All of them are further limited to eligible addresses (verified, subscribed, not suppressed)
by :data:`segments.queries.ELIGIBLE`, like every group. The calendar rules are in
:mod:`segments.calendar`.
"""

from __future__ import annotations

from dataclasses import dataclass

from loyalmail.errors import _
from segments import calendar
from segments.compiler import Context, Sql, birthday_window, in_list
from segments.schemas import PREDEFINED_KEYS, PredefinedKey

#: "Lost": bought before, but nothing in this many months.
LOST_AFTER_MONTHS = 8


@dataclass(frozen=True)
class Predefined:
    key: PredefinedKey
    name: str
    description: str


PREDEFINED: dict[PredefinedKey, Predefined] = {
    group.key: group
    for group in (
        Predefined(
            "first_purchase",
            _("First purchase"),
            _("Customers whose first purchase was in the previous calendar month."),
        ),
        Predefined(
            "lost_customers",
            _("Lost customers"),
            _("Customers who bought before, but nothing in the last eight months."),
        ),
        Predefined("all_customers", _("All customers"), _("Every customer who may be mailed.")),
        Predefined(
            "network_members",
            _("All network members"),
            _("Loyal customers and members of the loyalty network."),
        ),
        Predefined("non_members", _("All non-members"), _("Customers without a membership.")),
        Predefined(
            "birthdays",
            _("Birthdays"),
            _("Customers whose birthday is in the next four weeks."),
        ),
    )
}
assert tuple(PREDEFINED) == PREDEFINED_KEYS


def predefined_condition(key: PredefinedKey, ctx: Context) -> Sql:
    today = ctx.today
    if key == "first_purchase":
        start = ctx.day_start(calendar.previous_month_start(today))
        end = ctx.day_start(calendar.month_start(today))
        return Sql(
            "(c.first_purchase_at IS NOT NULL AND c.first_purchase_at >= {}"
            " AND c.first_purchase_at < {})",
            [start, end],
        )
    if key == "lost_customers":
        cutoff = ctx.day_start(calendar.months_back(today, LOST_AFTER_MONTHS))
        return Sql("(c.last_purchase_at IS NOT NULL AND c.last_purchase_at < {})", [cutoff])
    if key == "all_customers":
        return Sql("(1 = 1)")
    if key == "network_members":
        return in_list("c.customer_type", ["loyal", "member"])
    if key == "non_members":
        return in_list("c.customer_type", ["non_member"])
    if key == "birthdays":
        return birthday_window(ctx)
    raise ValueError(f"unknown predefined group {key!r}")
