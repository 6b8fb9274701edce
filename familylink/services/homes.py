"""What the home pages say is next: the family member's next session, new readings and
what each patient shares; the patient's planned family sessions and who is coming.

Each home reads through the gate once: the family home lists its patients with
`access.family_patients` (one disclosure audited per patient shown), and everything else on
the page is limited to those patients, so nothing is shown without an active consent and
sessions only under the scheduling scope. Query counts stay flat as data grows: each part is
one query whatever the number of patients, sessions or readings.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, select
from sqlalchemy.orm import contains_eager, selectinload

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
    Scope,
    SeatStatus,
    User,
)
from familylink.services import access, audit


@dataclass
class FamilyHome:
    """The family member's home: patients with their consents, upcoming booked seats (soonest
    first; the first is "next"), and readings released to them that they have not opened."""

    linked: list[tuple[User, ConsentRecord]]
    seats: list[AppointmentFamily]
    new_readings: list[Assignment]
    # Someone's consent covers scheduling: the page offers a Book button.
    can_book: bool

    @property
    def next_seat(self) -> AppointmentFamily | None:
        return self.seats[0] if self.seats else None


def _booked_and_ahead(now: datetime):
    """A seat still booked in an appointment not cancelled that has not ended."""
    return and_(
        AppointmentFamily.status == SeatStatus.BOOKED,
        Appointment.status != AppointmentStatus.CANCELLED,
        Appointment.ends_at > now,
    )


def _member_seats(member: User, patient_ids: set[int], *, now: datetime):
    if not patient_ids:
        return []
    return list(
        db.session.scalars(
            select(AppointmentFamily)
            .options(contains_eager(AppointmentFamily.appointment))
            .join(Appointment, Appointment.id == AppointmentFamily.appointment_id)
            .join(AppointmentAttendee, AppointmentAttendee.seat_id == AppointmentFamily.id)
            .where(
                AppointmentAttendee.user_id == member.id,
                AppointmentAttendee.removed_at.is_(None),
                AppointmentFamily.patient_id.in_(patient_ids),
                _booked_and_ahead(now),
            )
            .order_by(Appointment.starts_at, AppointmentFamily.id)
        ).unique()
    )


def _unopened_readings(member: User, patient_ids: set[int]) -> list[Assignment]:
    if not patient_ids:
        return []
    opened = (
        select(ModuleProgress.id)
        .where(
            ModuleProgress.family_user_id == member.id,
            ModuleProgress.patient_id == Assignment.patient_id,
            ModuleProgress.module_id == Assignment.module_id,
            ModuleProgress.opened_at.is_not(None),
        )
        .exists()
    )
    return list(
        db.session.scalars(
            select(Assignment)
            .join(LearningModule, LearningModule.id == Assignment.module_id)
            .where(
                Assignment.family_user_id == member.id,
                Assignment.patient_id.in_(patient_ids),
                Assignment.released_at.is_not(None),
                Assignment.stopped_at.is_(None),
                LearningModule.published.is_(True),
                ~opened,
            )
            .order_by(Assignment.released_at.desc(), Assignment.id)
        ).unique()
    )


def family_home(member: User, *, now: datetime) -> FamilyHome:
    """The family member's home, read through the gate once (each patient shown audited).
    Sessions only for patients whose consent covers scheduling; readings only about patients
    whose consent is in force; nothing at all once a consent has ended."""
    linked = access.family_patients(member, now=now, what="home page")
    in_force = {patient.id for patient, _consent in linked}
    scheduling = {patient.id for patient, record in linked if Scope.SCHEDULING in record.scopes}
    return FamilyHome(
        linked=linked,
        seats=_member_seats(member, scheduling, now=now),
        new_readings=_unopened_readings(member, in_force),
        can_book=bool(scheduling),
    )


def planned_for_patient(patient: User, *, now: datetime) -> list[AppointmentFamily]:
    """The patient's upcoming family sessions (a seat for them, booked, not cancelled), with
    who is coming loaded: the patient may see their own family. Showing them is a view of the
    patient's own data, audited once as their home page."""
    audit.record_patient_views(patient, [patient.id], page="home", now=now)
    return list(
        db.session.scalars(
            select(AppointmentFamily)
            .options(
                contains_eager(AppointmentFamily.appointment),
                selectinload(AppointmentFamily.attendees).joinedload(AppointmentAttendee.user),
            )
            .join(Appointment, Appointment.id == AppointmentFamily.appointment_id)
            .where(AppointmentFamily.patient_id == patient.id, _booked_and_ahead(now))
            .order_by(Appointment.starts_at, AppointmentFamily.id)
        ).unique()
    )
