"""The week grid is pure: sessions placed by local day and hour, office hours always shown."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from flask_babel import force_locale

from familylink.booking import week
from familylink.booking.week import FIRST_HOUR, LAST_HOUR, day_label, week_grid, week_of
from familylink.services.timefmt import wall_clock

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


def test_the_rows_hold_each_hour_its_label_and_its_sessions_day_by_day():
    early = Session(datetime(2026, 11, 17, 11, 30, tzinfo=UTC))  # Tuesday 6:30 AM in New York
    grid = week_grid([early], MONDAY, 7, NEW_YORK)
    assert [hour for hour, _, _ in grid.rows] == grid.hours
    hour, label, cells = grid.rows[0]
    assert hour == 6 and label == wall_clock(time(6), "hour") and len(cells) == 7
    assert [e.appointment for e in cells[1]] == [early] and cells[0] == cells[2] == []


def _label_of(grid, hour: int) -> str:
    return next(label for row_hour, label, _ in grid.rows if row_hour == hour)


def test_a_day_is_written_by_babel_once_per_form_and_language(app, monkeypatch):
    """The week pages name the same days on every request: Babel writes each once."""
    written = []
    format_date = week.format_date
    monkeypatch.setattr(
        week, "format_date", lambda *a, **k: written.append(a[0]) or format_date(*a, **k)
    )
    week._day_label.cache_clear()
    day = date(2031, 1, 6)
    with app.test_request_context():
        english = [day_label(day), day_label(day), day_label(day, "short")]
        with force_locale("es"):
            spanish = [day_label(day), day_label(day)]
    assert english == ["Monday, January 6", "Monday, January 6", "Mon, Jan 6"]
    assert spanish == ["lunes, 6 de enero"] * 2
    assert written == [day, day, day]  # English day and short, Spanish day


def test_the_grid_writes_its_hours_and_start_times_in_the_readers_language(app):
    evening = Session(datetime(2026, 11, 19, 23, 30, tzinfo=UTC))  # Thursday 6:30 PM
    with app.test_request_context(), force_locale("es"):
        grid = week_grid([evening], MONDAY, 7, NEW_YORK)
        said = grid.cells[(date(2026, 11, 19), 18)][0].starts, _label_of(grid, 9)
    assert said == ("18:30", "9:00")
    with app.test_request_context(), force_locale("en"):
        grid = week_grid([evening], MONDAY, 7, NEW_YORK)
        said = grid.cells[(date(2026, 11, 19), 18)][0].starts, _label_of(grid, 9)
    assert said == ("6:30 PM", "9 AM")


def test_the_rows_and_start_times_written_once_per_page_read_as_each_alone(app):
    """The grid finds the language once for all its times: each still reads as `wall_clock`
    writes it alone, in each language."""

    sessions = [
        Session(datetime(2026, 11, 17, 11, 30, tzinfo=UTC)),  # Tuesday 6:30 AM
        Session(datetime(2026, 11, 19, 23, 30, tzinfo=UTC)),  # Thursday 6:30 PM
    ]
    for language in ("en", "es"):
        with app.test_request_context(), force_locale(language):
            grid = week_grid(sessions, MONDAY, 7, NEW_YORK)
            labels = [label for _, label, _ in grid.rows]
            alone = [wall_clock(datetime(2026, 1, 1, hour), "hour") for hour in grid.hours]
            starts = [entry.starts for entries in grid.by_day.values() for entry in entries]
            each = [wall_clock(s.starts_at.astimezone(NEW_YORK)) for s in sessions]
            assert labels == alone
            assert starts == each
