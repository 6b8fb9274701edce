"""No double booking: 20 threads, each with its own connection, race for the last slot/seat."""

import threading
from datetime import UTC, date, datetime, time

import pytest
from sqlalchemy import func, select

from familylink.extensions import db
from familylink.models import Appointment, AppointmentFamily, Role, User
from familylink.services import booking
from familylink.services.errors import DomainError
from familylink.services.program import program_row
from tests.booking_setup import add_weekday_hours, create_session_types
from tests.factories import create_consent, create_user

RACERS = 20
NOW = datetime(2026, 11, 18, 17, 0, tzinfo=UTC)  # a Wednesday, noon in New York


@pytest.fixture
def settings_override(database_url):
    options = {"pool_size": RACERS + 5, "max_overflow": 5}
    if database_url.startswith("sqlite"):
        options["connect_args"] = {"timeout": 60}
    return {"SQLALCHEMY_ENGINE_OPTIONS": options}


def _families(therapist, count):
    pairs = []
    for n in range(count):
        patient = create_user(Role.PATIENT, therapist=therapist, name=f"Patient P{n}")
        member = create_user(Role.FAMILY, name=f"Family F{n}")
        create_consent(patient, member)
        pairs.append((patient.id, member.id))
    return pairs


def _race(app, attempt):
    """Run attempt(patient_id, family_id) in RACERS threads released together."""
    barrier = threading.Barrier(RACERS)
    results: list = [None] * RACERS

    def run(index, patient_id, family_id):
        with app.app_context():
            try:
                actor = db.session.get(User, family_id)
                barrier.wait(timeout=30)
                attempt(actor, patient_id)
                db.session.commit()
                results[index] = "booked"
            except DomainError as error:
                db.session.rollback()
                results[index] = error
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(i, *pair)) for i, pair in enumerate(app.racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def _assert_one_winner(results, message):
    assert results.count("booked") == 1
    refusals = [r for r in results if r != "booked"]
    assert len(refusals) == RACERS - 1
    assert all(type(r).__name__ == "Conflict" for r in refusals), refusals
    assert all(message in r.message for r in refusals)


def test_twenty_families_racing_for_the_last_slot_book_it_once(app):
    with app.app_context():
        therapist = create_user(Role.THERAPIST)
        add_weekday_hours(therapist, start=time(9), end=time(9, 50), days=[3])
        private, _ = create_session_types()
        program_row().booking_horizon_days = 2
        app.racers = _families(therapist, RACERS)
        (slot,) = booking.slots_for(therapist.id, private, now=NOW)
        type_id = private.id
        db.session.commit()

    def attempt(actor, patient_id):
        booking.book_private(
            actor=actor, patient_id=patient_id, session_type_id=type_id, starts_at=slot, now=NOW
        )

    results = _race(app, attempt)
    _assert_one_winner(results, "someone else just booked")
    with app.app_context():
        assert db.session.scalar(select(func.count(Appointment.id))) == 1


def test_twenty_families_racing_for_the_last_group_seat_take_it_once(app):
    with app.app_context():
        therapist = create_user(Role.THERAPIST)
        _, group_type = create_session_types()
        (group,) = booking.schedule_group(
            actor=therapist,
            session_type_id=group_type.id,
            first_day=date(2026, 11, 25),
            start_time=time(17),
            weeks=1,
            capacity=2,
            now=NOW,
        )
        ((first_patient, first_family),) = _families(therapist, 1)
        booking.book_group_seat(
            actor=db.session.get(User, first_family),
            patient_id=first_patient,
            appointment_id=group.id,
            now=NOW,
        )
        app.racers = _families(therapist, RACERS)
        group_id = group.id
        db.session.commit()

    def attempt(actor, patient_id):
        booking.book_group_seat(
            actor=actor, patient_id=patient_id, appointment_id=group_id, now=NOW
        )

    results = _race(app, attempt)
    _assert_one_winner(results, "full")
    with app.app_context():
        assert db.session.scalar(select(func.count(AppointmentFamily.id))) == 2
