"""Test data for scheduling: a therapist with weekday hours, a patient, consented family."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import time, timedelta

from sqlalchemy import select

from familylink.extensions import db
from familylink.models import (
    Appointment,
    AppointmentAttendee,
    AppointmentFamily,
    AvailabilityWindow,
    ConsentRecord,
    Role,
    SessionType,
    User,
)
from familylink.services import booking, consent
from tests.factories import create_consent, create_user


@dataclass
class Clinic:
    therapist: User
    patient: User
    family: User
    private: SessionType
    group: SessionType


def add_weekday_hours(therapist: User, start=time(9), end=time(17), days=range(7)) -> None:
    for weekday in days:
        db.session.add(
            AvailabilityWindow(
                therapist_id=therapist.id, weekday=weekday, start_time=start, end_time=end
            )
        )
    db.session.flush()


def create_session_types() -> tuple[SessionType, SessionType]:
    private = SessionType(
        name="Family session", duration_minutes=50, capacity=1, location="Room 2", active=True
    )
    group = SessionType(
        name="Multi-family group",
        duration_minutes=90,
        capacity=8,
        mode="video",
        active=True,
    )
    db.session.add_all([private, group])
    db.session.flush()
    return private, group


def create_clinic(*, family_zone: str = "America/New_York", scopes=("scheduling",)) -> Clinic:
    therapist = create_user(Role.THERAPIST, name="Dr. Grace Lee")
    patient = create_user(Role.PATIENT, name="Jordan Rivera", therapist=therapist)
    family = create_user(Role.FAMILY, name="Maria Rivera", timezone=family_zone)
    create_consent(patient, family, scopes=scopes)
    add_weekday_hours(therapist)
    private, group = create_session_types()
    return Clinic(therapist, patient, family, private, group)


def add_family(
    patient: User, name: str, scopes=("scheduling",), family_visible=False, **extra
) -> User:
    member = create_user(Role.FAMILY, name=name, **extra)
    create_consent(patient, member, scopes=scopes, family_visible=family_visible)
    return member


def add_appointment(therapist, patient, family, session_type, *, starts_at, booked_at):
    """An appointment with the family member's seat, booked at `booked_at`, built directly
    (so any time can be chosen, past notice and hours), and committed."""
    appointment = Appointment(
        uid=f"{uuid.uuid4()}@familylink",
        therapist_id=therapist.id,
        session_type=session_type,
        starts_at=starts_at,
        ends_at=starts_at + timedelta(minutes=session_type.duration_minutes),
        capacity=session_type.capacity or 1,
        created_at=booked_at,
    )
    seat = AppointmentFamily(appointment=appointment, patient_id=patient.id, created_at=booked_at)
    db.session.add_all([appointment, seat])
    db.session.add(AppointmentAttendee(seat=seat, user_id=family.id, added_at=booked_at))
    db.session.commit()
    return seat


def family_seat(clinic: Clinic, starts_at, *, booked_at, session_type=None) -> AppointmentFamily:
    """The clinic's family member's seat at `starts_at` (`add_appointment`), in a private
    session unless `session_type` says otherwise."""
    return add_appointment(
        clinic.therapist,
        clinic.patient,
        clinic.family,
        session_type or clinic.private,
        starts_at=starts_at,
        booked_at=booked_at,
    )


def cancel_as_family(seat_id: int, now) -> AppointmentFamily:
    """The seat's first family member cancels it at `now`."""
    seat = db.session.get(AppointmentFamily, seat_id)
    family = db.session.get(User, seat.attendees[0].user_id)
    return booking.cancel_seat(actor=family, seat_id=seat_id, now=now)


def end_access(seat_id: int, now, *, member: int = 0):
    """The patient revokes the consent of the seat's `member`-th family member at `now`
    (the last one coming: the session is released, `groups._release_if_empty`)."""
    seat = db.session.get(AppointmentFamily, seat_id)
    record = db.session.scalar(
        select(ConsentRecord).where(
            ConsentRecord.patient_id == seat.patient_id,
            ConsentRecord.recipient_user_id == seat.attendees[member].user_id,
        )
    )
    return consent.revoke_consent(seat.patient, record.id, now=now)
