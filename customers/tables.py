"""Customers, their purchases, the append-only consent log, the suppression list, imports."""

from piccolo.columns import (
    JSONB,
    BigInt,
    BigSerial,
    Boolean,
    Date,
    ForeignKey,
    Integer,
    Serial,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.columns.indexes import IndexMethod
from piccolo.table import Table

from accounts.tables import Merchant, User


class Customer(Table, tablename="customer"):
    id: Serial  # created by Piccolo; declared for the type checker
    # Composite unique and sort indexes are created by raw SQL in the migration: Piccolo's
    # Unique constraint is added with ALTER TABLE, which SQLite does not support.
    merchant = ForeignKey(references=Merchant, null=False, index=True)
    email = Varchar(length=254)
    # Lower-cased, trimmed: uniqueness per merchant is case-insensitive.
    email_normalized = Varchar(length=254)
    first_name = Varchar(length=100, default="")
    last_name = Varchar(length=100, default="")
    gender = Varchar(length=10, default="")  # female | male | diverse | "" (unknown)
    birth_date = Date(null=True, default=None)
    locale = Varchar(length=10, default="")
    country = Varchar(length=2, default="")
    city = Varchar(length=100, default="")
    postal_code = Varchar(length=20, default="")
    phone = Varchar(length=50, default="")
    customer_type = Varchar(length=12, default="non_member")  # loyal | member | non_member
    email_status = Varchar(length=12, default="unverified")  # unverified | pending | verified
    #: The recipient confirmed this address themselves (the opt-in link). A merchant can only
    #: declare an address verified (an import's "already confirmed"); for the quota's
    #: allowance in the ``merchant`` loyalty mode only the recipient's own word counts.
    confirmed_by_recipient = Boolean(default=False)
    subscribed = Boolean(default=True)
    #: The address is on the suppression list (a hard bounce or a complaint): kept on the row
    #: by customers.services.suppression so target groups can leave it out with an index.
    suppressed = Boolean(default=False)
    unsubscribed_at = Timestamptz(null=True, default=None)
    source = Varchar(length=12, default="marketer")
    custom_fields = JSONB(default="{}")  # JSONB on PostgreSQL: see the 2026-11-25 migration
    optin_sent_at = Timestamptz(null=True, default=None)
    #: The recipient paused newsletters until then (preference page): unsubscribed meanwhile,
    #: subscribed again by a periodic job when it passes (customers.services.preferences).
    paused_until = Timestamptz(null=True, default=None)
    #: The recipient asked for erasure on the preference page; the marketer erases.
    erasure_requested_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())
    # Derived from purchases, recomputed in the purchase's transaction: lists sort by them and
    # segments filter on them without an aggregate over millions of purchases.
    purchase_count = Integer(default=0)
    refund_count = Integer(default=0)
    lifetime_value_minor = BigInt(default=0)
    first_purchase_at = Timestamptz(null=True, default=None)
    last_purchase_at = Timestamptz(null=True, default=None)
    # PostgreSQL has one more derived column, not declared here because SQLite has no array
    # type: purchase_times TIMESTAMPTZ[], every purchase moment sorted, which the segments'
    # "bought between" reads (segments migration 2026-12-07T12:00, customers.queries).


class Purchase(Table, tablename="purchase"):
    id: BigSerial  # BIGINT on PostgreSQL (migration 2026-12-07T02:00); for the type checker
    merchant = ForeignKey(references=Merchant, null=False, index=True)
    customer = ForeignKey(references=Customer, null=False, index=True)
    kind = Varchar(length=10)  # purchase | refund | exchange
    # Minor units (cents): exact on both engines. Refunds are stored positive and subtracted;
    # an exchange carries the signed difference it made.
    amount_minor = BigInt()
    currency = Varchar(length=3)
    occurred_at = Timestamptz(index=True, index_method=IndexMethod.btree)
    reference = Varchar(length=100, default="")
    created_at = Timestamptz(default=TimestamptzNow())


