"""Typed values at the edge of the customers app (API bodies, service results)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

import msgspec
from email_validator import EmailNotValidError, ValidatedEmail, validate_email

from loyalmail.errors import ValidationFailed, _

CustomerType = Literal["loyal", "member", "non_member"]
EmailStatus = Literal["unverified", "pending", "verified"]
Gender = Literal["female", "male", "diverse", ""]
#: "unsubscribe" is the unsubscribe link of a campaign message (the column holds 12 characters).
#: "preferences" is the recipient's preference page (pause, leave, ask for erasure).
#: "mail" is a mail to the recipient's unsubscribe address (List-Unsubscribe's mailto:).
ConsentSource = Literal[
    "form", "qr", "import", "marketer", "api", "link", "unsubscribe", "preferences", "mail"
]
#: "paused" and "resumed": a pause the recipient chose on the preference page, and its end.
ConsentAction = Literal["requested", "confirmed", "withdrawn", "resubscribed", "paused", "resumed"]
PurchaseKind = Literal["purchase", "refund", "exchange"]
CUSTOMER_TYPES: tuple[str, ...] = ("loyal", "member", "non_member")
#: The customer's own fields as a marketer edits them and an import file carries them, in the
#: import template's order (the e-mail address first).
PROFILE_COLUMNS: tuple[str, ...] = (
    "email",
    "first_name",
    "last_name",
    "gender",
    "birth_date",
    "locale",
    "country",
    "city",
    "postal_code",
    "phone",
    "customer_type",
)
GENDERS: tuple[str, ...] = ("female", "male", "diverse", "")

Name = Annotated[str, msgspec.Meta(max_length=100)]
CountryCode = Annotated[str, msgspec.Meta(pattern=r"^([A-Z]{2})?$")]
PostalCode = Annotated[str, msgspec.Meta(max_length=20)]
LocaleCode = Annotated[str, msgspec.Meta(pattern=r"^([a-z]{2}([_-][A-Z]{2})?)?$")]
Phone = Annotated[str, msgspec.Meta(max_length=50)]
CustomValue = str | int | float | bool | None
CustomFields = Annotated[dict[str, CustomValue], msgspec.Meta(max_length=50)]
CurrencyCode = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$")]
#: Major units as a decimal ("19.90"); stored as integer minor units.
#: msgspec cannot constrain Decimals: the purchases service checks finiteness and range.
Amount = Decimal


#: The one rule for addresses beyond ASCII, shared by every door (import, the customer API
#: and pages, the public sign-up page) and by everything that sends (campaigns, test sends,
#: the opt-in mail): an internationalised *domain* is accepted and goes out IDNA-encoded
#: (``kunde@bäckerei.de`` → ``kunde@xn--bckerei-5wa.de``, :func:`wire_address`); a non-ASCII
#: *local part* (``jürgen@example.de``) would need SMTPUTF8 from our relay to the recipient's
#: mailbox, which this installation does not use, so it is refused at the door with this
#: reason instead of being accepted, confirmed and then skipped by every send.
NEEDS_SMTPUTF8 = _(
    "This address needs an internationalised mail server (SMTPUTF8), which this installation"
    " does not use; please use another address."
)


def _validated(raw: str) -> ValidatedEmail:
    candidate = raw.strip()
    if not candidate or len(candidate) > 254 or any(c in candidate for c in "\r\n\0"):
        raise ValidationFailed(
            _("This is not a valid e-mail address."), fields={"email": _("invalid address")}
        )
    try:
        return validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValidationFailed(
            _("This is not a valid e-mail address."), fields={"email": str(exc)}
        ) from exc


def normalize_email(raw: str, *, sendable: bool = True) -> tuple[str, str]:
    """(address as given but cleaned, normalised key for uniqueness), or ValidationFailed.

    No DNS lookups: validation must be fast and work offline. Internationalised domains are
    accepted; a local part beyond ASCII is refused with :data:`NEEDS_SMTPUTF8` (the one rule),
    unless ``sendable`` is False: matching an address somebody reports (a bounce) must not
    depend on whether we could send to it. The key is the lower-cased normalised form, so case
    never creates a duplicate.
    """
    valid = _validated(raw)
    if sendable and valid.smtputf8:
        raise ValidationFailed(NEEDS_SMTPUTF8, fields={"email": NEEDS_SMTPUTF8})
    return valid.normalized, valid.normalized.lower()


def wire_address(address: str) -> str:
    """The address as it goes into the envelope and the headers: ASCII, the domain
    IDNA-encoded the way email-validator does it (IDNA 2008: ``straße.de`` stays itself,
    ``xn--strae-oqa.de``, where Python's ``idna`` codec would make it ``strasse.de``, another
    domain). ValidationFailed (:data:`NEEDS_SMTPUTF8`) for a non-ASCII local part."""
    if address.isascii():
        return address
    valid = _validated(address)
    if valid.ascii_email is None:
        raise ValidationFailed(NEEDS_SMTPUTF8, fields={"email": NEEDS_SMTPUTF8})
    return valid.ascii_email


class CustomerCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    email: Annotated[str, msgspec.Meta(min_length=3, max_length=254)]
    first_name: Name = ""
    last_name: Name = ""
    gender: Gender = ""
    birth_date: date | None = None
    locale: LocaleCode = ""
    country: CountryCode = ""
    city: Name = ""
    postal_code: PostalCode = ""
    phone: Phone = ""
    customer_type: CustomerType = "non_member"
    custom_fields: CustomFields = {}
    #: Send the double opt-in e-mail now (the address stays unverified until confirmed).
    send_optin: bool = True


#: How a visitor reached the public sign-up page: its address, or the printed QR code.
SignupSource = Literal["form", "qr"]


class SignupCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What a visitor enters on the merchant's public sign-up page (customers.services.signup).
    Only these fields: everything else about a customer is the marketer's to set."""

    email: Annotated[str, msgspec.Meta(max_length=254)]
    first_name: Name = ""
    last_name: Name = ""
    birth_date: date | None = None
    locale: LocaleCode = ""
    postal_code: PostalCode = ""
    #: The consent box: nothing is stored without it.
    consent: bool = False
    source: SignupSource = "form"


class CustomerUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Only the fields present are changed. E-mail status changes only through opt-in."""

    email: Annotated[str, msgspec.Meta(min_length=3, max_length=254)] | msgspec.UnsetType = (
        msgspec.UNSET
    )
    first_name: Name | msgspec.UnsetType = msgspec.UNSET
    last_name: Name | msgspec.UnsetType = msgspec.UNSET
    gender: Gender | msgspec.UnsetType = msgspec.UNSET
    birth_date: date | None | msgspec.UnsetType = msgspec.UNSET
    locale: LocaleCode | msgspec.UnsetType = msgspec.UNSET
    country: CountryCode | msgspec.UnsetType = msgspec.UNSET
    city: Name | msgspec.UnsetType = msgspec.UNSET
    postal_code: PostalCode | msgspec.UnsetType = msgspec.UNSET
    phone: Phone | msgspec.UnsetType = msgspec.UNSET
    customer_type: CustomerType | msgspec.UnsetType = msgspec.UNSET
    custom_fields: CustomFields | msgspec.UnsetType = msgspec.UNSET
    #: False unsubscribes. True re-subscribes only with a fresh opt-in (never silently).
    subscribed: bool | msgspec.UnsetType = msgspec.UNSET


class CustomerOut(msgspec.Struct, kw_only=True):
    id: int
    email: str
    first_name: str
    last_name: str
    gender: str
    birth_date: date | None
    locale: str
    country: str
    city: str
    postal_code: str
    phone: str
    customer_type: CustomerType
    email_status: EmailStatus
    subscribed: bool
    unsubscribed_at: datetime | None
    source: str
    custom_fields: dict[str, CustomValue]
    created_at: datetime
    updated_at: datetime
    purchase_count: int
    refund_count: int
    #: Major units in the merchant's currency.
    lifetime_value: Decimal
    first_purchase_at: datetime | None
    last_purchase_at: datetime | None
    #: When the last opt-in e-mail went out (None: not sent yet, e.g. still queued).
    optin_sent_at: datetime | None = None
    #: Newsletters paused by the recipient until then (unsubscribed meanwhile).
    paused_until: datetime | None = None
    #: When the recipient asked to be erased (the preference page); the marketer erases.
    erasure_requested_at: datetime | None = None


SortKey = Literal[
    "created_at",
    "email",
    "last_name",
    "first_name",
    "lifetime_value",
    "purchase_count",
    "last_purchase_at",
    "city",
    "country",
]


class CustomerQuery(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Search and filters of the customer list (API query and page form alike)."""

    q: Annotated[str, msgspec.Meta(max_length=200)] = ""
    customer_type: CustomerType | None = None
    email_status: EmailStatus | None = None
    subscribed: bool | None = None
    #: Only customers who asked to be erased (True) or who did not (False).
    erasure_requested: bool | None = None
    gender: Gender | None = None
    country: CountryCode | None = None
    city: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    postal_code: PostalCode | None = None
    created_from: date | None = None
    created_to: date | None = None
    sort: SortKey = "created_at"
    order: Literal["asc", "desc"] = "desc"
    page: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 1
    per_page: Annotated[int, msgspec.Meta(ge=1, le=500)] = 50


