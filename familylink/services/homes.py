"""What the home pages say is next: the family member's next session, new readings and
what each patient shares; the patient's planned family sessions and who is coming; the
therapist's sessions today and this week, consents ending soon and families not yet booked.

Each home reads through the gate once: the family home lists its patients with
`access.family_patients` (one disclosure audited per patient shown), the therapist's home
with `access.therapist_patients`, and everything else on
the page is limited to those patients, so nothing is shown without an active consent and
sessions only under the scheduling scope. Query counts stay flat as data grows: each part is
one query whatever the number of patients, sessions or readings.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache, cached_property

from sqlalchemy import Row, and_, bindparam, func, select
from sqlalchemy.orm import joinedload

from familylink.extensions import db
from familylink.models import (
    Appointment,
    AppointmentAttendee,
    AppointmentFamily,
    AppointmentStatus,
    Assignment,
    ConsentRecord,
    LearningModule,
    ModuleProgress,
    ModuleTranslation,
    Scope,
    SeatStatus,
    SessionType,
    User,
)
from familylink.models.scheduling import holds_a_group
from familylink.services import access
from familylink.services.booking.listings import PlannedSeat, coming_to, patient_appointments
from familylink.services.booking.slots import LONGEST_APPOINTMENT, overlapping
from familylink.services.program import local_day, start_of_day


@dataclass
class FamilyHome:
    """The family member's home: patients with their consents, upcoming booked seats (soonest
    first; the first is "next"), and readings released to them that they have not opened.

    Seats and readings are rows of the columns the page shows (`_member_seats_query`,
    `_unopened_readings_query`), not models: the page changes none of them."""

    linked: list[tuple[User, ConsentRecord]]
    # The next seat and at most ALSO_COMING_UP after it; `seats_ahead` counts them all.
    seats: list[Row]
    seats_ahead: int
    new_readings: list[Row]
    # Someone's consent covers scheduling: the page offers a Book button.
    can_book: bool

    @property
    def next_seat(self) -> Row | None:
        return self.seats[0] if self.seats else None

    @property
    def also_coming_up(self) -> list[Row]:
        return self.seats[1:]

    @property
    def more_seats(self) -> int:
        """How many seats ahead the page leaves to the booking list."""
        return self.seats_ahead - len(self.seats)

    @cached_property
    def patients(self) -> dict[int, User]:
        """The patients shown, by id: each seat names its patient from the gate's answer."""
        return {patient.id: patient for patient, _consent in self.linked}


def _booked_and_ahead(now, reach=None, *, seats=AppointmentFamily, appointments=Appointment):
    """A seat still booked in an appointment not cancelled that has not ended.

    `overlapping` bounds the start as well, so PostgreSQL may read the appointments ahead by
    their start instead of every seat a patient ever had. A statement built once passes
    `now` and `reach` as bind parameters (`_ahead_values`). `seats` and `appointments` are
    the models, or their tables' columns in a Core statement of plain rows."""
    return and_(
        seats.status == SeatStatus.BOOKED,
        appointments.status != AppointmentStatus.CANCELLED,
        overlapping(now, reach=reach, appointments=appointments),
    )


def _ahead_values(now: datetime) -> dict[str, datetime]:
    return {"now": now, "reach": now - LONGEST_APPOINTMENT}


# The family home lists the next session and at most this many after it (the booking list
# has them all): a member booked into many weeks still gets a short page and one bounded read.
ALSO_COMING_UP = 5


