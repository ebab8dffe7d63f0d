"""Saved custom target groups. The definition is stored as the JSON of :class:`Group`."""

from piccolo.columns import JSON, ForeignKey, Serial, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from accounts.tables import Merchant, User


class Segment(Table, tablename="segment"):
    id: Serial  # created by Piccolo; declared for the type checker
    merchant = ForeignKey(references=Merchant, null=False, index=True)
    name = Varchar(length=120)
    description = Varchar(length=500, default="")
    #: A :class:`segments.schemas.Group`, validated before it is stored and again when read.
    definition = JSON(default="{}")
    created_by = ForeignKey(references=User, null=True)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())
