"""What people see of appointments: a family member's upcoming seats, the patient's own
sessions, the groups open to a patient's family, and the therapist's calendar (each patient
shown is a view of their data, audited)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import cache, partial
from typing import NamedTuple

from sqlalchemy import Row, and_, bindparam, func, select
from sqlalchemy.orm import contains_eager, joinedload, lazyload

from familylink.extensions import db
from familylink.models import (
    Appointment,
    AppointmentAttendee,
    AppointmentFamily,
    AppointmentSeries,
    AppointmentStatus,
    ConsentRecord,
    Scope,
    SessionMode,
    SessionType,
    User,
)
from familylink.models.scheduling import booked_seats, holds_a_group, recorded_attendance
from familylink.services import access, audit
from familylink.services.booking.rooms import session_is_over
from familylink.services.booking.slots import (
    LONGEST_APPOINTMENT,
    overlapping,
    overlapping_parameters,
    overlapping_values,
)


def upcoming_for_family(
    actor: User,
    *,
    now: datetime,
    what: str | None = None,
    booked: bool = False,
    linked: list[tuple[User, ConsentRecord]] | None = None,
) -> list[AppointmentFamily]:
    """Seats the family member attends ahead, for patients whose consent covers scheduling
    now: the gate decides which, and with `what` records the disclosure of each patient
    shown. `booked`: only booked seats in sessions still scheduled (what a calendar holds).

    `linked`: the gate's answer the caller already holds, `access.family_patients` asked
    earlier in this request about this same `actor` at this same `now`: each patient with
    the consent in force to them (those not covering scheduling are left out here). The
    consents are then not read again; that call audited the patients, so `what` is None
    with it. Without it the gate reads the consents itself."""
    read = partial(_attended_seats, actor, now=now, booked=booked)
    return access.family_records(
        actor, read, now=now, what=what, scope=Scope.SCHEDULING, linked=linked
    )[1]


def _attended_seats(
    actor: User, patient_ids: list[int], *, now: datetime, booked: bool
) -> list[AppointmentFamily]:
    seats = db.session.scalars(
        select(AppointmentFamily)
        .options(
            contains_eager(AppointmentFamily.appointment).joinedload(Appointment.session_type),
            contains_eager(AppointmentFamily.appointment).joinedload(Appointment.therapist),
        )
        .join(AppointmentAttendee, AppointmentAttendee.seat_id == AppointmentFamily.id)
        .join(Appointment, Appointment.id == AppointmentFamily.appointment_id)
        .where(
            AppointmentAttendee.user_id == actor.id,
            AppointmentAttendee.removed_at.is_(None),
            AppointmentFamily.patient_id.in_(patient_ids),
            Appointment.ends_at > now,
        )
        .order_by(Appointment.starts_at)
    ).unique()
    if not booked:
        return list(seats)
    return [s for s in seats if s.on_calendar]


def _week_of_series(appointment):
    """THE number of an appointment's week in its weekly series (1 for the first): its
    place among the series' appointments in the order `book_series` wrote them (by id), as
    "move all future" counts them (`series._week_offsets`), never its date: a week moved on
    its own past its neighbour keeps its number, and a cancelled week keeps its own.
    `appointment` is the model or its table's columns in a Core statement; 0 for an
    appointment of no series."""
    week = Appointment.__table__.alias("week_of_series")
    return (
        select(func.count(week.c.id))
        .where(
            week.c.weekly_series_id == appointment.weekly_series_id,
            week.c.id <= appointment.id,
        )
        .scalar_subquery()
    )


@cache
def _series_places_query():
    return (
        select(Appointment.id, _week_of_series(Appointment), AppointmentSeries.count)
        .join(AppointmentSeries, AppointmentSeries.id == Appointment.weekly_series_id)
        .where(Appointment.id.in_(bindparam("shown", expanding=True)))
    )


def series_places(appointments: list[Appointment]) -> dict[int, tuple[int, int]]:
    """For each appointment of the list that is a week of a weekly series: (which week it
    is, how many weeks the series has), for "weekly, 2 of 6". One query for the whole list,
    none per row; a cancelled week keeps its number."""
    shown = sorted(a.id for a in appointments if a.weekly_series_id is not None)
    if not shown:
        return {}
    rows = db.session.execute(_series_places_query(), {"shown": shown})
    return {id_: (number, weeks) for id_, number, weeks in rows}


def open_groups(patient: User, *, now: datetime) -> list[Appointment]:
    """Upcoming groups the patient's family may join (the gate says which)."""
    return list(
        db.session.scalars(
            select(Appointment)
            .where(access.groups_open_to(patient), Appointment.starts_at > now)
            .order_by(Appointment.starts_at)
        ).unique()
    )


