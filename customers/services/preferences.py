"""The recipient's preference page: pause the newsletters for a few months, leave them, or
ask for erasure — reached from the unsubscribe page with the same signed token.

- **Pause**: unsubscribed now, with ``paused_until``; the periodic job
  :func:`end_due_pauses` subscribes the address again when the time passes, because that is
  what the recipient chose (logged "paused" with the end date, then "resumed"). Only a
  subscribed or already paused address can pause: an address that left stays out until a
  fresh opt-in, never brought back by a later click.
- **Leave**: unsubscribed for good; a pause is cancelled.
- **Ask for erasure**: leaves at once and records the request on the customer
  (``erasure_requested_at``) for the marketer, who erases from the customer's page (erasure
  deletes purchase history the shop may have to keep; that is the controller's call, and a
  link in a forwarded e-mail must not be able to delete anyone).

Every change is one conditional UPDATE, logged only when it changed the row: a repeated or
simultaneous click changes and logs nothing.
"""

from __future__ import annotations

import calendar
from datetime import datetime
from typing import Any, Literal

import msgspec

from customers import queries
from customers.schemas import ConsentAction, ConsentSource
from customers.services.customers import _insert_consent, customer_row, now, transaction
from customers.services.unsubscribe import UnsubscribePage, describe_unsubscribe
from customers.tables import Customer
from loyalmail import sql

SOURCE: ConsentSource = "preferences"
#: The pause lengths the page offers, in months (the form may send nothing else).
PAUSE_MONTHS: tuple[int, ...] = (1, 3, 6)
#: How many paused rows one statement of :func:`end_due_pauses` resumes.
RESUME_CHUNK = 1_000

#: What the page shows: subscribed, paused (until when), or gone.
State = Literal["subscribed", "paused", "unsubscribed"]


class PreferencePage(UnsubscribePage, kw_only=True):
    state: State
    paused_until: datetime | None
    erasure_requested: bool


def _months_later(moment: datetime, months: int) -> datetime:
    """The same day ``months`` later (the month's last day when it has fewer days)."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    last_day = calendar.monthrange(year, month)[1]
    return moment.replace(year=year, month=month, day=min(moment.day, last_day))


def _state(row: dict[str, Any]) -> State:
    if row["subscribed"]:
        return "subscribed"
    return "paused" if row["paused_until"] is not None else "unsubscribed"


async def describe_preferences(merchant_id: int, customer_id: int | None) -> PreferencePage:
    """Reads only. ``customer_id`` None (a test send's sample person) shows a subscribed page
    whose buttons change nothing, so the page can be tried out."""
    brand = await describe_unsubscribe(merchant_id, customer_id)
    state: State = "subscribed"
    paused_until, erasure = None, False
    if customer_id is not None:
        row = await customer_row(merchant_id, customer_id)
        state, paused_until = _state(row), row["paused_until"]
        erasure = row["erasure_requested_at"] is not None
    fields = msgspec.structs.asdict(brand)
    return PreferencePage(
        **fields, state=state, paused_until=paused_until, erasure_requested=erasure
    )


async def _log(row: dict[str, Any], action: ConsentAction, ip: str, user_agent: str) -> None:
    await _insert_consent(
        int(row["merchant"]), int(row["id"]), action, SOURCE, row["email"], ip, user_agent, ""
    )


async def pause(
    merchant_id: int, customer_id: int, months: int, *, ip: str = "", user_agent: str = ""
) -> bool:
    """Pause for ``months`` (one of :data:`PAUSE_MONTHS`) from now; a paused address may
    change its pause. Returns whether anything changed."""
    if months not in PAUSE_MONTHS:
        raise ValueError(f"a pause of {months} months is not offered")
    moment = now()
    until = _months_later(moment, months)
    async with transaction():
        row = await customer_row(merchant_id, customer_id)
        changed = (
            await Customer.update(
                {
                    Customer.subscribed: False,
                    Customer.paused_until: until,
                    Customer.unsubscribed_at: moment,
                    Customer.updated_at: moment,
                }
            )
            .where(
                (Customer.id == customer_id)
                & (Customer.merchant == merchant_id)
                & ((Customer.subscribed == True) | Customer.paused_until.is_not_null())  # noqa: E712
            )
            .returning(Customer.id)
        )
        if changed:
            await _log(row, "paused", ip, user_agent)
    return bool(changed)


async def leave(
    merchant_id: int,
    customer_id: int,
    *,
    ip: str = "",
    user_agent: str = "",
    erasure: bool = False,
) -> bool:
    """Unsubscribe for good (a pause ends without resuming); with ``erasure`` also record
    the request to be erased. Returns whether anything changed."""
    moment = now()
    values: dict[Any, Any] = {
        Customer.subscribed: False,
        Customer.paused_until: None,
        Customer.updated_at: moment,
    }
    async with transaction():
        row = await customer_row(merchant_id, customer_id)
        was_receiving = bool(row["subscribed"]) or row["paused_until"] is not None
        if row["subscribed"]:
            values[Customer.unsubscribed_at] = moment
        rule = (Customer.id == customer_id) & (Customer.merchant == merchant_id)
        if erasure and row["erasure_requested_at"] is None:
            values[Customer.erasure_requested_at] = moment
            rule = rule & Customer.erasure_requested_at.is_null()
        elif was_receiving:
            rule = rule & ((Customer.subscribed == True) | Customer.paused_until.is_not_null())  # noqa: E712
        else:
            return False
        changed = await Customer.update(values).where(rule).returning(Customer.id)
        if changed and was_receiving:
            await _log(row, "withdrawn", ip, user_agent)
    return bool(changed)


async def end_due_pauses(moment: datetime | None = None) -> int:
    """Subscribe again every address whose pause has passed (all merchants), logging
    "resumed"; an address suppressed or no longer confirmed meanwhile only loses its pause
    and stays out. Safe to run twice or on two machines at once: each row is claimed by its
    conditional UPDATE. Returns how many were subscribed again."""
    moment = moment or now()
    resumed = 0
    while True:
        async with sql.write_transaction():
            rows = await sql.fetch(queries.RESUME_DUE_PAUSES, moment, moment, RESUME_CHUNK, moment)
            for row in rows:
                await _log(row, "resumed", "", "")
        resumed += len(rows)
        if len(rows) < RESUME_CHUNK:
            break
    async with sql.write_transaction():
        await sql.execute(queries.DROP_PASSED_PAUSES, moment, moment)
    return resumed


__all__ = [
    "PAUSE_MONTHS",
    "PreferencePage",
    "State",
    "describe_preferences",
    "end_due_pauses",
    "leave",
    "pause",
]
