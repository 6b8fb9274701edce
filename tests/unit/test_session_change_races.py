"""Two changes to one session at once (PostgreSQL, two transactions: on SQLite each holds
the write lock from its start). A cancellation, a move and the release of a seat whose
family can no longer come all take the appointment's lock (`groups.lock_occurrence`) and
read the seat afresh under it, so the one that waited sees what the other did."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from familylink.extensions import db
from familylink.models import (
    AppointmentAttendee,
    AppointmentFamily,
    AppointmentStatus,
    OutboxEmail,
    SeatStatus,
)
from familylink.services import booking
from familylink.services.errors import ValidationError
from tests.booking_setup import add_family, cancel_as_family, create_clinic, end_access, family_seat
from tests.moments import NOON
from tests.races import race

STARTS_AT = NOON + timedelta(days=3)


pytestmark = pytest.mark.usefixtures("racing_transactions")


@pytest.fixture
def seat_id(app) -> int:
    """A private session with two family members coming: Maria and Ana."""
    with app.app_context():
        clinic = create_clinic()
        seat = family_seat(clinic, STARTS_AT, booked_at=NOON)
        ana = add_family(clinic.patient, "Ana Rivera")
        db.session.add(AppointmentAttendee(seat=seat, user_id=ana.id, added_at=NOON))
        db.session.commit()
        return seat.id


def _seat(seat_id: int) -> AppointmentFamily:
    return db.session.get(AppointmentFamily, seat_id)


def _settled(app, seat_id: int) -> tuple:
    with app.app_context():
        seat = _seat(seat_id)
        appointment = seat.appointment
        moved = db.session.scalars(
            select(OutboxEmail.kind).where(OutboxEmail.kind == "booking_rescheduled")
        ).all()
        return seat.status, appointment.status, appointment.starts_at, appointment.sequence, moved


def test_access_ending_as_the_family_cancels_late_keeps_the_late_cancellation(app, seat_id):
    late = STARTS_AT - timedelta(hours=2)
    outcome = race(
        app,
        lambda: cancel_as_family(seat_id, late),
        lambda: [end_access(seat_id, late, member=member) for member in (0, 1)],
    )
    assert outcome["waited"] and not any(isinstance(r, Exception) for r in outcome.values())
    status, _status, _starts_at, sequence, _moved = _settled(app, seat_id)
    assert status == SeatStatus.LATE_CANCELLED
    assert sequence == 1  # one cancellation, told once


def test_both_members_access_ending_at_once_releases_the_session(app, seat_id):
    """Each revocation takes one member off; the one that waited sees nobody is left."""
    outcome = race(
        app,
        lambda: end_access(seat_id, NOON, member=0),
        lambda: end_access(seat_id, NOON, member=1),
    )
    assert outcome["waited"] and not any(isinstance(r, Exception) for r in outcome.values())
    status, appointment_status, *_ = _settled(app, seat_id)
    assert (status, appointment_status) == (SeatStatus.CANCELLED, AppointmentStatus.CANCELLED)


def test_a_move_that_waited_for_a_cancellation_is_refused(app, seat_id):
    def move():
        seat = _seat(seat_id)
        later = STARTS_AT + timedelta(days=7)
        return booking.reschedule(
            actor=seat.appointment.therapist, seat_id=seat_id, starts_at=later, now=NOON
        )

    outcome = race(app, lambda: cancel_as_family(seat_id, NOON), move)
    assert outcome["waited"] and not isinstance(outcome["first"], Exception), outcome
    assert isinstance(outcome["second"], ValidationError), outcome
    assert outcome["second"].message == "That booking is already cancelled."
    assert _settled(app, seat_id) == (
        SeatStatus.CANCELLED,
        AppointmentStatus.CANCELLED,
        STARTS_AT,
        1,
        [],
    )
