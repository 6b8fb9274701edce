"""Free slots: a pure function of availability, bookings and the clock (no database).

Weekly windows and date overrides are wall times in the program's zone; bookings and the
result are UTC instants. A wall time that does not exist on a date (the spring-forward gap)
is never offered, and a repeated one (fall-back) is offered once, so daylight saving never
moves or duplicates a slot.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import accumulate
from zoneinfo import ZoneInfo

from babel.dates import format_date
from flask_babel import gettext as _

from familylink.services.errors import ValidationError
from familylink.services.timefmt import babel_locale, wall_clock


@dataclass(frozen=True)
class Window:
    weekday: int  # Monday 0 … Sunday 6
    start: time
    end: time


@dataclass(frozen=True)
class Override:
    """A date: `off` all day (no times) or for start-end; else extra hours start-end."""

    day: date
    off: bool
    start: time | None = None
    end: time | None = None


def local_to_utc(day: date, at: time, zone: str) -> datetime:
    """The UTC instant of a wall time on a date; ValidationError when it does not exist."""
    tz = ZoneInfo(zone)
    local = datetime.combine(day, at, tzinfo=tz)
    instant = local.astimezone(UTC)
    if instant.astimezone(tz).replace(tzinfo=None) != local.replace(tzinfo=None):
        raise ValidationError(
            _(
                "%(time)s does not exist on %(day)s in %(zone)s: the clocks skip that hour. "
                "Choose another time.",
                time=wall_clock(at),
                day=format_date(day, "long", locale=babel_locale()),
                zone=zone.replace("_", " "),
            ),
            field="start_time",
        )
    return instant


def _day_intervals(day: date, windows, overrides, zone: str) -> list[tuple[datetime, datetime]]:
    """Bookable UTC intervals on one local date: weekly windows + extra hours - time off."""
    spans: list[tuple[time, time]] = [
        (w.start, w.end) for w in windows if w.weekday == day.weekday() and w.start < w.end
    ]
    todays = [o for o in overrides if o.day == day]
    for o in todays:
        if not o.off and o.start and o.end and o.start < o.end:
            spans.append((o.start, o.end))
    for o in todays:
        if o.off and (o.start is None or o.end is None):
            return []
    offs = [(o.start, o.end) for o in todays if o.off and o.start and o.end]
    intervals = []
    for start, end in spans:
        pieces = [(start, end)]
        for off_start, off_end in offs:
            cut = []
            for a, b in pieces:
                if off_end <= a or off_start >= b:
                    cut.append((a, b))
                    continue
                if a < off_start:
                    cut.append((a, off_start))
                if off_end < b:
                    cut.append((off_end, b))
            pieces = cut
        for a, b in pieces:
            try:
                intervals.append((local_to_utc(day, a, zone), local_to_utc(day, b, zone)))
            except ValidationError:
                continue  # a window edge inside the DST gap: nothing sensible to offer
    return intervals


def free_slots(
    windows: list[Window],
    overrides: list[Override],
    booked: list[tuple[datetime, datetime]],
    *,
    duration: timedelta,
    buffer: timedelta,
    min_notice: timedelta,
    horizon: timedelta,
    now: datetime,
    zone: str,
    near: datetime | None = None,
    days: tuple[date, date] | None = None,
) -> list[datetime]:
    """Start instants (UTC, sorted, unique) of free slots of `duration`.

    Promises: every slot lies inside a window (or extra hours) and outside time off; no slot
    comes within `buffer` of a booked interval; none starts at or before now, nor before
    now + min_notice; none ends after now + horizon. Slots step by duration + buffer from
    each window's start.

    With `near`, only the slots of the local days around that instant: enough to tell
    whether it is a free slot, at a cost that does not grow with the horizon (each day's
    slots depend on that day's windows alone). With `days` (first, last), only the slots of
    those local days of `zone`: one week of a picker costs a week, whatever the horizon.
    """
    if duration <= timedelta(0):
        return []
    earliest = now + min_notice
    latest = now + horizon
    tz = ZoneInfo(zone)
    step = duration + buffer
    # Booked intervals by start, with the latest end among each prefix: a slot clashes
    # with a booking when one starting before the slot's end (plus buffer) ends after the
    # slot's start (minus buffer). A binary search per slot, not a scan of every booking.
    booked = sorted(booked)
    booked_starts = [b_start for b_start, _ in booked]
    latest_ends = list(accumulate((b_end for _, b_end in booked), max))
    slots: set[datetime] = set()
    first_day = earliest.astimezone(tz).date() - timedelta(days=1)
    last_day = latest.astimezone(tz).date() + timedelta(days=1)
    if near is not None:
        near_day = near.astimezone(tz).date()
        first_day = max(first_day, near_day - timedelta(days=1))
        last_day = min(last_day, near_day + timedelta(days=1))
    if days is not None:
        first_day, last_day = max(first_day, days[0]), min(last_day, days[1])
    day = first_day
    while day <= last_day:
        for start, end in _day_intervals(day, windows, overrides, zone):
            slot = start
            while slot + duration <= end:
                slot_end = slot + duration
                # A time that has started is never free, whatever the notice asked.
                if slot >= earliest and slot > now and slot_end <= latest:
                    before = bisect_left(booked_starts, slot_end + buffer)
                    if before == 0 or slot >= latest_ends[before - 1] + buffer:
                        slots.add(slot)
                slot += step
        day += timedelta(days=1)
    return sorted(slots)


def weekly_occurrences(first_day: date, at: time, weeks: int, zone: str) -> list[datetime]:
    """UTC starts of a weekly series at the same local wall time; refuses a nonexistent time."""
    return [local_to_utc(first_day + timedelta(weeks=n), at, zone) for n in range(weeks)]
