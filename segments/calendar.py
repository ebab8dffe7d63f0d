"""The merchant's calendar: days, months and birthdays in its time zone.

Rules, written once here and relied on by the compiler, the predefined groups and the tests:

* A day of the merchant runs from its local midnight to the next (DST days are 23 or 25 h).
* "The previous month" is the calendar month before the one the merchant's today lies in.
* "Eight months ago" is today's date eight months back, clamped to that month's last day
  (31 October → 28/29 February); "lost" means no purchase since that day's start.
* Birthdays of 29 February are celebrated on 28 February in common years — the rule the
  dashboard's "upcoming birthdays" uses too — and an age is counted the same way: someone
  born on 29 February 2008 turns 18 on 28 February 2026.
* "Birthdays in the next four weeks" are the 28 days from today through today + 27.
"""

from __future__ import annotations

import calendar as cal
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

BIRTHDAY_WINDOW_DAYS = 28


def zone(time_zone: str) -> ZoneInfo:
    return ZoneInfo(time_zone or "UTC")


def local_today(now: datetime, time_zone: str) -> date:
    return now.astimezone(zone(time_zone)).date()


def day_start(day: date, time_zone: str) -> datetime:
    """The UTC instant of the merchant's midnight that starts ``day``."""
    return datetime.combine(day, time(0), tzinfo=zone(time_zone)).astimezone(UTC)


def month_start(day: date) -> date:
    return day.replace(day=1)


def previous_month_start(day: date) -> date:
    first = month_start(day)
    return month_start(first - timedelta(days=1))


def months_back(day: date, months: int) -> date:
    """``day`` moved back ``months`` calendar months, clamped to the month's last day."""
    index = day.year * 12 + (day.month - 1) - months
    year, month = divmod(index, 12)
    last = cal.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def shift_years(day: date, years: int) -> date:
    """``day`` in another year; 29 February becomes 28 February in a common year."""
    target = day.year + years
    if day.month == 2 and day.day == 29 and not cal.isleap(target):
        return date(target, 2, 28)
    return day.replace(year=target)


def years_ago(today: date, years: int) -> date:
    """The latest birth date of someone who is at least ``years`` old on ``today``.

    On 28 February of a common year, people born on 29 February of the year in question
    count as having had their birthday (the 28 February rule above).
    """
    bound = shift_years(today, -years)
    target = today.year - years
    if today.month == 2 and today.day == 28 and not cal.isleap(today.year):
        if cal.isleap(target):
            return date(target, 2, 29)
    return bound


def age_on(birth_date: date, today: date) -> int:
    """Whole years on ``today`` under the same rule (used by the reference and the pages)."""
    age = today.year - birth_date.year
    celebrated = shift_years(birth_date, age)
    return age if celebrated <= today else age - 1


def month_day(day: date) -> int:
    """A date's month and day as one number: 24 December → 1224."""
    return day.month * 100 + day.day


def birthday_ranges(today: date, days: int = BIRTHDAY_WINDOW_DAYS) -> list[tuple[int, int]]:
    """Inclusive ranges of :func:`month_day` values whose birthday falls in the window.

    One range normally, two when the window crosses the turn of the year. In a common year a
    window ending on 28 February is stretched to 29 February: those people celebrate then.
    """
    last = today + timedelta(days=days - 1)
    start, end = month_day(today), month_day(last)
    if end == 228 and not cal.isleap(last.year):
        end = 229
    if last.year == today.year:
        return [(start, end)]
    return [(start, 1231), (101, end)]


#: Every month-day a birth date can have (29 February included), in calendar order.
ALL_MONTH_DAYS = [
    month * 100 + day
    for month in range(1, 13)
    for day in range(1, cal.monthrange(2000, month)[1] + 1)
]


def month_days_in(ranges: list[tuple[int, int]]) -> list[int]:
    """The month-days inside the inclusive ``ranges`` of :func:`birthday_ranges`, the same
    birth dates as the ranges, listed."""
    return [md for md in ALL_MONTH_DAYS if any(low <= md <= high for low, high in ranges)]


def next_birthday(birth_date: date, today: date) -> date:
    """The next celebration on or after ``today`` under the 28 February rule."""
    for year in (today.year, today.year + 1):
        candidate = shift_years(birth_date, year - birth_date.year)
        if candidate >= today:
            return candidate
    raise AssertionError("unreachable: next year's birthday is always after today")
