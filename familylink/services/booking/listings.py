"""What people see of appointments: a family member's upcoming seats, the patient's own
sessions, the groups open to a patient's family, and the therapist's calendar (each patient
shown is a view of their data, audited)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import cache, partial

from sqlalchemy import bindparam, func, select
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
    User,
)
from familylink.services import access, audit
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


@cache
def _series_places_query():
    week = func.row_number().over(
        partition_by=Appointment.weekly_series_id, order_by=(Appointment.starts_at, Appointment.id)
    )
    return (
        select(Appointment.id, week, AppointmentSeries.count)
        .join(AppointmentSeries, AppointmentSeries.id == Appointment.weekly_series_id)
        .where(Appointment.weekly_series_id.in_(bindparam("series", expanding=True)))
    )


def series_places(appointments: list[Appointment]) -> dict[int, tuple[int, int]]:
    """For each appointment of the list that is a week of a weekly series: (which week it
    is, how many weeks the series has), for "weekly, 2 of 6". One query for the whole list,
    none per row; a cancelled week keeps its number."""
    series_ids = {a.weekly_series_id for a in appointments if a.weekly_series_id is not None}
    if not series_ids:
        return {}
    rows = db.session.execute(_series_places_query(), {"series": sorted(series_ids)})
    shown = {a.id for a in appointments}
    return {id_: (number, weeks) for id_, number, weeks in rows if id_ in shown}


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
    patient: User, *, now: datetime, page: str = "sessions"
) -> list[AppointmentFamily]:
    """The patient's upcoming family sessions (audited as a view of their own data)."""
    audit.record_patient_views(patient, [patient.id], page=page, now=now)
    return list(
        db.session.scalars(
            select(AppointmentFamily)
            .join(Appointment, Appointment.id == AppointmentFamily.appointment_id)
            .where(AppointmentFamily.patient_id == patient.id, Appointment.ends_at > now)
            .order_by(Appointment.starts_at)
        ).unique()
    )


# --- The therapist's calendar ----------------------------------------------------------------


# The therapist's calendar asks these on every request: built once, with parameters.
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


@dataclass(frozen=True)
class FamilyMember:
    """A family member on the therapist's calendar, with what their consent allows."""

    user: User
    scopes: tuple[str, ...]
    ends_at: datetime | None
    ending_soon: bool


@dataclass
class SeatPeople:
    coming: list[FamilyMember] = field(default_factory=list)
    # Allowed to take part (scheduling scope) but not coming: who may need a nudge.
    not_coming: list[FamilyMember] = field(default_factory=list)
    # Coming, but whose consent no longer covers it (should not happen; shown if it does).
    not_allowed: list[User] = field(default_factory=list)


def therapist_calendar(
    therapist: User, start: datetime, end: datetime, *, now: datetime
) -> tuple[list[Appointment], dict[int, SeatPeople]]:
    """The therapist's appointments between start and end and, per seat, who is coming, who
    else may come, and whose consent ends soon. A fixed number of queries however many
    appointments and families (therapist_appointments audits each patient shown)."""
    appointments = therapist_appointments(therapist, start, end, now=now, page="calendar")
    patient_ids = sorted({s.patient_id for a in appointments for s in a.seats})
    in_force: dict[int, dict[int, FamilyMember]] = {}
    for person, patient_id, record, ends_at in access.family_in_force(patient_ids, now=now):
        soon = ends_at is not None and ends_at - access.EXPIRING_SOON <= now
        member = FamilyMember(person, tuple(record.scopes), ends_at, soon)
        in_force.setdefault(patient_id, {})[person.id] = member
    people: dict[int, SeatPeople] = {}
    for appointment in appointments:
        for seat in appointment.seats:
            allowed = in_force.get(seat.patient_id, {})
            entry = people[seat.id] = SeatPeople()
            coming_ids = set()
            for attendee in seat.present_attendees:
                coming_ids.add(attendee.user_id)
                member = allowed.get(attendee.user_id)
                if member is not None and Scope.SCHEDULING in member.scopes:
                    entry.coming.append(member)
                else:
                    entry.not_allowed.append(attendee.user)
            entry.not_coming = [
                m
                for uid, m in allowed.items()
                if uid not in coming_ids and Scope.SCHEDULING in m.scopes
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