class CustomerPage(msgspec.Struct, kw_only=True):
    items: list[CustomerOut]
    total: int
    page: int
    per_page: int


class PurchaseCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    kind: PurchaseKind = "purchase"
    #: Positive for purchases and refunds; an exchange may be negative (money returned).
    amount: Amount
    #: Defaults to the merchant's currency; another currency is refused.
    currency: CurrencyCode | None = None
    occurred_at: datetime | None = None
    reference: Annotated[str, msgspec.Meta(max_length=100)] = ""


class PurchaseOut(msgspec.Struct, kw_only=True):
    id: int
    customer_id: int
    kind: PurchaseKind
    amount: Decimal
    currency: str
    occurred_at: datetime
    reference: str


class Insights(msgspec.Struct, kw_only=True):
    customer_id: int
    currency: str
    lifetime_value: Decimal
    purchase_count: int
    refund_count: int
    refund_total: Decimal
    average_purchase: Decimal | None
    first_purchase_at: datetime | None
    last_purchase_at: datetime | None


ActivitySort = Literal["occurred_at", "kind", "amount"]


class ActivityPage(msgspec.Struct, kw_only=True):
    items: list[PurchaseOut]
    total: int
    page: int
    per_page: int


class ConsentEventOut(msgspec.Struct, kw_only=True):
    id: int
    action: ConsentAction
    source: ConsentSource
    email: str
    ip: str
    user_agent: str
    wording_version: str
    actor: str
    created_at: datetime


class BirthdayOut(msgspec.Struct, kw_only=True):
    customer: CustomerOut
    next_birthday: date
    turns: int


class LatestPurchase(msgspec.Struct, kw_only=True):
    purchase: PurchaseOut
    customer_email: str
    customer_name: str


class DashboardTotals(msgspec.Struct, kw_only=True):
    customers: int
    loyal: int
    verified: int
    sales: Decimal
    purchases: int
    #: Customers with two or more purchases.
    returning_customers: int
    currency: str


class Dashboard(msgspec.Struct, kw_only=True):
    totals: DashboardTotals
    newest: list[CustomerOut]
    top: list[CustomerOut]
    latest_purchases: list[LatestPurchase]
    upcoming_birthdays: list[BirthdayOut]


class TypeChangeOut(msgspec.Struct, kw_only=True):
    """One line of a customer's type history: who changed it, how, and when."""

    #: '' when the customer was created with ``new_type``.
    old_type: str
    new_type: str
    via: str  # page | api | import | signup | operator
    actor: str
    changed_at: datetime


class OperatorTypeSet(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The operator (a loyalty programme's integration) sets a customer's type by address."""

    email: Annotated[str, msgspec.Meta(min_length=3, max_length=254)]
    customer_type: CustomerType


class OperatorTypeResult(msgspec.Struct, kw_only=True):
    customer_id: int
    customer_type: str
    #: False: the customer had this type already (nothing written).
    changed: bool
