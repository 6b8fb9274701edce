"""A reminder sweep and a change to a session at once (PostgreSQL: on SQLite the sweep
holds the write lock from its start): no reminder is left queued for a seat cancelled, a
time moved or a session nobody can come to any more. The sweep holds the reminders' lock
alone, the changes share it (`reminders._hold_reminders`)."""

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from familylink.extensions import db
from familylink.models import (
    AppointmentFamily,
    ConsentRecord,
    OutboxEmail,
    OutboxStatus,
    SeatStatus,
    User,
)
from familylink.services import booking, consent, reminders
from tests.booking_setup import create_clinic, family_seat
from tests.moments import NOON
from tests.races import WAIT_LIMIT, race, someone_waits_for_a_lock

STARTS_AT = NOON + timedelta(days=3)
MOMENT = STARTS_AT - timedelta(hours=48)  # a reminder moment


@pytest.fixture
def seat_id(app) -> int:
    with app.app_context():
        clinic = create_clinic()
        seat = family_seat(clinic, STARTS_AT, booked_at=NOON)
        db.session.commit()
        return seat.id


def _cancel(seat_id: int, now=MOMENT):
    seat = db.session.get(AppointmentFamily, seat_id)
    family = db.session.get(User, seat.attendees[0].user_id)
    return booking.cancel_seat(actor=family, seat_id=seat_id, now=now)


def _move(seat_id: int):
    seat = db.session.get(AppointmentFamily, seat_id)
    therapist = seat.appointment.therapist
    later = STARTS_AT + timedelta(days=7)
    return booking.reschedule(actor=therapist, seat_id=seat_id, starts_at=later, now=MOMENT)


def _access_ended(seat_id: int, now=MOMENT):
    """The patient revokes the family member's consent: nobody is left to come, so the
    session is cancelled (`groups._release_if_empty`), the patient's reminder too."""
    seat = db.session.get(AppointmentFamily, seat_id)
    record = db.session.scalar(
        select(ConsentRecord).where(ConsentRecord.patient_id == seat.patient_id)
    )
    return consent.revoke_consent(seat.patient, record.id, now=now)


CHANGES = {"cancelled": _cancel, "moved": _move, "emptied": _access_ended}


def _reminders_for_the_time_booked(app) -> list[str]:
    """The status of each reminder queued for the seat's session as it was booked."""
    with app.app_context():
        return db.session.scalars(
            select(OutboxEmail.status).where(
                OutboxEmail.kind == reminders.KIND, OutboxEmail.dedupe_key.like("reminder:%-0:%")
            )
        ).all()


def _postgresql(database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite: the sweep holds the write lock from its start")


def _holding(app, action, held: threading.Event, release: threading.Event, outcome: dict):
    """Run `action` in its own transaction, then hold it open until `release`."""

    def run():
        with app.app_context():
            try:
                outcome["result"] = action()
                db.session.flush()
                held.set()
                release.wait(timeout=2 * WAIT_LIMIT)
                db.session.commit()
            except Exception as error:  # the outcome the test asserts on
                db.session.rollback()
                outcome["result"] = error
            finally:
                held.set()
                db.session.remove()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.parametrize("change", CHANGES)
def test_a_change_made_while_a_sweep_holds_its_reminders_cancels_them(
    app, database_url, seat_id, change
):
    _postgresql(database_url)
    held, release, swept = threading.Event(), threading.Event(), {}
    sweep = _holding(app, lambda: reminders.run_sweep(MOMENT), held, release, swept)
    assert held.wait(timeout=WAIT_LIMIT)
    changed, at_once = {}, threading.Event()
    at_once.set()  # the change commits as soon as it is done
    changing = _holding(app, lambda: CHANGES[change](seat_id), threading.Event(), at_once, changed)
    with app.app_context():
        someone_waits_for_a_lock()  # the change, on the appointment the sweep holds
    release.set()
    sweep.join(timeout=2 * WAIT_LIMIT)
    changing.join(timeout=2 * WAIT_LIMIT)
    assert swept["result"] == 2
    assert not isinstance(changed["result"], Exception), changed
    assert _reminders_for_the_time_booked(app) == [OutboxStatus.CANCELLED] * 2


@pytest.mark.parametrize("change", CHANGES)
def test_a_sweep_waits_for_a_change_under_way_and_then_reads_it(app, database_url, seat_id, change):
    _postgresql(database_url)
    outcome = race(app, lambda: CHANGES[change](seat_id), lambda: reminders.run_sweep(MOMENT))
    assert not isinstance(outcome["first"], Exception), outcome
    assert outcome["second"] == 0  # it read the change: nothing is due for the time booked
    assert _reminders_for_the_time_booked(app) == []


def test_access_ending_as_the_family_cancels_late_keeps_the_late_cancellation(
    app, database_url, seat_id
):
    """The family member cancels two hours before (late) while the patient ends their
    access: the release that waited finds the seat cancelled already and leaves it so."""
    _postgresql(database_url)
    late = STARTS_AT - timedelta(hours=2)
    outcome = race(app, lambda: _cancel(seat_id, late), lambda: _access_ended(seat_id, late))
    assert not any(isinstance(result, Exception) for result in outcome.values()), outcome
    with app.app_context():
        seat = db.session.get(AppointmentFamily, seat_id)
        assert seat.status == SeatStatus.LATE_CANCELLED
        assert seat.appointment.sequence == 1  # one cancellation, told once
