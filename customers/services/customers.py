"""The customer list: create, read, update, search, stream, erase. Knows nothing of HTTP.

Every function takes the merchant explicitly; another merchant's customer is NotFound.

Who receives newsletters: only customers whose ``email_status`` is ``"verified"`` (a
confirmed double opt-in) and who are ``subscribed``. ``"unverified"`` (never asked) and
``"pending"`` (asked, not yet confirmed) addresses never count as newsletter recipients.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

import msgspec
from babel.numbers import get_currency_precision
from piccolo.columns.combination import WhereRaw
from piccolo.engine.sqlite import SQLiteEngine, TransactionType
from piccolo.query import Select

from accounts import services as accounts
from accounts.schemas import MerchantOut
from customers import queries
from customers.schemas import (
    ConsentSource,
    CustomerCreate,
    CustomerOut,
    CustomerPage,
    CustomerQuery,
    CustomerUpdate,
    normalize_email,
)
from customers.services import erasure_steps, loyalty
from customers.services.suppression import is_suppressed, suppress
from customers.tables import ConsentEvent, Customer, CustomerTypeChange, ImportIssue, Purchase
from loyalmail import sql
from loyalmail.errors import Conflict, NotFound, Suppressed, ValidationFailed, _

log = logging.getLogger("loyalmail.customers")

#: Bump when the wording a customer agrees to (opt-in e-mail and page) changes; it is written
#: into every consent event so each consent can be traced to the text that was shown.
OPTIN_WORDING_VERSION = "optin-2026-1"


def now() -> datetime:
    return datetime.now(UTC)


def transaction() -> Any:
    """A write transaction on the tables' engine. SQLite: BEGIN IMMEDIATE takes the write lock
    up front, so a read-then-write transaction never fails halfway with "database is locked"."""
    db = Customer._meta.db
    if isinstance(db, SQLiteEngine):
        return db.transaction(transaction_type=TransactionType.immediate)
    return db.transaction()


# --- money -------------------------------------------------------------------------------


def currency_exponent(currency: str) -> int:
    """Minor-unit digits of a currency (EUR 2, JPY 0), from babel's CLDR data."""
    return int(get_currency_precision(currency))


def to_major(minor: int, exponent: int = 2) -> Decimal:
    return Decimal(int(minor)).scaleb(-exponent)


def to_minor(amount: Decimal, exponent: int = 2) -> int:
    """Exact conversion; more decimals than the currency has is refused, never rounded."""
    scaled = amount.scaleb(exponent)
    if scaled != scaled.to_integral_value():
        raise ValidationFailed(
            _("The amount has more decimal places than the currency allows."),
            fields={"amount": _("too many decimal places")},
        )
    return int(scaled)


# --- rows → Structs ----------------------------------------------------------------------


def customer_out(row: Mapping[str, Any], *, exponent: int = 2) -> CustomerOut:
    """A row of ``Customer.select()`` as the edge Struct. ``exponent`` is the merchant's
    currency's minor-unit digits (2 unless the currency says otherwise)."""
    custom = row.get("custom_fields") or {}
    if isinstance(custom, str):
        custom = json.loads(custom or "{}")
    return CustomerOut(
        id=int(row["id"]),
        email=row["email"],
        first_name=row["first_name"],
        last_name=row["last_name"],
        gender=row["gender"],
        birth_date=row["birth_date"],
        locale=row["locale"],
        country=row["country"],
        city=row["city"],
        postal_code=row["postal_code"],
        phone=row["phone"],
        customer_type=row["customer_type"],
        email_status=row["email_status"],
        subscribed=bool(row["subscribed"]),
        unsubscribed_at=row["unsubscribed_at"],
        source=row["source"],
        custom_fields=custom,
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        purchase_count=int(row["purchase_count"]),
        refund_count=int(row["refund_count"]),
        lifetime_value=to_major(row["lifetime_value_minor"], exponent),
        first_purchase_at=row["first_purchase_at"],
        last_purchase_at=row["last_purchase_at"],
        optin_sent_at=row.get("optin_sent_at"),
        paused_until=row.get("paused_until"),
        erasure_requested_at=row.get("erasure_requested_at"),
    )


