"""A reminder sweep and a change to a session at once (PostgreSQL: on SQLite the sweep
holds the write lock from its start): no reminder is left queued for a seat cancelled, a
time moved or a session nobody can come to any more. The sweep holds the reminders' lock
alone, the changes share it (`reminders._hold_reminders`)."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from familylink.extensions import db
from familylink.models import (
    AppointmentFamily,
    OutboxEmail,
    OutboxStatus,
)
from familylink.services import booking, reminders
from tests.booking_setup import cancel_as_family, create_clinic, end_access, family_seat
from tests.moments import NOON
from tests.races import race

STARTS_AT = NOON + timedelta(days=3)
MOMENT = STARTS_AT - timedelta(hours=48)  # a reminder moment


@pytest.fixture
def seat_id(app) -> int:
    with app.app_context():
        clinic = create_clinic()
        seat = family_seat(clinic, STARTS_AT, booked_at=NOON)
        db.session.commit()
        return seat.id


def _move(seat_id: int):
    seat = db.session.get(AppointmentFamily, seat_id)
    therapist = seat.appointment.therapist
    later = STARTS_AT + timedelta(days=7)
    return booking.reschedule(actor=therapist, seat_id=seat_id, starts_at=later, now=MOMENT)


CHANGES = {
    "cancelled": lambda seat_id: cancel_as_family(seat_id, MOMENT),
    "moved": _move,
    # Nobody is left to come: the session is cancelled, the patient's reminder too.
    "emptied": lambda seat_id: end_access(seat_id, MOMENT),
}


def _reminders_for_the_time_booked(app) -> list[str]:
    """The status of each reminder queued for the seat's session as it was booked."""
    with app.app_context():
        return db.session.scalars(
            select(OutboxEmail.status).where(
                OutboxEmail.kind == reminders.KIND, OutboxEmail.dedupe_key.like("reminder:%-0:%")
            )
        ).all()


@pytest.mark.parametrize("change", CHANGES)
def test_a_change_made_while_a_sweep_holds_its_reminders_cancels_them(
    app, racing_transactions, seat_id, change
):
    outcome = race(app, lambda: reminders.run_sweep(MOMENT), lambda: CHANGES[change](seat_id))
    assert outcome["waited"] and outcome["first"] == 2, outcome  # the change, on the sweep
    assert not isinstance(outcome["second"], Exception), outcome
    assert _reminders_for_the_time_booked(app) == [OutboxStatus.CANCELLED] * 2


@pytest.mark.parametrize("change", CHANGES)
def test_a_sweep_waits_for_a_change_under_way_and_then_reads_it(
    app, racing_transactions, seat_id, change
):
    outcome = race(app, lambda: CHANGES[change](seat_id), lambda: reminders.run_sweep(MOMENT))
    assert outcome["waited"] and not isinstance(outcome["first"], Exception), outcome
    assert outcome["second"] == 0  # it read the change: nothing is due for the time booked
    assert _reminders_for_the_time_booked(app) == []
