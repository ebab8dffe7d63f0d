"""What other apps keep about a customer, forgotten when the customer is erased.

Apps that depend on customers (campaigns keeps frozen recipient rows with the address) may
not be imported from here, and an app writes only its own tables: each registers a step
with :func:`on_erasure` when it is loaded (its ``piccolo_app`` module, which every process
loads with ``piccolo_conf``), and ``erase_customer`` runs them all inside its transaction,
before the customer row goes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import msgspec


class ErasedCustomer(msgspec.Struct, frozen=True, kw_only=True):
    merchant_id: int
    customer_id: int
    #: The normalised address, for rows that kept the address without the customer's id.
    email_normalized: str


ErasureStep = Callable[[ErasedCustomer], Awaitable[None]]

_steps: dict[str, ErasureStep] = {}


def on_erasure(name: str, step: ErasureStep) -> None:
    """Register ``step`` under ``name`` (registering a name again replaces it: a module may be
    loaded twice in tests)."""
    _steps[name] = step


async def run_steps(erased: ErasedCustomer) -> None:
    """Every registered step, on the caller's open transaction."""
    for name in sorted(_steps):
        await _steps[name](erased)