def merchant_exponent(merchant: MerchantOut) -> int:
    return currency_exponent(merchant.currency)


async def customer_row(merchant_id: int, customer_id: int) -> dict[str, Any]:
    row = (
        await Customer.select()
        .where((Customer.id == customer_id) & (Customer.merchant == merchant_id))
        .first()
    )
    if row is None:
        raise NotFound(_("Customer not found."))
    return row


# --- validation --------------------------------------------------------------------------


def _check_birth_date(value: date | None) -> None:
    if value is not None and not (date(1900, 1, 1) <= value <= date.today()):
        raise ValidationFailed(
            _("The birth date must lie between 1900 and today."),
            fields={"birth_date": _("out of range")},
        )


def _check_custom_fields(fields: Mapping[str, object]) -> None:
    for key, value in fields.items():
        if not key or len(key) > 64:
            raise ValidationFailed(
                _("Custom field names must have 1 to 64 characters."),
                fields={"custom_fields": key[:64]},
            )
        if isinstance(value, str) and len(value) > 1000:
            raise ValidationFailed(
                _("A custom field value may have at most 1,000 characters."),
                fields={"custom_fields": key},
            )


def _duplicate() -> Conflict:
    return Conflict(
        _("A customer with this e-mail address exists already."),
        fields={"email": _("already in your customer list")},
    )


async def _address_taken(merchant_id: int, key: str, except_id: int | None = None) -> bool:
    condition = (Customer.merchant == merchant_id) & (Customer.email_normalized == key)
    if except_id is not None:
        condition = condition & (Customer.id != except_id)
    return await Customer.exists().where(condition)


# --- create / read / update --------------------------------------------------------------


async def create_customer(
    merchant_id: int,
    data: CustomerCreate,
    *,
    source: ConsentSource = "marketer",
    actor: str = "",
    ip: str = "",
    user_agent: str = "",
    wording_version: str = OPTIN_WORDING_VERSION,
    via: loyalty.ChangeVia | None = None,
) -> CustomerOut:
    """Add a customer. With ``send_optin`` (the default) the address becomes ``pending`` and
    receives the double opt-in e-mail; it counts as a recipient only once confirmed.
    ``wording_version`` names the text the customer agreed to (the sign-up form has its own).

    A suppressed (erased, bounced) address may come back only through such a fresh opt-in:
    without it the create is refused with :class:`Suppressed`.
    """
    merchant = await accounts.get_merchant(merchant_id)
    email, key = normalize_email(data.email)
    loyalty.check_merchant_may_set("non_member", data.customer_type)
    _check_birth_date(data.birth_date)
    _check_custom_fields(data.custom_fields)
    if await _address_taken(merchant_id, key):
        raise _duplicate()
    if not data.send_optin and await is_suppressed(merchant_id, key):
        raise Suppressed(
            _(
                "This address was erased or blocked earlier. It can only be added again with"
                " a confirmation e-mail (double opt-in)."
            ),
            fields={"email": _("suppressed")},
        )
    values = msgspec.structs.asdict(data)
    values.pop("send_optin")
    values.pop("email")
    moment = now()
    async with transaction():
        try:
            rows = await Customer.insert(
                Customer(
                    merchant=merchant_id,
                    email=email,
                    email_normalized=key,
                    email_status="pending" if data.send_optin else "unverified",
                    source=source,
                    created_at=moment,
                    updated_at=moment,
                    **values,
                )
            ).returning(*Customer.all_columns())
        except Exception as exc:
            if sql.is_unique_violation(exc):
                raise _duplicate() from exc
            raise
        row = rows[0]
        if data.customer_type != "non_member":
            await loyalty.record_type_change(
                merchant_id,
                row["id"],
                "",
                data.customer_type,
                via=via or loyalty.via_of(source),
                actor=actor,
                moment=moment,
            )
        if data.send_optin:
            await _insert_consent(
                merchant_id,
                row["id"],
                "requested",
                source,
                email,
                ip,
                user_agent,
                actor,
                wording_version=wording_version,
            )
    if data.send_optin:
        enqueue_optin(row["id"])
    return customer_out(row, exponent=merchant_exponent(merchant))


