"""The quota ledger: sources of units, reservations split across them, and the journal.

A *source* is one pot of units with its own expiry: a month's allowance, a month's test
sends, or a bought pack. Its balance columns obey ``spent + reserved + expired <= granted``
(what is left, *available*, is the difference and is never stored). That rule is enforced
by every write's own conditional ``UPDATE`` and, as a second line, by a CHECK constraint on
PostgreSQL and a trigger on SQLite (created in the migration).

A *reservation* holds units for one campaign (or test send); its *parts* say how many came
from which source. The *journal* is append-only: one entry per grant, purchase, reserve,
spend, release and expire, each with a key unique per merchant, which is what makes every
operation safe to repeat.
"""

from piccolo.columns import Boolean, ForeignKey, Integer, Serial, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from accounts.tables import Merchant


class QuotaSource(Table, tablename="quota_source"):
    id: Serial  # created by Piccolo; declared for the type checker
    merchant = ForeignKey(references=Merchant, null=False, index=True)
    kind = Varchar(length=16)  # allowance | test | pack
    #: The merchant's month the allowance or test sends belong to ('2026-11'); '' for packs.
    period = Varchar(length=7, default="")
    #: The purchase reference of a pack ('' otherwise): the same reference credits once.
    reference = Varchar(length=200, default="")
    granted = Integer(default=0)
    reserved = Integer(default=0)
    spent = Integer(default=0)
    expired = Integer(default=0)
    #: Loyal customers the allowance was computed from, and when they were counted.
    basis_loyal = Integer(null=True, default=None)
    basis_counted_at = Timestamptz(null=True, default=None)
    valid_from = Timestamptz()
    #: NULL: never expires (packs).
    expires_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())


class QuotaReservation(Table, tablename="quota_reservation"):
    id: Serial  # created by Piccolo; declared for the type checker
    merchant = ForeignKey(references=Merchant, null=False, index=True)
    #: The caller's idempotency key ('campaign:42'): reserving again with it is a no-op.
    key = Varchar(length=200)
    pool = Varchar(length=8)  # send | test
    purpose = Varchar(length=200, default="")
    units = Integer()
    spent = Integer(default=0)
    released = Integer(default=0)
    #: Units released after their source expired: they expire, never return to a later month.
    expired = Integer(default=0)
    created_at = Timestamptz(default=TimestamptzNow())
    closed_at = Timestamptz(null=True, default=None)


class QuotaReservationPart(Table, tablename="quota_reservation_part"):
    id: Serial  # created by Piccolo; declared for the type checker
    reservation = ForeignKey(references=QuotaReservation, null=False, index=True)
    source = ForeignKey(references=QuotaSource, null=False, index=True)
    #: Draw order within the reservation: spends take the lowest first.
    position = Integer()
    units = Integer()
    spent = Integer(default=0)
    released = Integer(default=0)
    expired = Integer(default=0)


class QuotaEntry(Table, tablename="quota_entry"):
    id: Serial  # created by Piccolo; declared for the type checker
    merchant = ForeignKey(references=Merchant, null=False)
    kind = Varchar(length=8)  # grant | purchase | reserve | spend | release | expire
    units = Integer()
    source = ForeignKey(references=QuotaSource, null=True, default=None)
    reservation = ForeignKey(references=QuotaReservation, null=True, default=None)
    #: Unique per merchant: writing an entry a second time does nothing.
    key = Varchar(length=300)
    #: A plain-English line for whoever reads the journal itself; pages use the fields below.
    note = Varchar(length=300, default="")
    #: An allowance grant: the loyal customers it was computed from; top_up: a first month's
    #: allowance grew with them.
    basis_loyal = Integer(null=True, default=None)
    top_up = Boolean(default=False)
    #: A purchase: how many packs.
    packs = Integer(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
