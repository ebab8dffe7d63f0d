"""What recipients did with a campaign's messages: opens, clicks and unsubscribes, one row each.

No foreign keys: the rows are written in batches at the rate mail clients fetch pixels, and
every reader scopes by merchant and campaign itself. A recipient id names the campaign's
frozen recipient row (0: a test send, which reports leave out)."""

from piccolo.columns import BigInt, BigSerial, Boolean, Integer, Serial, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class TrackingEvent(Table, tablename="tracking_event"):
    id: BigSerial  # BIGINT on PostgreSQL (migration 2026-12-07T02:00); for the type checker
    merchant = Integer()
    campaign = Integer()
    recipient = BigInt()
    #: open | click | unsubscribe
    kind = Varchar(length=12)
    #: The campaign link's number (clicks).
    link = Integer(null=True, default=None)
    #: A machine, not a person: a privacy proxy fetching every image, a scanner following
    #: every link (tracking.machines says which, in ``reason``). Kept, shown apart.
    machine = Boolean(default=False)
    reason = Varchar(length=24, default="")
    occurred_at = Timestamptz(default=TimestamptzNow())


class TrackingPerson(Table, tablename="tracking_person"):
    """Each recipient's events of a campaign, added up as they are written (in the same
    transaction as the events, tracking.events): the report reads one row per person who did
    anything instead of every event. Only people's opens and clicks are counted here, and
    machines' opens; ``left_at``/``back_at`` are the latest unsubscribe and resubscribe."""

    id: BigSerial  # BIGINT on PostgreSQL (migration 2026-12-07T02:00); for the type checker
    merchant = Integer()
    campaign = Integer()
    recipient = BigInt()
    opens = Integer(default=0)
    clicks = Integer(default=0)
    machine_opens = Integer(default=0)
    left_at = Timestamptz(null=True, default=None)
    back_at = Timestamptz(null=True, default=None)


class TrackingHour(Table, tablename="tracking_hour"):
    """People's opens and clicks of a campaign per hour (UTC), added up as events are
    written: the report's activity chart."""

    id: Serial  # created by Piccolo; declared for the type checker
    merchant = Integer()
    campaign = Integer()
    hour = Timestamptz()
    opens = Integer(default=0)
    clicks = Integer(default=0)