# The family home's own reads, built once with their values as parameters (as the session
# lookup and the gate's consent reads are): building them cost more than running them.
# Each is a Core statement of the columns the page shows, read as plain rows: loading each
# seat's appointment, session type, therapist and patient as models (every column, one
# object each, through the ORM's execution) cost more than the rest of the page's reads.
@cache
def _member_seats_query():
    seats, appointments, kinds = (
        AppointmentFamily.__table__,
        Appointment.__table__,
        SessionType.__table__,
    )
    seat, appointment, kind = seats.c, appointments.c, kinds.c
    attendee = AppointmentAttendee.__table__.c
    therapist = User.__table__.alias("therapist")
    coming = (
        select(attendee.id)
        .where(
            attendee.seat_id == seat.id,
            attendee.user_id == bindparam("member"),
            attendee.removed_at.is_(None),
        )
        .exists()
    )
    return (
        select(
            seat.id,
            seat.patient_id,
            appointment.starts_at,
            holds_a_group(appointment.capacity).label("is_group"),
            appointment.join_token,
            therapist.c.name.label("therapist_name"),
            kind.duration_minutes,
            kind.mode,
            kind.location,
            # Counted before the LIMIT: every seat ahead, for "n more" on the page.
            func.count().over().label("seats_ahead"),
        )
        .select_from(
            seats.join(appointments, appointment.id == seat.appointment_id)
            .join(kinds, kind.id == appointment.session_type_id)
            .join(therapist, therapist.c.id == appointment.therapist_id)
        )
        .where(
            coming,
            seat.patient_id.in_(bindparam("patients", expanding=True)),
            _booked_and_ahead(
                bindparam("now"), bindparam("reach"), seats=seat, appointments=appointment
            ),
        )
        .order_by(appointment.starts_at, seat.id)
        .limit(1 + ALSO_COMING_UP)
    )


def _member_seats(member: User, patient_ids: set[int], *, now: datetime) -> list[Row]:
    if not patient_ids:
        return []
    parameters = {"member": member.id, "patients": sorted(patient_ids), **_ahead_values(now)}
    return db.session.execute(_member_seats_query(), parameters).all()


@cache
def _unopened_readings_query():
    assignments, modules = Assignment.__table__, LearningModule.__table__
    assignment, module, progress = assignments.c, modules.c, ModuleProgress.__table__.c
    translations = ModuleTranslation.__table__
    # The reader's language when the module has a text in it written from its English file
    # as it is now (the rule of `learning.in_language_all`), else English.
    translated = and_(
        translations.c.module_id == module.id,
        translations.c.language == bindparam("language"),
        translations.c.source_sha256 == module.file_hash,
    )
    opened = (
        select(progress.id)
        .where(
            progress.family_user_id == bindparam("member"),
            progress.patient_id == assignment.patient_id,
            progress.module_id == assignment.module_id,
            progress.opened_at.is_not(None),
            progress.withdrawn_at.is_(None),
        )
        .exists()
    )
    return (
        select(
            assignment.patient_id,
            module.slug,
            func.coalesce(translations.c.title, module.title).label("title"),
            func.coalesce(translations.c.reading_minutes, module.reading_minutes).label(
                "reading_minutes"
            ),
        )
        .select_from(
            assignments.join(modules, module.id == assignment.module_id).outerjoin(
                translations, translated
            )
        )
        .where(
            assignment.family_user_id == bindparam("member"),
            assignment.patient_id.in_(bindparam("patients", expanding=True)),
            assignment.released_at.is_not(None),
            assignment.stopped_at.is_(None),
            module.published.is_(True),
            ~opened,
        )
        .order_by(assignment.released_at.desc(), assignment.id)
    )


def _unopened_readings(member: User, patient_ids: set[int], language: str) -> list[Row]:
    if not patient_ids:
        return []
    parameters = {"member": member.id, "patients": sorted(patient_ids), "language": language}
    return db.session.execute(_unopened_readings_query(), parameters).all()


def family_home(member: User, *, now: datetime, language: str = "en") -> FamilyHome:
    """The family member's home, read through the gate once (each patient shown audited).
    Sessions only for patients whose consent covers scheduling; readings only about patients
    whose consent is in force, titled in `language` where the module has a text in it;
    nothing at all once a consent has ended."""
    linked = access.family_patients(member, now=now, what="home page")
    in_force = access.patients_covered(linked, None)
    scheduling = access.patients_covered(linked, Scope.SCHEDULING)
    seats = _member_seats(member, scheduling, now=now)
    return FamilyHome(
        linked=linked,
        seats=seats,
        seats_ahead=seats[0].seats_ahead if seats else 0,
        new_readings=_unopened_readings(member, in_force, language),
        can_book=bool(scheduling),
    )