async def get_customer(merchant_id: int, customer_id: int) -> CustomerOut:
    merchant = await accounts.get_merchant(merchant_id)
    return customer_out(
        await customer_row(merchant_id, customer_id), exponent=merchant_exponent(merchant)
    )


async def update_customer(
    merchant_id: int,
    customer_id: int,
    data: CustomerUpdate,
    *,
    actor: str = "",
    source: ConsentSource = "marketer",
    via: loyalty.ChangeVia | None = None,
) -> CustomerOut:
    """Change the fields present in ``data``. ``via``: how a type change arrived, for the
    customer's history (the default follows ``source``).

    - ``subscribed=False`` unsubscribes (time kept, consent event "withdrawn").
    - ``subscribed=True`` on an unsubscribed customer never re-subscribes silently: it starts a
      fresh opt-in (status pending, e-mail sent); only the confirmation re-subscribes.
    - A new address is unconfirmed: it gets its own opt-in (if the customer is subscribed).
    """
    merchant = await accounts.get_merchant(merchant_id)
    current = await customer_row(merchant_id, customer_id)
    changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
    wants_subscribed = changes.pop("subscribed", None)
    new_email = changes.pop("email", None)
    if "birth_date" in changes:
        _check_birth_date(changes["birth_date"])
    if "custom_fields" in changes:
        _check_custom_fields(changes["custom_fields"])
    old_type, new_type = current["customer_type"], changes.get("customer_type")
    if new_type is not None:
        loyalty.check_merchant_may_set(old_type, new_type)

    moment = now()
    events: list[tuple[str, str]] = []  # (action, address) to append to the consent log
    address = current["email"]
    stays_subscribed = bool(current["subscribed"])
    start_optin = False

    if wants_subscribed is False and current["subscribed"]:
        changes.update(subscribed=False, unsubscribed_at=moment)
        events.append(("withdrawn", address))
        stays_subscribed = False
    if wants_subscribed is not None and current["paused_until"] is not None:
        # The marketer decides now: a recipient's pause must not undo it later.
        changes["paused_until"] = None

    if new_email is not None:
        cleaned, key = normalize_email(new_email)
        if key != current["email_normalized"]:
            if await _address_taken(merchant_id, key, except_id=customer_id):
                raise _duplicate()
            # The recipient confirmed the old address, not this one.
            changes.update(
                email=cleaned,
                email_normalized=key,
                optin_sent_at=None,
                confirmed_by_recipient=False,
            )
            address = cleaned
            # Consent belongs to an address: the new one starts unconfirmed.
            if stays_subscribed:
                changes["email_status"] = "pending"
                start_optin = True
            else:
                changes["email_status"] = "unverified"
        elif cleaned != current["email"]:
            changes["email"] = cleaned  # only the spelling (case) changed

    if wants_subscribed is True and not current["subscribed"]:
        changes["email_status"] = "pending"
        start_optin = True

    if start_optin:
        events.append(("requested", address))
    changes["updated_at"] = moment
    async with transaction():
        try:
            await Customer.update({getattr(Customer, k): v for k, v in changes.items()}).where(
                (Customer.id == customer_id) & (Customer.merchant == merchant_id)
            )
        except Exception as exc:
            if sql.is_unique_violation(exc):
                raise _duplicate() from exc
            raise
        if new_type is not None:
            await loyalty.record_type_change(
                merchant_id,
                customer_id,
                old_type,
                new_type,
                via=via or loyalty.via_of(source),
                actor=actor,
                moment=moment,
            )
        for action, event_address in events:
            await _insert_consent(
                merchant_id,
                customer_id,
                action,
                source,
                event_address,
                "",
                "",
                actor,
                wording_version=OPTIN_WORDING_VERSION if action == "requested" else "",
            )
    if start_optin:
        enqueue_optin(customer_id)
    return customer_out(
        await customer_row(merchant_id, customer_id), exponent=merchant_exponent(merchant)
    )


