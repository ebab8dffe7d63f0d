"""Who is loyal, who may say so, and how many loyal customers count for the quota.

The quota's monthly allowance is 2 × the loyal customers at the end of the previous month
(PRODUCT.md §5), so the loyal type is worth money. Two rules keep it from being inflated:

* **Who may set it** is the operator's choice (``LOYALMAIL_LOYALTY_SOURCE``). ``merchant``:
  the merchant's pages, API and imports set any type, but only loyal customers whose address
  the recipient confirmed (the opt-in link; ``customer.confirmed_by_recipient``) count, so
  labelling made-up addresses loyal gains nothing. ``operator``: only the operator API (the
  loyalty programme's integration) makes a customer loyal or takes it back; the merchant's
  attempts are refused, and every loyal customer counts.
* **When it counts**: database triggers write every change of the count, with the customer
  row's time, into ``loyalty_tally`` (customers migration 2026-12-07T21:01). The count at an
  instant is the sum of the rows before it: exact at any past month end, however late the
  monthly job runs, and a single index range read on either engine.

Every type change is also kept in the customer's own history (``customer_type_change``),
with who made it, shown on the customer's page.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from customers.schemas import (
    ConsentSource,
    CustomerType,
    OperatorTypeResult,
    TypeChangeOut,
    normalize_email,
)
from customers.tables import Customer, CustomerTypeChange
from loyalmail import database, sql
from loyalmail.errors import NotFound, PermissionDenied, _
from loyalmail.settings import get_settings

#: How a type change arrived, as the customer's history names it.
ChangeVia = Literal["page", "api", "import", "signup", "operator"]

_VIA_OF_SOURCE: dict[str, ChangeVia] = {
    "marketer": "page",
    "api": "api",
    "import": "import",
    "form": "signup",
    "qr": "signup",
}

#: The count of loyal customers at an instant: every change before it. The column is the
#: loyalty mode's (``loyal`` or ``confirmed_loyal``, never user input).
_COUNT_BEFORE = (
    "SELECT COALESCE(SUM({column}), 0) AS counted FROM loyalty_tally"
    " WHERE merchant = ? AND changed_at < ?"
)
_COUNT_ALL = "SELECT COALESCE(SUM({column}), 0) AS counted FROM loyalty_tally WHERE merchant = ?"

#: Folding: the rows before an instant become one with their sums and latest time, so the
#: count at that instant or later stays what it was and the sum reads one row for them.
#: PostgreSQL in one statement (a row committed meanwhile is either deleted and summed or
#: left alone); SQLite holds the database's write lock for the three.
_FOLD_POSTGRES = """
WITH gone AS (
  DELETE FROM loyalty_tally WHERE merchant = ? AND changed_at < ?
  RETURNING changed_at, loyal, confirmed_loyal
)
INSERT INTO loyalty_tally (merchant, changed_at, loyal, confirmed_loyal)
SELECT ?, MAX(changed_at), SUM(loyal), SUM(confirmed_loyal) FROM gone HAVING COUNT(*) > 0
"""
_FOLDABLE = (
    "SELECT COUNT(*) AS n, MAX(changed_at) AS last, SUM(loyal) AS loyal,"
    " SUM(confirmed_loyal) AS confirmed FROM loyalty_tally WHERE merchant = ? AND changed_at < ?"
)
_DELETE_BEFORE = "DELETE FROM loyalty_tally WHERE merchant = ? AND changed_at < ?"
_INSERT_TALLY = (
    "INSERT INTO loyalty_tally (merchant, changed_at, loyal, confirmed_loyal) VALUES (?, ?, ?, ?)"
)

INSERT_TYPE_CHANGE = (
    'INSERT INTO customer_type_change ("merchant", "customer", "old_type", "new_type", "via",'
    ' "actor", "created_at") VALUES (?, ?, ?, ?, ?, ?, ?)'
)


def via_of(source: ConsentSource | str) -> ChangeVia:
    return _VIA_OF_SOURCE.get(source, "api")


def operator_decides() -> bool:
    """True when only the operator sets ``loyal`` (``LOYALMAIL_LOYALTY_SOURCE=operator``)."""
    return get_settings().loyalty_source == "operator"


def touches_loyalty(old_type: str, new_type: str) -> bool:
    """The change makes a customer loyal or takes the loyal type away."""
    return (old_type == "loyal") != (new_type == "loyal")


def refusal_message() -> str:
    return _(
        "Loyal customers come from the loyalty programme: only its operator can make a customer"
        " loyal or take that away."
    )


def check_merchant_may_set(old_type: str, new_type: str) -> None:
    """A merchant's change of type (page, API): refused when the operator decides loyalty
    and the change touches it. Other changes (member ↔ non-member) stay the merchant's."""
    if operator_decides() and touches_loyalty(old_type, new_type):
        raise PermissionDenied(
            refusal_message(), fields={"customer_type": _("set by the loyalty programme")}
        )


