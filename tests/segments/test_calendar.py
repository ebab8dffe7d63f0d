"""The merchant's calendar: month bounds, ages and birthday windows on their edges."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from segments import calendar


def test_previous_month_across_the_turn_of_the_year() -> None:
    assert calendar.previous_month_start(date(2026, 1, 15)) == date(2025, 12, 1)
    assert calendar.previous_month_start(date(2026, 3, 1)) == date(2026, 2, 1)
    assert calendar.previous_month_start(date(2026, 3, 31)) == date(2026, 2, 1)


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        (date(2026, 10, 31), date(2026, 2, 28)),  # clamped to February's last day
        (date(2028, 10, 31), date(2028, 2, 29)),  # a leap year keeps the 29th
        (date(2026, 3, 15), date(2025, 7, 15)),  # across the turn of the year
        (date(2026, 8, 31), date(2025, 12, 31)),
    ],
)
def test_months_back_clamps_to_the_month_end(today: date, expected: date) -> None:
    assert calendar.months_back(today, 8) == expected


def test_day_start_is_local_midnight_in_utc() -> None:
    # Berlin is UTC+1 in winter, Los Angeles UTC−8, Kiritimati UTC+14.
    day = date(2026, 1, 1)
    assert calendar.day_start(day, "Europe/Berlin") == datetime(2025, 12, 31, 23, tzinfo=UTC)
    assert calendar.day_start(day, "America/Los_Angeles") == datetime(2026, 1, 1, 8, tzinfo=UTC)
    assert calendar.day_start(day, "Pacific/Kiritimati") == datetime(2025, 12, 31, 10, tzinfo=UTC)


def test_local_today_differs_from_utc_near_midnight() -> None:
    instant = datetime(2026, 1, 31, 23, 30, tzinfo=UTC)
    assert calendar.local_today(instant, "UTC") == date(2026, 1, 31)
    assert calendar.local_today(instant, "Europe/Berlin") == date(2026, 2, 1)
    assert calendar.local_today(instant, "America/Los_Angeles") == date(2026, 1, 31)


@pytest.mark.parametrize(
    ("born", "today", "age"),
    [
        (date(2000, 6, 15), date(2026, 6, 14), 25),
        (date(2000, 6, 15), date(2026, 6, 15), 26),
        (date(2008, 2, 29), date(2026, 2, 27), 17),
        (date(2008, 2, 29), date(2026, 2, 28), 18),  # celebrated on 28 February
        (date(2008, 2, 29), date(2028, 2, 28), 19),  # a leap year: not yet
        (date(2008, 2, 29), date(2028, 2, 29), 20),
        (date(1999, 12, 31), date(2026, 1, 1), 26),
    ],
)
def test_age_on(born: date, today: date, age: int) -> None:
    assert calendar.age_on(born, today) == age
    # The bound the SQL binds says the same: born on or before it ⇔ at least that age.
    assert (born <= calendar.years_ago(today, age)) is True
    assert (born <= calendar.years_ago(today, age + 1)) is False


@pytest.mark.parametrize(
    ("today", "ranges"),
    [
        (date(2026, 6, 1), [(601, 628)]),
        (date(2026, 12, 20), [(1220, 1231), (101, 116)]),  # across the turn of the year
        (date(2026, 2, 1), [(201, 229)]),  # ends on 28 Feb in a common year: 29 Feb too
        (date(2028, 2, 1), [(201, 228)]),  # a leap year: 29 Feb is a day of its own
        (date(2026, 2, 10), [(210, 309)]),
        (date(2026, 3, 1), [(301, 328)]),  # 29 Feb people had their day on 28 Feb
    ],
)
def test_birthday_ranges(today: date, ranges: list[tuple[int, int]]) -> None:
    assert calendar.birthday_ranges(today) == ranges


def test_month_days_in_lists_what_the_ranges_hold() -> None:
    across = calendar.birthday_ranges(date(2026, 12, 20))
    assert calendar.month_days_in(across) == [*range(101, 117), *range(1220, 1232)]
    # A whole year's window from 1 March of a common year: 29 February is listed once, with
    # the 28th, and no impossible day (230, 431) ever is.
    whole = calendar.birthday_ranges(date(2026, 3, 1), 366)
    listed = calendar.month_days_in(whole)
    assert len(listed) == len(set(listed)) == 366
    assert {228, 229} <= set(listed)
    assert not {230, 431, 1132} & set(listed)


def test_next_birthday_follows_the_28_february_rule() -> None:
    leapling = date(2000, 2, 29)
    assert calendar.next_birthday(leapling, date(2026, 2, 1)) == date(2026, 2, 28)
    assert calendar.next_birthday(leapling, date(2026, 3, 1)) == date(2027, 2, 28)
    assert calendar.next_birthday(leapling, date(2027, 3, 1)) == date(2028, 2, 29)
    assert calendar.next_birthday(date(1980, 1, 3), date(2026, 12, 30)) == date(2027, 1, 3)
