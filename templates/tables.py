"""The media library: images a merchant uploaded for its newsletters."""

from piccolo.columns import ForeignKey, Integer, Serial, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from accounts.tables import Merchant


class MediaFile(Table, tablename="media_file"):
    id: Serial  # created by Piccolo; declared for the type checker
    merchant = ForeignKey(references=Merchant, null=False, index=True)
    #: The file's public name under /media/: random, so one cannot guess another's files.
    key = Varchar(length=64, unique=True)
    original_name = Varchar(length=200, default="")
    content_type = Varchar(length=32)
    size_bytes = Integer()
    width = Integer()
    height = Integer()
    created_at = Timestamptz(default=TimestamptzNow())