async def counted_loyal(merchant_id: int, at: datetime | None = None) -> int:
    """Loyal customers that count for the quota's allowance in the configured mode: at the
    instant ``at`` (changes before it), or now. Runs on its own read transaction unless the
    caller has one open."""
    column = "loyal" if operator_decides() else "confirmed_loyal"
    statement = (_COUNT_ALL if at is None else _COUNT_BEFORE).format(column=column)
    args: tuple[object, ...] = (merchant_id,) if at is None else (merchant_id, at)
    async with sql.read_transaction():
        rows = await sql.fetch(statement, *args)
    return int(rows[0]["counted"])


async def fold_tally(merchant_id: int, before: datetime) -> None:
    """Fold the merchant's tally rows before ``before`` into one. Only counts at ``before`` or
    later are asked for once a month is granted (the quota folds at that month's start), so
    the sums read stay one month of changes long, however many customers came before."""

    async def attempt() -> None:
        async with sql.write_transaction():
            if database.is_postgres(database.engine()):
                # Nothing to gain from rewriting a single row.
                rows = await sql.fetch(_FOLDABLE, merchant_id, before)
                if int(rows[0]["n"]) > 1:
                    await sql.execute(_FOLD_POSTGRES, merchant_id, before, merchant_id)
                return
            rows = await sql.fetch(_FOLDABLE, merchant_id, before)
            found = rows[0]
            if int(found["n"]) <= 1:
                return
            await sql.execute(_DELETE_BEFORE, merchant_id, before)
            await sql.execute(
                _INSERT_TALLY,
                merchant_id,
                found["last"],
                int(found["loyal"]),
                int(found["confirmed"]),
            )

    await sql.with_retries(attempt)


async def record_type_change(
    merchant_id: int,
    customer_id: int,
    old_type: str,
    new_type: str,
    *,
    via: ChangeVia,
    actor: str,
    moment: datetime,
) -> None:
    """Append to the customer's type history, on the caller's open transaction."""
    if old_type == new_type:
        return
    await CustomerTypeChange.insert(
        CustomerTypeChange(
            merchant=merchant_id,
            customer=customer_id,
            old_type=old_type,
            new_type=new_type,
            via=via,
            actor=actor[:254],
            created_at=moment,
        )
    )


async def type_history(merchant_id: int, customer_id: int) -> list[TypeChangeOut]:
    """The customer's type changes, newest first."""
    rows = (
        await CustomerTypeChange.select()
        .where(
            (CustomerTypeChange.merchant == merchant_id)
            & (CustomerTypeChange.customer == customer_id)
        )
        .order_by(CustomerTypeChange.created_at, ascending=False)
        .order_by(CustomerTypeChange.id, ascending=False)
    )
    return [
        TypeChangeOut(
            old_type=row["old_type"],
            new_type=row["new_type"],
            via=row["via"],
            actor=row["actor"],
            changed_at=row["created_at"],
        )
        for row in rows
    ]


async def set_type_by_operator(
    merchant_id: int,
    email: str,
    customer_type: CustomerType,
    *,
    actor: str = "operator",
    now: datetime | None = None,
) -> OperatorTypeResult:
    """The loyalty programme says what a customer of the merchant is (the operator API).
    Setting the type a customer has already changes nothing; an unknown address is NotFound."""
    _cleaned, key = normalize_email(email)
    moment = (now or datetime.now(UTC)).astimezone(UTC)

    async def attempt() -> OperatorTypeResult:
        async with sql.write_transaction():
            row = (
                await Customer.select(Customer.id, Customer.customer_type)
                .where((Customer.merchant == merchant_id) & (Customer.email_normalized == key))
                .first()
            )
            if row is None:
                raise NotFound(_("The merchant has no customer with this address."))
            customer_id, old_type = int(row["id"]), str(row["customer_type"])
            if old_type == customer_type:
                return OperatorTypeResult(
                    customer_id=customer_id, customer_type=customer_type, changed=False
                )
            # Conditional on the type just read: a change in between makes it try again.
            updated = (
                await Customer.update(
                    {Customer.customer_type: customer_type, Customer.updated_at: moment}
                )
                .where(
                    (Customer.id == customer_id)
                    & (Customer.merchant == merchant_id)
                    & (Customer.customer_type == old_type)
                )
                .returning(Customer.id)
            )
            if not updated:
                raise sql.Retry()
            await record_type_change(
                merchant_id,
                customer_id,
                old_type,
                customer_type,
                via="operator",
                actor=actor,
                moment=moment,
            )
            return OperatorTypeResult(
                customer_id=customer_id, customer_type=customer_type, changed=True
            )

    return await sql.with_retries(attempt)