def patient_appointments(
    patient: User,
    *,
    now: datetime,
    page: str = "sessions",
    with_attendees: bool = False,
    only=None,
) -> list[AppointmentFamily]:
    """The patient's upcoming family sessions (audited as a view of their own data), each
    with its appointment, session type and therapist loaded in the same query (and with
    `with_attendees`, the family members on the seat): none read again per session. `only`:
    a further condition on the seat and its appointment (the home's: still booked)."""
    audit.record_patient_views(patient, [patient.id], page=page, now=now)
    appointment = contains_eager(AppointmentFamily.appointment)
    loading = [
        appointment.joinedload(Appointment.session_type),
        appointment.joinedload(Appointment.therapist),
    ]
    if with_attendees:
        attendees = joinedload(AppointmentFamily.attendees)
        loading.append(attendees.joinedload(AppointmentAttendee.user))
    return list(
        db.session.scalars(
            select(AppointmentFamily)
            .options(*loading)
            .join(Appointment, Appointment.id == AppointmentFamily.appointment_id)
            .where(AppointmentFamily.patient_id == patient.id, Appointment.ends_at > now)
            .where(*([] if only is None else [only]))
            .order_by(Appointment.starts_at, AppointmentFamily.id)
        ).unique()
    )


class PlannedSeat(NamedTuple):
    """A family session of the patient's as their pages show it: the seat, and who is
    coming (`coming_to`)."""

    seat: AppointmentFamily
    coming: list[User]


def coming_to(patient: User, seats: list[AppointmentFamily], *, now: datetime) -> list[PlannedSeat]:
    """Each seat with the family members on it whose consent in force covers scheduling, as
    the gate answers it now (`access.family_with_scope`, one query for every seat): expiry
    takes effect at once, so a member whose consent has ended is no longer shown as coming
    before the sweep takes them off the seat. The patient may see their own family."""
    if not seats:
        return []  # no session, no question for the gate
    allowed = {m.id for m in access.family_with_scope(patient, Scope.SCHEDULING, now=now)}
    return [
        PlannedSeat(seat, [a.user for a in seat.present_attendees if a.user_id in allowed])
        for seat in seats
    ]


def patient_sessions(patient: User, *, now: datetime) -> list[PlannedSeat]:
    """The patient's sessions page: their upcoming family sessions (cancelled ones too, so
    they see what changed) with who is coming (`coming_to`)."""
    seats = patient_appointments(patient, now=now, with_attendees=True)
    return coming_to(patient, seats, now=now)


# --- The therapist's calendar ----------------------------------------------------------------


# Built once, with parameters: the calendar feed reads the therapist's appointments as models
# (its calendar file needs them), the calendar page the start of the next session.
@cache
def _therapist_appointments_query():
    return (
        select(Appointment)
        .options(
            # Every row's therapist is the one asking, already in the session: not joined
            # again for each row (reading it finds it in the session, without a query).
            lazyload(Appointment.therapist),
            joinedload(Appointment.seats)
            .joinedload(AppointmentFamily.attendees)
            .joinedload(AppointmentAttendee.user),
        )
        .where(Appointment.therapist_id == bindparam("therapist"), overlapping_parameters())
        .order_by(Appointment.starts_at)
    )


@cache
def _next_session_start_query():
    return (
        select(Appointment.starts_at)
        .where(
            Appointment.therapist_id == bindparam("therapist"),
            Appointment.status != AppointmentStatus.CANCELLED,
            overlapping(bindparam("now"), reach=bindparam("reach")),
        )
        .order_by(Appointment.starts_at)
        .limit(1)
    )


def therapist_appointments(
    therapist: User,
    start: datetime,
    end: datetime,
    *,
    now: datetime | None = None,
    page: str = "calendar",
) -> list[Appointment]:
    """The therapist's appointments in [start, end), with seats and attendees loaded.

    Showing them is a view of each patient's data: one audit row per patient shown.
    """
    parameters = {"therapist": therapist.id, **overlapping_values(start, end)}
    appointments = list(db.session.scalars(_therapist_appointments_query(), parameters).unique())
    shown = [seat.patient_id for a in appointments for seat in a.seats]
    audit.record_patient_views(therapist, shown, page=page, now=now)
    return appointments


