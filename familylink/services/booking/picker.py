"""The family's booking page as a week picker: one week of free times at a time, in the
family member's own time zone, and the confirmation step before a private booking.

A week runs Monday to Sunday in the viewer's zone. Only one week's slots are computed (the
availability and bookings are read once, see `slots.slot_finder`), so the page costs a week
whatever the booking horizon. Which weeks may be asked for: from the week of now to the
week of now + the booking horizon; anything else is refused with a clear message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask_babel import gettext as _

from familylink.models import Appointment, AppointmentFamily, SeatStatus, SessionType, User
from familylink.services.booking import changes, listings, seats, slots
from familylink.services.errors import ValidationError
from familylink.services.program import get_program

WEEK = timedelta(days=7)
INSTANT = timedelta(microseconds=1)  # the smallest step between two datetimes


@dataclass(frozen=True)
class Day:
    day: date
    slots: list[datetime]


@dataclass(frozen=True)
class Week:
    """Monday `start` (in the viewer's zone), its bookable days with their free times,
    and the Mondays of the weeks before and after it that may be shown (None at the ends)."""

    start: date
    days: list[Day]
    previous: date | None
    next: date | None

    @property
    def has_slots(self) -> bool:
        return any(d.slots for d in self.days)


@dataclass(frozen=True)
class Preview:
    """What the confirmation step says: the time, who is invited besides the person booking
    (each gets an email), and the person's other sessions that same local day."""

    starts_at: datetime
    session_type: SessionType
    others_invited: list[User]
    same_day: list[AppointmentFamily] = field(default_factory=list)


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def bookable_days(*, now: datetime, zone: str, program=None) -> tuple[date, date]:
    """The first and last local days (in `zone`) that can hold a free time (`program`: the
    settings when the caller has read them)."""
    tz = ZoneInfo(zone)
    horizon = timedelta(days=(program or get_program()).booking_horizon_days)
    return now.astimezone(tz).date(), (now + horizon).astimezone(tz).date()


def week_of_slots(
    therapist_id: int,
    session_type: SessionType,
    *,
    now: datetime,
    zone: str,
    week: date | None = None,
) -> Week:
    """The week holding `week` (any day of it), or with None the first week with a free
    time (the first bookable week when none has one).

    Raises ValidationError (field "week") when `week` lies before this week or after the
    booking horizon.
    """
    find = slots.slot_finder(therapist_id, session_type, now=now)
    return _asked_or_first_week(find, now=now, zone=zone, week=week)


def week_of_moves(
    appointment: Appointment,
    *,
    actor: User,
    now: datetime,
    zone: str,
    week: date | None = None,
) -> Week:
    """`week_of_slots` for moving `appointment`: its therapist's free times as if it were not
    booked (so the times around it are offered), without the time it is at now. The
    therapist moving it (`actor`, `changes.moves_freely`) is offered the times inside the
    families' minimum notice too, as `seats.reschedule` and `series.move_future` accept
    them. Raises as `week_of_slots` does."""
    anytime = changes.moves_freely(actor)
    every = slots.slot_finder(
        appointment.therapist_id,
        appointment.session_type,
        now=now,
        exclude_id=appointment.id,
        notice=timedelta(0) if anytime else None,
    )

    def find(**asked) -> list[datetime]:
        return [s for s in every(**asked) if s != appointment.starts_at]

    return _asked_or_first_week(find, now=now, zone=zone, week=week)


def _asked_or_first_week(find, *, now: datetime, zone: str, week: date | None) -> Week:
    program = get_program()
    first_day, last_day = bookable_days(now=now, zone=zone, program=program)
    first, last = monday_of(first_day), monday_of(last_day)
    days = (first_day, last_day)
    zones = (ZoneInfo(zone), ZoneInfo(program.timezone))
    if week is not None:
        wanted = monday_of(week)
        if wanted < first:
            raise ValidationError(_("That week has passed. Here are the coming weeks."), "week")
        if wanted > last:
            raise ValidationError(
                _(
                    "Times can be booked up to %(days)d days ahead. "
                    "Here are the weeks you can book.",
                    days=program.booking_horizon_days,
                ),
                "week",
            )
        return _week(find, wanted, first, last, days, zones)
    monday = first
    while monday <= last:
        shown = _week(find, monday, first, last, days, zones)
        if shown.has_slots:
            return shown
        monday += WEEK
    return _week(find, first, first, last, days, zones)


def _week(find, monday, first, last, days, zones) -> Week:
    """One week's free times, grouped by the viewer's local day (days outside the bookable
    range, `days` (first, last), left out). `zones`: the viewer's and the program's."""
    tz, program_tz = zones
    first_day, last_day = days
    # The program's local days holding the viewer's week, [start, end) (zones may be a day
    # apart): the day of its last instant, not of the next Monday's midnight, whose times
    # would all be computed and then dropped.
    start = datetime.combine(monday, time(0), tzinfo=tz)
    end = datetime.combine(monday + WEEK, time(0), tzinfo=tz)
    span = (start.astimezone(program_tz).date(), (end - INSTANT).astimezone(program_tz).date())
    by_day: dict[date, list[datetime]] = {}
    for slot in find(days=span):
        by_day.setdefault(slot.astimezone(tz).date(), []).append(slot)
    shown = [
        Day(day, by_day.get(day, []))
        for day in (monday + timedelta(days=n) for n in range(7))
        if first_day <= day <= last_day
    ]
    return Week(
        start=monday,
        days=shown,
        previous=monday - WEEK if monday > first else None,
        next=monday + WEEK if monday < last else None,
    )


def preview_private(
    *,
    actor: User,
    patient: User,
    session_type: SessionType,
    starts_at: datetime,
    attendee_ids=(),
    invitable: list[User] | None = None,
    now: datetime,
) -> Preview:
    """The confirmation step of a private booking: checks what `book_private` will check
    (the time is free, the people may be invited) without writing anything. `invitable`:
    whom the page found the actor may invite (`seats.invitable_people`), not asked again.

    Raises ValidationError (no therapist, time not offered, attendees), Conflict (the time
    was booked meanwhile).
    """
    if patient.therapist_id is None:
        raise ValidationError(_("There is no therapist to book with yet."))
    people = seats.invited_people(actor, patient, attendee_ids, now=now, invitable=invitable)
    seats.check_slot(patient.therapist_id, session_type, starts_at, now=now)
    return Preview(
        starts_at=starts_at,
        session_type=session_type,
        others_invited=[p for p in people if p.id != actor.id],
        same_day=same_day_sessions(actor, starts_at, now=now),
    )


def same_day_sessions(actor: User, starts_at: datetime, *, now: datetime):
    """`actor`'s upcoming sessions on the local day (in their zone) of `starts_at`."""
    tz = ZoneInfo(actor.timezone)
    day = starts_at.astimezone(tz).date()
    return [
        s
        for s in listings.upcoming_for_family(actor, now=now)
        if s.status == SeatStatus.BOOKED and s.appointment.starts_at.astimezone(tz).date() == day
    ]
