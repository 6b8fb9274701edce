"""The week grid is pure: sessions placed by local day and hour, office hours always shown."""

from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from familylink.booking.week import FIRST_HOUR, LAST_HOUR, week_grid, week_of

NEW_YORK = ZoneInfo("America/New_York")
MONDAY = date(2026, 11, 16)


@dataclass
class Session:
    starts_at: datetime


def test_week_of_is_the_monday():
    assert week_of(date(2026, 11, 22)) == MONDAY and week_of(MONDAY) == MONDAY


def test_an_empty_week_shows_seven_days_of_office_hours():
    grid = week_grid([], MONDAY, 7, NEW_YORK)
    assert grid.days[0] == MONDAY and len(grid.days) == 7
    assert grid.hours == list(range(FIRST_HOUR, LAST_HOUR + 1))


def test_sessions_go_to_their_local_day_and_hour_and_widen_the_hours():
    early = Session(datetime(2026, 11, 17, 11, 30, tzinfo=UTC))  # Tuesday 6:30 AM in New York
    late = Session(datetime(2026, 11, 20, 2, 0, tzinfo=UTC))  # Thursday 9:00 PM (UTC Friday)
    grid = week_grid([early, late], MONDAY, 7, NEW_YORK)
    assert grid.cells[(date(2026, 11, 17), 6)][0].appointment is early
    assert grid.cells[(date(2026, 11, 19), 21)][0].starts == "9:00 PM"
    assert grid.hours[0] == 6 and grid.hours[-1] == 21
    assert [e.appointment for e in grid.by_day[date(2026, 11, 19)]] == [late]


def test_a_session_from_the_night_before_is_shown_at_the_top_of_the_first_day():
    overnight = Session(datetime(2026, 11, 16, 4, 30, tzinfo=UTC))  # Sunday 11:30 PM
    grid = week_grid([overnight], MONDAY, 7, NEW_YORK)
    assert grid.cells[(MONDAY, 0)][0].appointment is overnight and grid.hours[0] == 0
