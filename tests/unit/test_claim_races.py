"""Claiming a waitlist offer while something else happens to it (PostgreSQL, two
transactions: on SQLite each holds the write lock from its start). The claim decides on
its entry read afresh under the group occurrence's lock (`groups.locked_group`), which the
offer sweep and leaving the waitlist hold too: the one that waited sees what the other did,
and answers as it would had it come second in turn."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from familylink.extensions import db
from familylink.models import (
    AppointmentFamily,
    Role,
    SeatStatus,
    User,
    WaitlistEntry,
    WaitlistStatus,
)
from familylink.services import booking
from familylink.services.errors import DomainError, ValidationError
from tests.booking_setup import create_clinic
from tests.factories import create_consent, create_user
from tests.moments import NOON
from tests.races import race

pytestmark = pytest.mark.usefixtures("racing_transactions")

HOLD = timedelta(hours=12)  # the program's default `waitlist_hold_hours`
UNTIL = NOON + HOLD  # when the offer made at NOON ends
ENDED = "Sorry, this offer has ended."


def _family(clinic, name):
    patient = create_user(Role.PATIENT, therapist=clinic.therapist, name=f"Patient {name}")
    member = create_user(Role.FAMILY, name=name)
    create_consent(patient, member)
    return patient, member


def _offer(app, *, others_waiting: int) -> dict:
    """A group of two places, both taken; Cal's family waits first (then `others_waiting`
    more families); one place is freed at NOON, so Cal holds an offer until UNTIL."""
    from datetime import date, time

    with app.app_context():
        clinic = create_clinic()
        (group,) = booking.schedule_group(
            actor=clinic.therapist,
            session_type_id=clinic.group.id,
            first_day=date(2026, 11, 25),
            start_time=time(17),
            weeks=1,
            capacity=2,
            now=NOON,
        )
        freed = booking.book_group_seat(
            actor=clinic.family, patient_id=clinic.patient.id, appointment_id=group.id, now=NOON
        )
        bea, bea_member = _family(clinic, "Bea Two")
        booking.book_group_seat(
            actor=bea_member, patient_id=bea.id, appointment_id=group.id, now=NOON
        )
        entries = []
        for n, name in enumerate(["Cal Three", "Dee Four", "Eve Five"][: 1 + others_waiting]):
            patient, member = _family(clinic, name)
            entries.append(
                booking.join_waitlist(
                    actor=member,
                    patient_id=patient.id,
                    appointment_id=group.id,
                    now=NOON + timedelta(minutes=n),
                ).id
            )
        booking.cancel_seat(actor=clinic.family, seat_id=freed.id, now=NOON)
        cal = db.session.get(WaitlistEntry, entries[0])
        assert (cal.status, cal.offered_until) == (WaitlistStatus.OFFERED, UNTIL)
        db.session.commit()
        return {"group": group.id, "entries": entries, "cal": cal.family_user_id}


def _claim(ids, now):
    def claim():
        actor = db.session.get(User, ids["cal"])
        return booking.claim_offer(actor=actor, entry_id=ids["entries"][0], now=now).id

    return claim


def _leave(ids):
    def leave():
        actor = db.session.get(User, ids["cal"])
        return booking.leave_waitlist(actor=actor, entry_id=ids["entries"][0], now=NOON).id

    return leave


def _settled(app, ids):
    """The group's booked seats (patient ids) and each entry's status, as committed."""
    with app.app_context():
        seats = db.session.scalars(
            select(AppointmentFamily.patient_id).where(
                AppointmentFamily.appointment_id == ids["group"],
                AppointmentFamily.status == SeatStatus.BOOKED,
            )
        ).all()
        statuses = [db.session.get(WaitlistEntry, i).status for i in ids["entries"]]
        cal_patient = db.session.get(WaitlistEntry, ids["entries"][0]).patient_id
        return len(seats), cal_patient in seats, statuses


@pytest.mark.parametrize("others_waiting", [1, 0])
def test_a_claim_that_waited_for_the_sweep_ending_its_offer_is_refused(app, others_waiting):
    """The sweep (at UNTIL) ends Cal's offer while Cal claims it a minute before: the claim,
    which read the offer before the sweep committed, waits for the group's lock and then
    finds the offer ended, as a claim sent after the sweep would. The place goes to the
    next family waiting (one place, one offer, no second seat), or stays free when nobody
    waits; Cal's entry stays expired."""
    ids = _offer(app, others_waiting=others_waiting)
    outcome = race(
        app,
        lambda: booking.expire_offers(UNTIL),
        _claim(ids, UNTIL - timedelta(minutes=1)),
    )
    assert outcome["waited"] and outcome["first"] == 1, outcome
    assert isinstance(outcome["second"], ValidationError), outcome
    assert outcome["second"].message == ENDED
    expected = [WaitlistStatus.EXPIRED] + [WaitlistStatus.OFFERED] * others_waiting
    assert _settled(app, ids) == (1, False, expected)


@pytest.mark.parametrize("others_waiting", [1, 0])
def test_a_claim_that_waited_for_the_family_leaving_the_waitlist_is_refused(app, others_waiting):
    """Cal leaves the waitlist (another tab) while claiming the offer: the claim that
    waited finds the entry left, and the place went to the next family, if any."""
    ids = _offer(app, others_waiting=others_waiting)
    outcome = race(app, _leave(ids), _claim(ids, NOON + timedelta(minutes=5)))
    assert outcome["waited"] and not isinstance(outcome["first"], Exception), outcome
    assert isinstance(outcome["second"], ValidationError), outcome
    assert outcome["second"].message == ENDED
    expected = [WaitlistStatus.LEFT] + [WaitlistStatus.OFFERED] * others_waiting
    assert _settled(app, ids) == (1, False, expected)


def test_the_same_claim_sent_twice_takes_one_seat(app):
    ids = _offer(app, others_waiting=1)
    claim = _claim(ids, NOON + timedelta(minutes=5))
    outcome = race(app, claim, claim)
    assert outcome["waited"] and not isinstance(outcome["first"], Exception), outcome
    assert isinstance(outcome["second"], DomainError), outcome
    assert outcome["second"].message == "Your family already has a seat in this group."
    claimed = [WaitlistStatus.CLAIMED, WaitlistStatus.WAITING]
    assert _settled(app, ids) == (2, True, claimed)


def test_a_sweep_that_waited_for_the_claim_leaves_the_claimed_offer(app):
    """The other way round: the claim (a minute before UNTIL) holds the lock; the sweep at
    UNTIL, which listed the offer before the claim committed, finds it claimed: nothing
    expires and the next family is offered nothing (there is no place left)."""
    ids = _offer(app, others_waiting=1)
    outcome = race(
        app,
        _claim(ids, UNTIL - timedelta(minutes=1)),
        lambda: booking.expire_offers(UNTIL),
    )
    assert outcome["waited"] and not isinstance(outcome["first"], Exception), outcome
    assert outcome["second"] == 0, outcome
    assert _settled(app, ids) == (2, True, [WaitlistStatus.CLAIMED, WaitlistStatus.WAITING])
