"""A revocation racing a booking never leaves the family member booked (PostgreSQL: on
SQLite every action holds the write lock from its start, so they cannot interleave).

Each race runs the booking and the revocation in their own threads, each with its own
connection, in the order that lost before the fix: the booking has read the consent, the
revocation commits meanwhile, then the booking commits."""

import threading
from datetime import UTC, datetime, time

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError

from familylink.extensions import db
from familylink.models import (
    Appointment,
    AppointmentAttendee,
    AppointmentFamily,
    ClosureReason,
    ConsentRecord,
    Role,
    SeatStatus,
    User,
)
from familylink.services import booking, consent
from familylink.services.consent import records
from familylink.services.errors import DomainError, NotFound
from tests.booking_setup import add_weekday_hours, create_session_types
from tests.factories import create_consent, create_user
from tests.unit.test_booking_races import NOW, _families, _group, _take

#: How long the booking stays open, after writing its seat, for the revocation to commit.
PAUSE = 2


pytestmark = pytest.mark.usefixtures("racing_transactions")


def _family(app):
    """A therapist free on weekdays, a patient, a family member under an active consent, and
    the first free time of a private session type: their ids."""
    with app.app_context():
        therapist = create_user(Role.THERAPIST)
        add_weekday_hours(therapist, start=time(9), end=time(17))
        private, _ = create_session_types()
        patient = create_user(Role.PATIENT, therapist=therapist, name="Jordan Patient")
        member = create_user(Role.FAMILY, name="Maria Family")
        record = create_consent(patient, member)
        slot = booking.slots_for(therapist.id, private, now=NOW)[0]
        db.session.commit()
        return {
            "therapist": therapist.id,
            "patient": patient.id,
            "member": member.id,
            "consent": record.id,
            "type": private.id,
            "slot": slot,
        }


def _revoke(ids):
    patient = db.session.get(User, ids["patient"])
    consent.revoke_consent(patient, ids["consent"], now=NOW)


def _race(app, book, ids, *, read_first=None):
    """The booking thread runs `read_first()` (what the page reads), lets the revocation
    run, then `book(read)`, stays open up to PAUSE for the revocation to commit, and
    commits. Returns each side's outcome: "ok", or the refusal (DomainError, NotFound)."""
    started, revoked = threading.Event(), threading.Event()
    outcome = {}

    def booking_side():
        with app.app_context():
            try:
                read = read_first() if read_first else None
                if read_first:
                    started.set()
                    revoked.wait(timeout=30)
                book(read)
                started.set()
                revoked.wait(timeout=PAUSE)  # before the fix, the revocation commits here
                db.session.commit()
                outcome["booking"] = "ok"
            except (DomainError, NotFound) as error:
                db.session.rollback()
                outcome["booking"] = error
            finally:
                started.set()
                db.session.remove()

    def revocation_side():
        with app.app_context():
            try:
                started.wait(timeout=30)
                _revoke(ids)
                db.session.commit()
                outcome["revocation"] = "ok"
            finally:
                revoked.set()
                db.session.remove()

    threads = [threading.Thread(target=booking_side), threading.Thread(target=revocation_side)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcome


def _seats_ahead(app, member_id) -> int:
    """The member's places on future sessions still booked for them."""
    with app.app_context():
        return db.session.scalar(
            select(func.count(AppointmentAttendee.id))
            .join(AppointmentFamily, AppointmentFamily.id == AppointmentAttendee.seat_id)
            .join(Appointment, Appointment.id == AppointmentFamily.appointment_id)
            .where(
                AppointmentAttendee.user_id == member_id,
                AppointmentAttendee.removed_at.is_(None),
                AppointmentFamily.status == SeatStatus.BOOKED,
                Appointment.starts_at > NOW,
            )
        )


def _books(ids, by):
    """book(opened): the private session at the free time, booked by the family member
    ("member") or by the therapist for them ("therapist")."""
    invited = [ids["member"]] if by == "therapist" else []

    def book(opened):
        booking.book_private(
            actor=db.session.get(User, ids[by]),
            patient_id=ids["patient"],
            session_type_id=ids["type"],
            starts_at=ids["slot"],
            attendee_ids=invited,
            now=NOW,
            opened=opened,
        )

    return book


@pytest.mark.parametrize("by", ["member", "therapist"])
def test_a_revocation_while_a_booking_is_open_leaves_the_member_unbooked(app, by):
    ids = _family(app)
    outcome = _race(app, _books(ids, by), ids)
    assert outcome == {"booking": "ok", "revocation": "ok"}
    assert _seats_ahead(app, ids["member"]) == 0


def test_a_booking_made_under_a_page_read_before_a_revocation_is_refused(app):
    """The page read the consent (`open_for_booking`, the answer `book_private` is handed);
    the revocation commits; the booking is then refused, not made under the old answer."""
    ids = _family(app)

    def page_read():
        return booking.open_for_booking(
            db.session.get(User, ids["member"]), ids["patient"], now=NOW, what="booking page"
        )

    outcome = _race(app, _books(ids, "member"), ids, read_first=page_read)
    assert outcome["revocation"] == "ok"
    assert isinstance(outcome["booking"], NotFound)
    assert _seats_ahead(app, ids["member"]) == 0


# --- Every path that seats a family member waits for a consent being closed ------------------


def _outcome_while_closing(app, consent_id, book) -> str:
    """Run `book()` while another transaction has closed the consent and not committed:
    "booked", or the SQLSTATE of the lock it waited for (55P03: it waited on the consent)."""
    closing, finished = threading.Event(), threading.Event()

    def closer():
        with app.app_context():
            record = db.session.get(ConsentRecord, consent_id)
            records.close_consent(record, ClosureReason.REVOKED, now=NOW)
            closing.set()
            finished.wait(timeout=30)
            db.session.rollback()
            db.session.remove()

    thread = threading.Thread(target=closer)
    thread.start()
    closing.wait(timeout=30)
    with app.app_context():
        db.session.execute(text("SET LOCAL lock_timeout = '300ms'"))
        try:
            book()
            outcome = "booked"
        except OperationalError as error:
            outcome = error.orig.sqlstate
        finally:
            db.session.rollback()
            finished.set()
            db.session.remove()
    thread.join(timeout=30)
    return outcome


def test_a_weekly_series_waits_for_a_consent_being_closed(app):
    ids = _family(app)
    first = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # Tuesday 10:00 AM in New York

    def book():
        booking.book_series(
            actor=db.session.get(User, ids["therapist"]),
            patient_id=ids["patient"],
            session_type_id=ids["type"],
            first_start=first,
            weeks=3,
            attendee_ids=[ids["member"]],
            now=NOW,
        )

    assert _outcome_while_closing(app, ids["consent"], book) == "55P03"


@pytest.mark.parametrize(
    ("taken", "action"), [(0, booking.book_group_seat), (2, booking.join_waitlist)]
)
def test_a_group_seat_or_waitlist_place_waits_for_a_consent_being_closed(app, taken, action):
    """A place in a group with room, or on the waitlist of a full one (a claimed offer
    books through `book_group_seat` too)."""
    ids = _family(app)
    with app.app_context():
        group = _group(db.session.get(User, ids["therapist"]), capacity=2)
        for pair in _families(group.therapist, taken):
            _take(group, pair)
        group_id = group.id
        db.session.commit()

    def book():
        action(
            actor=db.session.get(User, ids["member"]),
            patient_id=ids["patient"],
            appointment_id=group_id,
            now=NOW,
        )

    assert _outcome_while_closing(app, ids["consent"], book) == "55P03"
