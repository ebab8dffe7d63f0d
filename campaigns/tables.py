"""Campaigns: what a marketer composes, and (with the sending issue) what went out."""

from piccolo.columns import JSON, ForeignKey, OnDelete, Serial, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from accounts.tables import Merchant, User
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
    #: draft now; the sending issue adds scheduled, sending, paused, sent, cancelled.
    status = Varchar(length=16, default="draft")
    created_by = ForeignKey(references=User, null=True, default=None, on_delete=OnDelete.set_null)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())
