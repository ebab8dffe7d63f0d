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

    id: BigSerial  # created by Piccolo; declared for the type checker
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

    id: BigSerial  # created by Piccolo; declared for the type checker
    campaign = ForeignKey(references=Campaign, null=False, index=False, on_delete=OnDelete.cascade)
    first_recipient = BigInt()
    last_recipient = BigInt()
    enqueued_at = Timestamptz(default=TimestamptzNow())