class ConsentEvent(Table, tablename="consent_event"):
    """Append-only: rows are inserted, never updated. Erasure deletes them with the customer."""

    id: BigSerial  # BIGINT on PostgreSQL (migration 2026-12-07T02:00); for the type checker
    merchant = ForeignKey(references=Merchant, null=False, index=True)
    customer = ForeignKey(references=Customer, null=False, index=True)
    action = Varchar(length=12)  # requested | confirmed | withdrawn | resubscribed
    source = Varchar(length=12)  # form | qr | import | marketer | api | link | unsubscribe
    email = Varchar(length=254)
    ip = Varchar(length=45, default="")
    user_agent = Varchar(length=300, default="")
    wording_version = Varchar(length=50, default="")
    actor = Varchar(length=254, default="")  # the marketer or token that recorded it
    created_at = Timestamptz(default=TimestamptzNow())


class Suppression(Table, tablename="suppression"):
    """Addresses that must never come back without a fresh opt-in, kept as a keyed hash only."""

    id: Serial  # created by Piccolo; declared for the type checker
    merchant = ForeignKey(references=Merchant, null=False, index=True)
    email_hash = Varchar(length=64)
    reason = Varchar(length=12)  # erased | bounced | complaint
    created_at = Timestamptz(default=TimestamptzNow())


class ImportJob(Table, tablename="import_job"):
    id: Serial  # created by Piccolo; declared for the type checker
    merchant = ForeignKey(references=Merchant, null=False, index=True)
    created_by = ForeignKey(references=User, null=True)
    filename = Varchar(length=255)
    file_format = Varchar(length=5)  # csv | xlsx
    stored_path = Varchar(length=500)
    # uploaded → previewing → previewed → importing → done | failed
    status = Varchar(length=12, default="uploaded")
    consent_source = Varchar(length=12, default="import")
    mark_verified = Boolean(default=False)
    #: New addresses become pending and get the opt-in mail.
    send_optin = Boolean(default=False)
    #: Who started it (a marketer's e-mail or "token:<name>"), written into the consent log.
    actor = Varchar(length=254, default="")
    #: What the reader noticed that the marketer should know (encoding fallback, ignored columns).
    notes = Text(default="")
    #: Apply's resume point: the last file row whose batch is committed.
    rows_processed = Integer(default=0)
    rows_total = Integer(default=0)
    rows_new = Integer(default=0)
    rows_updated = Integer(default=0)
    rows_unchanged = Integer(default=0)
    rows_invalid = Integer(default=0)
    rows_suppressed = Integer(default=0)
    error = Text(default="")
    created_at = Timestamptz(default=TimestamptzNow())
    finished_at = Timestamptz(null=True, default=None)


class ImportIssue(Table, tablename="import_issue"):
    """One line of an import's report: a row that was rejected (or suppressed), and why."""

    id: Serial  # created by Piccolo; declared for the type checker
    merchant = ForeignKey(references=Merchant, null=False)
    job = ForeignKey(references=ImportJob, null=False, index=True)
    row_number = Integer()
    email = Varchar(length=254, default="")
    column = Varchar(length=64, default="")
    kind = Varchar(length=12, default="invalid")  # invalid | duplicate | suppressed
    message = Text()


class CustomerTypeChange(Table, tablename="customer_type_change"):
    """The customer's history of types (loyal, member, non-member): one row per change, with
    who made it. Shown on the customer's page; erased with the customer."""

    id: BigSerial  # for the type checker
    merchant = ForeignKey(references=Merchant, null=False)
    customer = ForeignKey(references=Customer, null=False, index=True)
    #: '' when the customer was created with ``new_type``.
    old_type = Varchar(length=12, default="")
    new_type = Varchar(length=12)
    via = Varchar(length=12)  # page | api | import | signup | operator
    #: The marketer's address, "token:<name>", or the operator.
    actor = Varchar(length=254, default="")
    created_at = Timestamptz(default=TimestamptzNow())


class LoyaltyTally(Table, tablename="loyalty_tally"):
    """Changes of a merchant's count of loyal customers, written by database triggers on
    ``customer`` (every insert, type or status change and deletion, whatever path made it).
    The count at an instant is the sum of the rows before it: the quota's monthly allowance
    reads the count at the end of the previous month, however late it runs. No personal data:
    it outlives an erasure, which is itself a change at its time."""

    id: BigSerial  # for the type checker
    merchant = ForeignKey(references=Merchant, null=False)
    #: The customer row's own time of the change (created_at, or updated_at of the write).
    changed_at = Timestamptz()
    #: +1 / −1: loyal customers (the ``operator`` loyalty mode counts these).
    loyal = Integer(default=0)
    #: +1 / −1: loyal customers whose address the recipient confirmed (the ``merchant`` mode).
    confirmed_loyal = Integer(default=0)
