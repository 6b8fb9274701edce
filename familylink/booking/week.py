"""The therapist's calendar as a week: which week a request shows, and its sessions laid out
by day and hour in the therapist's time zone (pure: no database, no request)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date

from familylink.services.timefmt import babel_locale, times_language, wall_clock

# The office hours a week always shows, so an empty or quiet week still reads as a week;
# sessions earlier or later add rows.
FIRST_HOUR = 8
LAST_HOUR = 17


# How a page names a day, as Babel skeletons: each language orders and joins the parts its
# own way ("Wednesday, November 18" / "miércoles, 18 de noviembre").
DAY_FORMS = {"day": "MMMMEd", "short": "MMMEd", "date": "MMMMd", "date_year": "yMMMMd"}


def day_label(day: date, form: str = "day") -> str:
    """`day` in the reader's language: "day" (weekday, month and day), "full" (and the
    year), "short" ("Wed, Nov 18"), "date" ("November 18"), "date_year" or "weekday"."""
    return _day_label(day, form, babel_locale())


def day_labels(days, form: str = "day") -> list[str]:
    """`day_label` of each of `days`, the reader's language looked up once (a week's)."""
    locale = babel_locale()
    return [_day_label(day, form, locale) for day in days]


# The week pages name the same few days on every request: Babel writes each once per form
# and language, not on every request.
@lru_cache(maxsize=2048)
def _day_label(day: date, form: str, locale: Locale) -> str:
    if form in ("full", "weekday"):
        return format_date(day, "full" if form == "full" else "EEEE", locale=locale)
    pattern = locale.datetime_skeletons[DAY_FORMS[form]].pattern
    if form == "day":
        pattern = re.sub("E+", "EEEE", pattern)  # the weekday in full
    return format_date(day, pattern, locale=locale)


def week_of(day: date) -> date:
    """The Monday of `day`'s week."""
    return day - timedelta(days=day.weekday())


@dataclass(frozen=True)
class Entry:
    """One session in the grid, with its local start time as the page shows it."""

    appointment: object
    starts: str


@dataclass
class WeekGrid:
    days: list[date]
    hours: list[int]
    # (day, hour) → the sessions starting then; day → that day's sessions, in order.
    cells: dict[tuple[date, int], list[Entry]] = field(default_factory=dict)
    by_day: dict[date, list[Entry]] = field(default_factory=dict)
    # The table as the page writes it: each hour, its label and its sessions, day by day (the
    # page walks this once instead of looking up every day and hour in `cells`, or asking
    # for each row's label).
    rows: list[tuple[int, str, list[list[Entry]]]] = field(default_factory=list)


def week_grid(appointments, first: date, days: int, zone: ZoneInfo) -> WeekGrid:
    """`appointments` (ordered by start) placed in `days` days from `first`, by local start.

    A session that began before `first` (one crossing midnight into the shown span) is put
    at the first day's first hour, so nothing overlapping the span is left out.
    """
    grid = WeekGrid(days=[first + timedelta(days=n) for n in range(days)], hours=[])
    grid.by_day = {day: [] for day in grid.days}
    placed: list[tuple[date, int, Entry]] = []
    language = times_language()  # once for the page's start times and hours
    for appointment in appointments:
        local: datetime = appointment.starts_at.astimezone(zone)
        day, hour = local.date(), local.hour
        if day < first:
            day, hour = first, 0
        if day not in grid.by_day:
            continue
        placed.append((day, hour, Entry(appointment, wall_clock(local, language=language))))
    hours = [hour for _, hour, _ in placed]
    low, high = min([FIRST_HOUR, *hours]), max([LAST_HOUR, *hours])
    grid.hours = list(range(low, high + 1))
    for day, hour, entry in placed:
        grid.cells.setdefault((day, hour), []).append(entry)
        grid.by_day[day].append(entry)
    grid.rows = [
        (
            hour,
            wall_clock(time(hour), "hour", language),
            [grid.cells.get((day, hour), []) for day in grid.days],
        )
        for hour in grid.hours
    ]
    return grid
