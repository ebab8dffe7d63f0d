"""Who opened, clicked or unsubscribed: a campaign's people by what they did, page by page,
and the whole list as CSV.

A page is one query over the events (:func:`tracking.queries.people_sql`: the list's members
after a recipient id, walked in the index's order, with their figures) and one over the
recipient rows of those people (the campaigns app owns them: :func:`recipient_people`).
Keyset pagination by recipient id keeps every page as cheap as the first, however long the
list; the definitions are the report's, so a list is as long as the report's figure says.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC
from typing import cast

from campaigns import services as campaigns
from campaigns.sending.progress import as_moment
from customers.services.exports import neutralise
from loyalmail import database
from loyalmail.errors import ValidationFailed, _
from tracking.queries import ACTIVITIES, people_sql
from tracking.schemas import Activity, PeoplePage, PersonActivity
from tracking.tables import TrackingEvent

#: The most rows one page of the API or the report page shows.
MOST_PER_PAGE = 100
#: The export's pages: larger, the rows go straight out.
EXPORT_PAGE = 1000
CSV_HEADER = ("email", "name", "erased", "first_at", "opens", "clicks", "machine_opens")


def parse_activity(value: str) -> Activity:
    """``value`` if it names a list; ValidationFailed (422) otherwise."""
    if value not in ACTIVITIES:
        raise ValidationFailed(
            _("Choose which people to list: opened, clicked, unsubscribed or machine_only."),
            fields={"activity": value[:32]},
        )
    return cast(Activity, value)


async def check_list(merchant_id: int, campaign_id: int, activity: str) -> Activity:
    """The list's name, once the campaign is known to be the merchant's (NotFound) and the
    name one of :data:`ACTIVITIES` (ValidationFailed)."""
    chosen = parse_activity(activity)
    await campaigns.get_campaign(merchant_id, campaign_id)
    return chosen


async def people_page(
    merchant_id: int, campaign_id: int, activity: str, *, after: int = 0, limit: int = 50
) -> PeoplePage:
    """The list's people after recipient ``after``, at most ``limit`` (capped at
    :data:`MOST_PER_PAGE`). NotFound for another merchant's campaign; ValidationFailed for an
    unknown ``activity``."""
    chosen = await check_list(merchant_id, campaign_id, activity)
    return await _page(merchant_id, campaign_id, chosen, after, max(1, min(limit, MOST_PER_PAGE)))


async def _page(
    merchant_id: int, campaign_id: int, activity: Activity, after: int, size: int
) -> PeoplePage:
    sql, walks = people_sql(activity, "postgres" if database.is_postgres() else "sqlite")
    # One more than the page: whether there is a next page is known without another query.
    walk_args = [merchant_id, campaign_id, max(after, 0), size + 1] * walks
    rows = await TrackingEvent.raw(sql, *walk_args, size + 1, campaign_id, merchant_id)
    more = len(rows) > size
    rows = rows[:size]
    people = await campaigns.recipient_people(
        merchant_id, campaign_id, [int(row["recipient"]) for row in rows]
    )
    found = []
    for row in rows:
        recipient_id = int(row["recipient"])
        # Events only name the campaign's own rows; one the campaigns app no longer knows
        # would be shown as erased rather than break the list.
        person = people.get(recipient_id)
        first_at = as_moment(row["first_at"])
        assert first_at is not None, "every member has an event of its list"
        found.append(
            PersonActivity(
                recipient_id=recipient_id,
                email=person.email if person else "",
                name=person.name if person else "",
                erased=person.erased if person else True,
                first_at=first_at,
                opens=int(row["opens"]),
                clicks=int(row["clicks"]),
                machine_opens=int(row["machine_opens"]),
            )
        )
    return PeoplePage(
        campaign_id=campaign_id,
        activity=activity,
        rows=found,
        next_after=found[-1].recipient_id if more else None,
    )


async def iter_people(
    merchant_id: int, campaign_id: int, activity: str
) -> AsyncIterator[list[PersonActivity]]:
    """The whole list, a page at a time (checked like :func:`people_page`)."""
    chosen = await check_list(merchant_id, campaign_id, activity)
    after: int | None = 0
    while after is not None:
        page = await _page(merchant_id, campaign_id, chosen, after, EXPORT_PAGE)
        yield page.rows
        after = page.next_after


def _cells(person: PersonActivity) -> list[str]:
    # Text that could reach a spreadsheet as a formula (a name like "=HYPERLINK(…)") goes
    # through the customers export's guard; numbers and times are ours.
    return [
        neutralise(person.email),
        neutralise(person.name),
        "true" if person.erased else "false",
        person.first_at.astimezone(UTC).replace(microsecond=0, tzinfo=None).isoformat(sep=" ")
        + "Z",
        str(person.opens),
        str(person.clicks),
        str(person.machine_opens),
    ]


async def csv_chunks(merchant_id: int, campaign_id: int, activity: str) -> AsyncIterator[bytes]:
    """The list as UTF-8 CSV with a byte-order mark (as the customers export, for Excel), one
    chunk per page. Call :func:`check_list` first: the stream then starts only for a list
    that exists, and a 404 or 422 is a proper answer, not a cut-off file."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write("\ufeff")
    writer.writerow(CSV_HEADER)
    async for rows in iter_people(merchant_id, campaign_id, activity):
        writer.writerows(_cells(person) for person in rows)
        yield buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