def planned_for_patient(patient: User, *, now: datetime) -> list[PlannedSeat]:
    """The patient's upcoming family sessions (a seat for them, booked, not cancelled), with
    who is coming: the family members on the seat whose consent in force covers scheduling
    (`listings.coming_to`, one read of the gate for every session). The patient may see their
    own family. Showing them is a view of the patient's own data, audited once as their home
    page."""
    seats = patient_appointments(
        patient, now=now, page="home", with_attendees=True, only=_booked_and_ahead(now)
    )
    return coming_to(patient, seats, now=now)


@dataclass
class TherapistHome:
    """The therapist's home: their patients, today's and this week's sessions (Monday to
    Sunday in the program's zone), consents ending within `access.EXPIRING_SOON`, and family
    members linked with the scheduling scope who have no session booked ahead."""

    patients: list[User]
    today: list[Appointment]
    week: list[Appointment]
    # (family member, patient, when the consent ends), soonest first.
    ending_soon: list[tuple[User, User, datetime]]
    # (family member, patient) linked for scheduling, nothing booked from now on.
    not_booked: list[tuple[User, User]]


def _week_sessions(therapist: User, start: datetime, end: datetime) -> list[Appointment]:
    return list(
        db.session.scalars(
            select(Appointment)
            # Joined, not selectin: selectin loads in batches of 500, one query each.
            .options(joinedload(Appointment.seats))
            .where(
                Appointment.therapist_id == therapist.id,
                Appointment.status != AppointmentStatus.CANCELLED,
                Appointment.starts_at >= start,
                Appointment.starts_at < end,
            )
            .order_by(Appointment.starts_at, Appointment.id)
        ).unique()
    )


def _booked_ahead(patient_ids: list[int], *, now: datetime) -> set[tuple[int, int]]:
    """(family member id, patient id) of everyone coming to a booked session still ahead."""
    rows = db.session.execute(
        select(AppointmentAttendee.user_id, AppointmentFamily.patient_id)
        .join(AppointmentFamily, AppointmentFamily.id == AppointmentAttendee.seat_id)
        .join(Appointment, Appointment.id == AppointmentFamily.appointment_id)
        .where(
            AppointmentFamily.patient_id.in_(patient_ids),
            AppointmentAttendee.removed_at.is_(None),
            _booked_and_ahead(now),
        )
        .distinct()
    )
    return {(user_id, patient_id) for user_id, patient_id in rows}


def therapist_home(therapist: User, *, now: datetime) -> TherapistHome:
    """The therapist's home, read through the gate once (`access.therapist_patients`, each
    patient audited); the sessions, consents and families shown are their own patients'.
    A fixed number of queries however many patients, families or sessions."""
    patients = access.therapist_patients(therapist, now=now, what="my patients")
    by_id = {patient.id: patient for patient in patients}
    today = local_day(now)
    monday = today - timedelta(days=today.weekday())
    week = _week_sessions(therapist, start_of_day(monday), start_of_day(monday + timedelta(days=7)))
    tomorrow = start_of_day(today + timedelta(days=1))
    in_force = access.family_in_force(list(by_id), now=now) if by_id else []
    ending = sorted(
        (
            (member.user, by_id[member.patient_id], member.ends_at)
            for member in in_force
            if member.ending_soon
        ),
        key=lambda row: (row[2], row[0].name),
    )
    booked = _booked_ahead(list(by_id), now=now) if by_id else set()
    waiting = [
        (member.user, by_id[member.patient_id])
        for member in in_force
        if member.covers(Scope.SCHEDULING) and (member.user.id, member.patient_id) not in booked
    ]
    return TherapistHome(
        patients=patients,
        today=[a for a in week if start_of_day(today) <= a.starts_at < tomorrow],
        week=week,
        ending_soon=ending,
        not_booked=waiting,
    )
