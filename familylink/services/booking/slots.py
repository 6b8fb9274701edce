"""Free time: a therapist's availability minus their busy times, and the write lock that
keeps two bookings from both seeing the same free time (see `seats` for how)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    Boolean,
    Date,
    Integer,
    Time,
    and_,
    bindparam,
    cast,
    null,
    select,
    text,
    union_all,
)
from sqlalchemy.exc import IntegrityError

from familylink.extensions import db
from familylink.models import (
    Appointment,
    AppointmentStatus,
    AvailabilityOverride,
    AvailabilityWindow,
    SessionType,
)
from familylink.models.types import UTCDateTime
from familylink.services.errors import Conflict
from familylink.services.program import get_program
from familylink.services.scheduling import Override, Window, free_slots

TAKEN = _l("Sorry, someone else just booked that time. Please choose another.")

# The longest session type allowed (checked by catalog.check_session_type).
LONGEST_SESSION_MINUTES = 480
# No appointment lasts this long (more than the longest session type), so one that overlaps
# a period started less than this before it: a bound on starts_at, which the index on
# (therapist_id, starts_at) can use where a bound on ends_at alone could not.
LONGEST_APPOINTMENT = timedelta(days=1)
# How far from `near` the bookings that can touch a slot found near it lie: `free_slots`
# looks at the local days either side of its own (at most 2 days and 14 hours away in the
# widest time zones), plus the buffer (at most 2 hours).
NEAR_REACH = timedelta(days=3)


def buffer() -> timedelta:
    """Free time kept between two sessions of one therapist (a program setting)."""
    return timedelta(minutes=get_program().buffer_minutes)


# --- Locking -------------------------------------------------------------------------------


def serialize_booking() -> None:
    """Hold the database write lock for the rest of this transaction (SQLite only).

    pysqlite opens a transaction only at the first write; if none is open, BEGIN IMMEDIATE
    takes the write lock now (waiting for other writers). If one is open, this connection
    already holds the write lock.
    """
    connection = db.session.connection()
    if connection.dialect.name != "sqlite":
        return
    raw = connection.connection.dbapi_connection
    if not raw.in_transaction:
        raw.execute("BEGIN IMMEDIATE")


# The first key of the advisory locks that serialize one therapist's bookings (the second is
# the therapist's id); any other advisory lock in the app must use another first key.
THERAPIST_LOCKS = 19


def lock_therapist(therapist_id: int) -> None:
    """Serialize, to the end of this transaction, everything that inserts or moves one
    therapist's appointments: taken first, before any appointment row is written, so two
    such transactions never both reach the exclusion constraint and wait on each other
    there (a deadlock). PostgreSQL: a transaction-level advisory lock keyed on the
    therapist; SQLite: the database write lock (`serialize_booking`)."""
    connection = db.session.connection()
    if connection.dialect.name != "postgresql":
        serialize_booking()
        return
    connection.execute(
        text("SELECT pg_advisory_xact_lock(:space, :therapist)"),
        {"space": THERAPIST_LOCKS, "therapist": therapist_id},
    )


def flush_or_conflict(message: str) -> None:
    """Flush; a constraint refusing the write (PostgreSQL's exclusion constraint, a unique
    request key) becomes Conflict(message). The caller's savepoint (`web.run`'s) undoes the
    refused write and keeps the session usable: one taken here could not, since SQLAlchemy
    flushes pending rows before it begins a savepoint."""
    try:
        db.session.flush()
    except IntegrityError:
        raise Conflict(str(message))  # a lazy message becomes the reader's words now


# --- Slots ---------------------------------------------------------------------------------


# The booking page reads them on every request: one statement built once, the therapist a
# parameter, and only the columns the slot computation uses (no ORM objects). Weekly windows
# (no `day`) and date overrides (no `weekday`) come back together, with the bookings
# (`starts_at`, `ends_at`) in the same statement (`_SLOT_READS`).
def _availability_selects(*more):
    """The weekly windows' and the date overrides' selects, each with `more` columns after
    its own (the NULLs a union with the bookings needs)."""
    return (
        select(
            AvailabilityWindow.weekday,
            cast(null(), Date).label("day"),
            cast(null(), Boolean).label("off"),
            AvailabilityWindow.start_time,
            AvailabilityWindow.end_time,
            *more,
        ).where(AvailabilityWindow.therapist_id == bindparam("therapist")),
        select(
            cast(null(), Integer),
            AvailabilityOverride.day,
            AvailabilityOverride.off,
            AvailabilityOverride.start_time,
            AvailabilityOverride.end_time,
            *more,
        ).where(AvailabilityOverride.therapist_id == bindparam("therapist")),
    )


def overlapping(start, end=None, *, reach=None, appointments=Appointment):
    """The condition for appointments overlapping [start, end) (no end: from start on).

    A statement built once passes bind parameters for all three, filled with
    `overlapping_values`. `appointments` is what the statement reads them as: the model, or
    its table's columns (`Appointment.__table__.c`) in a Core statement of plain rows."""
    condition = and_(
        appointments.starts_at > (start - LONGEST_APPOINTMENT if reach is None else reach),
        appointments.ends_at > start,
    )
    return condition if end is None else and_(condition, appointments.starts_at < end)