async def _insert_consent(
    merchant_id: int,
    customer_id: int,
    action: str,
    source: str,
    email: str,
    ip: str,
    user_agent: str,
    actor: str,
    wording_version: str = "",
) -> None:
    # The consent log is append-only: this insert is the only way rows get there.
    await ConsentEvent.insert(
        ConsentEvent(
            merchant=merchant_id,
            customer=customer_id,
            action=action,
            source=source,
            email=email,
            ip=ip[:45],
            user_agent=user_agent[:300],
            wording_version=wording_version[:50],
            actor=actor[:254],
            created_at=now(),
        )
    )


def enqueue_optin(customer_id: int) -> None:
    """Queue the opt-in e-mail. The customer is saved either way: if the broker is down the
    address stays pending without ``optin_sent_at``, and the marketer can resend."""
    from customers.actors import send_optin_email  # actors import services: import late

    try:
        send_optin_email.send(customer_id)
    except Exception:
        log.exception("could not queue the opt-in e-mail for customer %s", customer_id)


# --- list, search, stream ----------------------------------------------------------------


def parse_customer_query(params: Mapping[str, str]) -> CustomerQuery:
    """A :class:`CustomerQuery` from query-string or form values (strings). Empty values mean
    "no filter"; unknown names and bad values are a ValidationFailed naming the field."""
    cleaned = {k: v for k, v in params.items() if v != "" or k == "q"}
    try:
        return msgspec.convert(cleaned, CustomerQuery, strict=False)
    except msgspec.ValidationError as exc:
        field = _field_of(str(exc))
        raise ValidationFailed(
            _("The search or filter is not valid."), fields={field: str(exc)}
        ) from exc


def _field_of(message: str) -> str:
    # msgspec says "… - at `$.field`" or "Object contains unknown field `name`".
    if "`" in message:
        return message.split("`")[1].removeprefix("$.")
    return "query"


def _local_midnight_utc(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=zone).astimezone(UTC)


def _zone(merchant: MerchantOut) -> ZoneInfo:
    return ZoneInfo(merchant.time_zone or "UTC")


def _conditions(merchant: MerchantOut, query: CustomerQuery) -> list[Any]:
    conditions: list[Any] = [Customer.merchant == merchant.id]
    if query.q.strip():
        conditions.append(queries.search_clause(query.q.strip()))
    for name in ("customer_type", "email_status", "gender", "country"):
        value = getattr(query, name)
        if value is not None:
            conditions.append(getattr(Customer, name) == value)
    if query.subscribed is not None:
        conditions.append(Customer.subscribed == query.subscribed)
    if query.erasure_requested is not None:
        asked = Customer.erasure_requested_at
        conditions.append(asked.is_not_null() if query.erasure_requested else asked.is_null())
    # City and postal code filter exactly but without regard to case or surrounding spaces.
    if query.city is not None and query.city.strip():
        conditions.append(WhereRaw("lower(city) = {}", query.city.strip().lower()))
    if query.postal_code is not None and query.postal_code.strip():
        conditions.append(Customer.postal_code == query.postal_code.strip())
    zone = _zone(merchant)
    if query.created_from is not None:
        conditions.append(Customer.created_at >= _local_midnight_utc(query.created_from, zone))
    if query.created_to is not None:
        end = _local_midnight_utc(query.created_to + timedelta(days=1), zone)
        conditions.append(Customer.created_at < end)
    return conditions


def _ordered(select: Select, column: str, order: Literal["asc", "desc"]) -> Select:
    for expressions, ascending in queries.order_by_terms(column, order):
        select = select.order_by(*expressions, ascending=ascending)
    return select


