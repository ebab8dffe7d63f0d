"""Campaigns: what a marketer composes, and (with the sending issue) what went out."""

from piccolo.columns import (
    JSON,
    BigInt,
    BigSerial,
    ForeignKey,
    Integer,
    OnDelete,
    Serial,
    Timestamptz,
    Varchar,
)
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from accounts.tables import Merchant, User
from customers.tables import Customer
from segments.tables import Segment


class Campaign(Table, tablename="campaign"):
    id: Serial  # created by Piccolo; declared for the type checker
    merchant = ForeignKey(references=Merchant, null=False, index=True)
    name = Varchar(length=200)
    subject = Varchar(length=300, default="")
    #: The short intro mail clients show after the subject.
    preheader = Varchar(length=300, default="")
    #: The target group: a predefined key, or a saved segment (never both).
    audience_predefined = Varchar(length=32, default="")
    audience_segment = ForeignKey(
        references=Segment, null=True, default=None, on_delete=OnDelete.set_null
    )
    layout = Varchar(length=32, default="classic")
    #: A list of :mod:`templates.blocks` blocks, validated before it is stored.
    blocks = JSON(default="[]")
    #: The From name; the address is always the merchant's sender address.
    sender_name = Varchar(length=200, default="")
    #: draft → scheduled → sending ⇄ paused → sent; scheduled → overdue (its time passed while
    #: the service was down: it waits for the marketer); cancelled from scheduled, overdue,
    #: sending or paused. See :mod:`campaigns.sending.states`.
    status = Varchar(length=16, default="draft")
    #: Why it paused itself (or was cancelled), shown on the campaign page.
    status_reason = Varchar(length=300, default="")
    scheduled_at = Timestamptz(null=True, default=None)
    started_at = Timestamptz(null=True, default=None)
    finished_at = Timestamptz(null=True, default=None)
    #: The frozen audience's size and the quota reservation that pays for it (dispatch).
    recipients = Integer(default=0)
    reservation_id = BigInt(null=True, default=None)
    created_by = ForeignKey(references=User, null=True, default=None, on_delete=OnDelete.set_null)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class CampaignRecipient(Table, tablename="campaign_recipient"):
    """One frozen member of a campaign's audience: written by the dispatch's INSERT … SELECT,
    then claimed, sent and resolved by the batch workers. The truth about who got what."""

    id: BigSerial  # BIGINT on PostgreSQL (migration 2026-12-07T02:00); for the type checker
    campaign = ForeignKey(references=Campaign, null=False, index=False, on_delete=OnDelete.cascade)
    merchant = ForeignKey(references=Merchant, null=False, index=False)
    #: Null once the customer is erased: the worker then sends nothing.
    customer = ForeignKey(
        references=Customer, null=True, default=None, index=True, on_delete=OnDelete.set_null
    )
    email = Varchar(length=320)
    email_normalized = Varchar(length=320)
    locale = Varchar(length=16, default="")
    #: queued → sending (leased) → sent | bounced | failed | skipped | cancelled
    status = Varchar(length=12, default="queued")
    attempts = Integer(default=0)
    lease_owner = Varchar(length=40, default="")
    lease_until = Timestamptz(null=True, default=None)
    #: A temporary failure's retry waits until then.
    next_attempt_at = Timestamptz(null=True, default=None)
    sent_at = Timestamptz(null=True, default=None)
    #: The SMTP server's answer to a failure, or why the message was skipped.
    detail = Varchar(length=300, default="")


class CampaignBatch(Table, tablename="campaign_batch"):
    """A range of recipient ids handed to one job. Redis may lose the job; this row lets the
    reconciler hand the range out again."""

    id: Serial  # created by Piccolo; declared for the type checker
    campaign = ForeignKey(references=Campaign, null=False, index=False, on_delete=OnDelete.cascade)
    first_recipient = BigInt()
    last_recipient = BigInt()
    enqueued_at = Timestamptz(default=TimestamptzNow())


class CampaignBounce(Table, tablename="campaign_bounce"):
    """A bounce or complaint that came back after the message left (a provider's webhook, a
    DSN or ARF report), matched to its recipient row: campaigns.bounces. Written once per
    event (a unique index on merchant and event_id); the suppression it caused is in the
    customers app."""

    id: BigSerial  # BIGINT on PostgreSQL (migration 2026-12-07T02:00); for the type checker
    # The unique index (merchant, event_id) serves the merchant's lookups too.
    merchant = ForeignKey(references=Merchant, null=False, index=False)
    campaign = ForeignKey(references=Campaign, null=False, index=False, on_delete=OnDelete.cascade)
    recipient = ForeignKey(
        references=CampaignRecipient,
        null=True,
        default=None,
        index=True,
        on_delete=OnDelete.set_null,
    )
    email_normalized = Varchar(length=320)
    #: hard (suppressed) | soft | policy (5.7.x: the sender or content, not the address)
    #: | complaint (suppressed)
    kind = Varchar(length=10)
    #: webhook | dsn (a DSN or ARF report, by the webhook or the CLI pipe)
    source = Varchar(length=8)
    #: The enhanced status code ("5.1.1"), when the report has one.
    status = Varchar(length=16, default="")
    #: The receiving server's answer or the provider's explanation.
    detail = Varchar(length=300, default="")
    #: ``webhook:<the provider's event id>`` or ``dsn:<digest of the report and recipient>``.
    event_id = Varchar(length=200)
    #: When the provider says it happened (webhooks); received_at is when we heard of it.
    occurred_at = Timestamptz(null=True, default=None)
    received_at = Timestamptz(default=TimestamptzNow())


class CampaignLink(Table, tablename="campaign_link"):
    """The campaign's links as its compiled message numbers them: a click redirect
    (tracking) only ever leads to the URL stored here for its campaign and number. Written
    when the campaign starts (final: it cannot be edited any more) and by each test send of
    the draft (so a test message's links work too)."""

    id: Serial  # created by Piccolo; declared for the type checker
    # The unique index (campaign, number) serves every lookup.
    campaign = ForeignKey(references=Campaign, null=False, index=False, on_delete=OnDelete.cascade)
    number = Integer()
    url = Varchar(length=2048)