def overlapping_values(start: datetime, end: datetime) -> dict[str, datetime]:
    """The parameters of `overlapping_parameters()`."""
    return {"reach": start - LONGEST_APPOINTMENT, "start": start, "end": end}


def overlapping_parameters():
    return overlapping(bindparam("start"), bindparam("end"), reach=bindparam("reach"))


# The booking page reads them on every request too: built once, with parameters; keyed by
# (one appointment left out, an end given).
_BUSY = select(Appointment.starts_at, Appointment.ends_at).where(
    Appointment.therapist_id == bindparam("therapist"),
    Appointment.status == AppointmentStatus.SCHEDULED,
    overlapping(bindparam("start"), reach=bindparam("reach")),
)
_BUSY_STATEMENTS = {
    (False, False): _BUSY,
    (True, False): _BUSY.where(Appointment.id != bindparam("exclude")),
    (False, True): _BUSY.where(Appointment.starts_at < bindparam("until")),
    (True, True): _BUSY.where(
        Appointment.id != bindparam("exclude"), Appointment.starts_at < bindparam("until")
    ),
}


def _with_availability(busy_statement):
    """One statement for a slot computation's two reads: the weekly windows and date
    overrides (NULL bookings), then the bookings (NULL windows). Each part keeps its own
    index and parameters; one round trip instead of two. The first select gives the union's
    column types, so the NULL bookings there are typed as the bookings are."""
    instant = UTCDateTime()
    windows, overrides = _availability_selects(
        cast(null(), instant).label("starts_at"), cast(null(), instant).label("ends_at")
    )
    nothing = [cast(null(), kind) for kind in (Integer, Date, Boolean, Time, Time)]
    return union_all(
        windows,
        overrides,
        busy_statement.with_only_columns(*nothing, *busy_statement.selected_columns),
    )


_SLOT_READS = {key: _with_availability(statement) for key, statement in _BUSY_STATEMENTS.items()}


def _busy_values(therapist_id, since, exclude_id, until) -> tuple[tuple[bool, bool], dict]:
    """The key of the bookings' statement and its parameters (see `busy`)."""
    start = since - timedelta(days=1)
    values = {"therapist": therapist_id, "start": start, "reach": start - LONGEST_APPOINTMENT}
    if exclude_id is not None:
        values["exclude"] = exclude_id
    if until is not None:
        values["until"] = until
    return (exclude_id is not None, until is not None), values


def busy(
    therapist_id: int,
    *,
    since: datetime,
    exclude_id: int | None = None,
    until: datetime | None = None,
):
    """(start, end) of the therapist's scheduled appointments that overlap `since` - 1 day
    or later (but `exclude_id`, the one being moved), starting before `until` if given."""
    key, values = _busy_values(therapist_id, since, exclude_id, until)
    return [(s, e) for s, e in db.session.execute(_BUSY_STATEMENTS[key], values).all()]


def _availability_and_busy(therapist_id: int, *, since, exclude_id=None, until=None):
    """The weekly windows, the date overrides and `busy`, in one statement: (windows,
    overrides, bookings)."""
    key, values = _busy_values(therapist_id, since, exclude_id, until)
    windows: list[Window] = []
    overrides: list[Override] = []
    booked: list[tuple[datetime, datetime]] = []
    # `.all()`: the rows fetched in one call, not one call (and a row iterator step) each.
    for weekday, day, off, start, end, starts_at, ends_at in db.session.execute(
        _SLOT_READS[key], values
    ).all():
        if starts_at is not None:
            booked.append((starts_at, ends_at))
        elif day is None:
            windows.append(Window(weekday, start, end))
        else:
            overrides.append(Override(day, off, start, end))
    return windows, overrides, booked