@dataclass(frozen=True, slots=True)
class CalendarPerson:
    """Someone coming to a seat, as the calendar names them."""

    id: int
    name: str


@dataclass(slots=True)
class CalendarSeat:
    """One family's seat as the calendar shows it: the columns the page needs, with the
    family members coming (`attendees`: not removed), never the models."""

    id: int
    patient_id: int
    patient_name: str
    status: str
    attendance: str | None
    note: str | None
    appointment: CalendarAppointment
    attendees: list[CalendarPerson] = field(default_factory=list)

    @property
    def recorded_attendance(self) -> str | None:
        return recorded_attendance(self.status, self.attendance)

    @classmethod
    def of(cls, row: Row, appointment: CalendarAppointment) -> CalendarSeat:
        """The seat of one of `_calendar_rows_query`'s rows."""
        return cls(
            row.seat_id,
            row.patient_id,
            row.patient_name,
            row.seat_status,
            row.attendance,
            row.note,
            appointment,
        )


@dataclass(slots=True)
class CalendarAppointment:
    """One session as the calendar shows it (what `week_grid`, `series_places`,
    `taken_places_of` and `therapist_changes` read of an appointment), its seats in order."""

    id: int
    starts_at: datetime
    ends_at: datetime
    status: str
    capacity: int
    is_group: bool
    weekly_series_id: int | None
    join_token: str | None
    # Whether its therapist pasted a room link: the page says only that, so the link is
    # not decrypted for it.
    has_room_link: bool
    session_type_name: str
    mode: str
    # (which week, of how many) for a week of a weekly series, else None ("weekly, 2 of 6").
    series_place: tuple[int, int] | None
    seats: list[CalendarSeat] = field(default_factory=list)

    @classmethod
    def of(cls, row: Row) -> CalendarAppointment:
        """The appointment of one of `_calendar_rows_query`'s rows (its seats added after)."""
        place = None if row.series_weeks is None else (row.series_week, row.series_weeks)
        return cls(
            row.id,
            row.starts_at,
            row.ends_at,
            row.status,
            row.capacity,
            row.is_group,
            row.weekly_series_id,
            row.join_token,
            bool(row.has_room_link),
            row.session_type_name,
            row.mode,
            place,
        )

    @property
    def active_seats(self) -> list[CalendarSeat]:
        return booked_seats(self.seats)

    def room_may_open(self, now: datetime) -> bool:
        """A video session whose room may still open: not cancelled, not yet ended (after
        that its pasted link is forgotten, and none can be pasted)."""
        return self.mode == SessionMode.VIDEO and not session_is_over(
            self.ends_at, self.status, now
        )


# The calendar's one read of its week, built once with parameters: the columns the page
# shows of each appointment (with its place in a weekly series), its seats (with the
# patient's name) and the family members coming, as plain rows. Loading them as models
# (appointments, seats, attendees, patients and people, every column, through the ORM's
# identity map) cost more than the rest of the page's reads together, and the places in a
# series were one more statement.
@cache
def _calendar_rows_query():
    appointments, kinds, seats, series = (
        Appointment.__table__,
        SessionType.__table__,
        AppointmentFamily.__table__,
        AppointmentSeries.__table__,
    )
    appointment, kind, seat = appointments.c, kinds.c, seats.c
    attendees = AppointmentAttendee.__table__
    patients, people = User.__table__.alias("patient"), User.__table__.alias("person")
    return (
        select(
            appointment.id,
            appointment.starts_at,
            appointment.ends_at,
            appointment.status,
            appointment.capacity,
            holds_a_group(appointment.capacity).label("is_group"),
            appointment.weekly_series_id,
            appointment.join_token,
            appointment.room_link.is_not(None).label("has_room_link"),
            kind.name.label("session_type_name"),
            kind.mode,
            _week_of_series(appointment).label("series_week"),
            series.c.count.label("series_weeks"),
            seat.id.label("seat_id"),
            seat.patient_id,
            patients.c.name.label("patient_name"),
            seat.status.label("seat_status"),
            seat.attendance,
            seat.note,
            people.c.id.label("person_id"),
            people.c.name.label("person_name"),
        )
        .select_from(
            appointments.join(kinds, kind.id == appointment.session_type_id)
            .outerjoin(series, series.c.id == appointment.weekly_series_id)
            .outerjoin(seats, seat.appointment_id == appointment.id)
            .outerjoin(patients, patients.c.id == seat.patient_id)
            .outerjoin(
                attendees,
                and_(attendees.c.seat_id == seat.id, attendees.c.removed_at.is_(None)),
            )
            .outerjoin(people, people.c.id == attendees.c.user_id)
        )
        .where(
            appointment.therapist_id == bindparam("therapist"),
            overlapping(
                bindparam("start"),
                bindparam("end"),
                reach=bindparam("reach"),
                appointments=appointment,
            ),
        )
        .order_by(appointment.starts_at, appointment.id, seat.id, attendees.c.id)
    )