async def list_customers(merchant_id: int, query: CustomerQuery) -> CustomerPage:
    """One page of the filtered, sorted list and the total: filtering, sorting and counting
    are done by the database."""
    merchant = await accounts.get_merchant(merchant_id)
    conditions = _conditions(merchant, query)
    column = queries.SORT_COLUMNS[query.sort]
    rows = (
        await _ordered(Customer.select().where(*conditions), column, query.order)
        .limit(query.per_page)
        .offset((query.page - 1) * query.per_page)
    )
    total = await Customer.count().where(*conditions)
    exponent = merchant_exponent(merchant)
    return CustomerPage(
        items=[customer_out(row, exponent=exponent) for row in rows],
        total=int(total),
        page=query.page,
        per_page=query.per_page,
    )


async def iter_customers(
    merchant_id: int, query: CustomerQuery, batch_size: int = 1000
) -> AsyncIterator[CustomerOut]:
    """Every customer matching ``query`` in its sort order, fetched ``batch_size`` rows at a
    time by keyset pagination (WHERE (sort, id) after the last row): memory stays flat and
    no page is skipped or repeated, however many rows there are. ``page``/``per_page`` are
    ignored."""
    merchant = await accounts.get_merchant(merchant_id)
    conditions = _conditions(merchant, query)
    column = queries.SORT_COLUMNS[query.sort]
    exponent = merchant_exponent(merchant)
    after: Any = None
    while True:
        select = _ordered(Customer.select().where(*conditions), column, query.order).limit(
            batch_size
        )
        if after is not None:
            select = select.where(after)
        rows = await select
        for row in rows:
            yield customer_out(row, exponent=exponent)
        if len(rows) < batch_size:
            return
        last = rows[-1]
        after = queries.keyset_after(column, query.order, last[column], int(last["id"]))


# --- erasure -----------------------------------------------------------------------------


async def erase_customer(merchant_id: int, customer_id: int, *, actor: str = "") -> None:
    """Delete the customer and every row about them, in one transaction; keep only the keyed
    hash of the address on the suppression list (reason "erased") so no later import or
    sign-up brings it back without a fresh, confirmed opt-in.

    Rows are deleted explicitly rather than trusting ON DELETE CASCADE alone: the cascade
    depends on SQLite's foreign_keys pragma being on for the connection.
    """
    async with transaction():
        row = await customer_row(merchant_id, customer_id)
        key = row["email_normalized"]
        mine = Customer.merchant == merchant_id
        await Purchase.delete().where(
            (Purchase.customer == customer_id) & (Purchase.merchant == merchant_id)
        )
        await ConsentEvent.delete().where(
            (ConsentEvent.customer == customer_id) & (ConsentEvent.merchant == merchant_id)
        )
        await CustomerTypeChange.delete().where(
            (CustomerTypeChange.customer == customer_id)
            & (CustomerTypeChange.merchant == merchant_id)
        )
        # An import's report may name the address on a rejected row.
        await ImportIssue.delete().where(
            (ImportIssue.merchant == merchant_id) & WhereRaw("lower(trim(email)) = {}", key)
        )
        # What other apps keep (campaigns' frozen recipient rows), before the row goes.
        await erasure_steps.run_steps(
            erasure_steps.ErasedCustomer(
                merchant_id=merchant_id, customer_id=customer_id, email_normalized=key
            )
        )
        # The loyalty tally's delete trigger dates the erasure by the row's updated_at
        # (customers.services.loyalty): the time of the erasure, set just before it goes.
        await Customer.update({Customer.updated_at: now()}).where(
            (Customer.id == customer_id) & mine
        )
        await Customer.delete().where((Customer.id == customer_id) & mine)
        await suppress(merchant_id, key, "erased")
    # No address or name in the log: the point is that they are gone.
    log.info("customer %s of merchant %s erased by %s", customer_id, merchant_id, actor or "-")