def slots_for(
    therapist_id: int,
    session_type: SessionType,
    *,
    now: datetime,
    exclude_id: int | None = None,
    near: datetime | None = None,
) -> list[datetime]:
    """The therapist's free slots for that session type (with `near`: only around it)."""
    find = slot_finder(therapist_id, session_type, now=now, exclude_id=exclude_id, near=near)
    return find(near=near)


def slot_finder(
    therapist_id: int,
    session_type: SessionType,
    *,
    now: datetime,
    exclude_id: int | None = None,
    horizon: timedelta | None = None,
    notice: timedelta | None = None,
    near: datetime | None = None,
) -> Callable[..., list[datetime]]:
    """Reads the therapist's availability and bookings once (one statement,
    `_availability_and_busy`) and returns `find(near=None, days=None)`: the free slots of
    the whole horizon, of the days around `near`, or of the program's local days `days`
    (first, last). A page that looks for the first week with a free time asks week after
    week without asking the database again.
    `horizon` replaces the program's booking horizon (a weekly series reaches past it);
    `notice` the program's minimum notice (a therapist's own move needs none).

    Only the bookings that can touch a slot are read: none starting after the horizon's
    last slot (and its buffer) ends; with `near`, only those around it, for a `find`
    asked about `near` alone (a booking's check then costs the same however many
    sessions the therapist has ahead)."""
    program = get_program()
    if horizon is None:
        horizon = timedelta(days=program.booking_horizon_days)
    if notice is None:
        notice = timedelta(hours=program.minimum_notice_hours)
    since, until = now, now + horizon + timedelta(minutes=program.buffer_minutes)
    if near is not None:
        since, until = max(since, near - NEAR_REACH), min(until, near + NEAR_REACH)
    read = _availability_and_busy(therapist_id, since=since, until=until, exclude_id=exclude_id)
    return _finder(read, session_type, now=now, horizon=horizon, notice=notice, program=program)


def _finder(read, session_type: SessionType, *, now, horizon, notice, program):
    """`slot_finder`'s `find`, over what `_availability_and_busy` read (`read`)."""
    windows, overrides, booked = read
    gap = timedelta(minutes=program.buffer_minutes)  # `buffer()`, the settings read once

    def find(*, near: datetime | None = None, days: tuple[date, date] | None = None):
        return free_slots(
            windows,
            overrides,
            booked,
            duration=timedelta(minutes=session_type.duration_minutes),
            buffer=gap,
            min_notice=notice,
            horizon=horizon,
            now=now,
            zone=program.timezone,
            near=near,
            days=days,
        )

    return find


def free_time(therapist_id: int, session_type: SessionType, *, now: datetime, horizon: timedelta):
    """What checking many times by one booking's rules needs (`weeks.WeekChecker`), read in
    one statement: `find()` of the free slots of `horizon` (`slot_finder`'s, computed
    only when asked), the therapist's date overrides (time off and extra hours) and (start,
    end) of their scheduled appointments (`busy(since=now)`'s, all of them)."""
    program = get_program()
    read = _availability_and_busy(therapist_id, since=now)
    notice = timedelta(hours=program.minimum_notice_hours)
    find = _finder(read, session_type, now=now, horizon=horizon, notice=notice, program=program)
    return find, read[1], read[2]


def taken(therapist_id: int, starts_at: datetime, session_type: SessionType) -> bool:
    """True when a booked appointment (with its buffer) covers that time."""
    ends_at = starts_at + timedelta(minutes=session_type.duration_minutes)
    gap = buffer()
    return any(
        s - gap < ends_at and starts_at < e + gap for s, e in busy(therapist_id, since=starts_at)
    )


def overlaps(appointment: Appointment, starts_at: datetime) -> bool:
    """True when the appointment, moved to starts_at, would overlap another of the
    therapist's (no buffer: the therapist's own choice)."""
    ends_at = starts_at + timedelta(minutes=appointment.session_type.duration_minutes)
    return any(
        s < ends_at and starts_at < e
        for s, e in busy(appointment.therapist_id, since=starts_at, exclude_id=appointment.id)
    )