def _calendar_appointments(
    therapist: User, start: datetime, end: datetime
) -> list[CalendarAppointment]:
    """The therapist's appointments in [start, end), soonest first, each with its seats (in
    the order they were taken) and their family members coming (in the order they were
    added), from one statement's rows."""
    parameters = {"therapist": therapist.id, **overlapping_values(start, end)}
    appointments: dict[int, CalendarAppointment] = {}
    seats: dict[int, CalendarSeat] = {}
    for row in db.session.execute(_calendar_rows_query(), parameters):
        appointment = appointments.get(row.id)
        if appointment is None:
            appointment = appointments[row.id] = CalendarAppointment.of(row)
        if row.seat_id is None:
            continue
        seat = seats.get(row.seat_id)
        if seat is None:
            seat = seats[row.seat_id] = CalendarSeat.of(row, appointment)
            appointment.seats.append(seat)
        if row.person_id is not None:
            seat.attendees.append(CalendarPerson(row.person_id, row.person_name))
    return list(appointments.values())


@dataclass
class SeatPeople:
    coming: list[access.InForce] = field(default_factory=list)
    # Allowed to take part (scheduling scope) but not coming: who may need a nudge.
    not_coming: list[access.InForce] = field(default_factory=list)
    # Coming, but whose consent no longer covers it (should not happen; shown if it does).
    not_allowed: list[CalendarPerson] = field(default_factory=list)


def therapist_calendar(
    therapist: User, start: datetime, end: datetime, *, now: datetime
) -> tuple[list[CalendarAppointment], dict[int, SeatPeople]]:
    """The therapist's appointments between start and end and, per seat, who is coming, who
    else may come, and whose consent ends soon. A fixed number of queries however many
    appointments and families; showing them is a view of each patient's data, one audit row
    per patient shown. The appointments and seats are plain rows of what the page shows
    (`CalendarAppointment`): the page changes none of them."""
    appointments = _calendar_appointments(therapist, start, end)
    shown = [seat.patient_id for a in appointments for seat in a.seats]
    audit.record_patient_views(therapist, shown, page="calendar", now=now)
    in_force: dict[int, dict[int, access.InForce]] = {}
    for member in access.family_in_force(sorted(set(shown)), now=now):
        in_force.setdefault(member.patient_id, {})[member.user.id] = member
    people: dict[int, SeatPeople] = {}
    for appointment in appointments:
        for seat in appointment.seats:
            allowed = in_force.get(seat.patient_id, {})
            entry = people[seat.id] = SeatPeople()
            coming_ids = set()
            for attendee in seat.attendees:
                coming_ids.add(attendee.id)
                member = allowed.get(attendee.id)
                if member is not None and member.covers(Scope.SCHEDULING):
                    entry.coming.append(member)
                else:
                    entry.not_allowed.append(attendee)
            entry.not_coming = [
                m
                for uid, m in allowed.items()
                if uid not in coming_ids and m.covers(Scope.SCHEDULING)
            ]
    return appointments, people


def next_session_start(therapist: User, *, now: datetime) -> datetime | None:
    """When the therapist's next session (not cancelled, not yet over) starts, or None: the
    calendar opens on its week. One query; nothing about a patient is read. `overlapping`
    bounds the start too, so the index is read from now on rather than through the whole
    history before it."""
    return db.session.scalar(
        _next_session_start_query(),
        {"therapist": therapist.id, "now": now, "reach": now - LONGEST_APPOINTMENT},
    )
