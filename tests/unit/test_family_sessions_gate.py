"""A family member's list of sessions and private calendar feed ask the access gate which
patients' sessions they may see (issue 15): a member whose consent has ended, or does not
cover scheduling, sees no session of that patient in either; the feed discloses, once per
patient, only what it shows."""

from datetime import timedelta

import pytest
from icalendar import Calendar

from familylink.extensions import db
from familylink.models import AppointmentStatus, ClosureReason, ConsentClosure, ConsentRecord, Role
from familylink.services import audit
from familylink.services.booking import listings
from familylink.services.calendar import feeds
from tests.booking_setup import add_appointment, add_family, create_clinic
from tests.factories import create_consent, create_user
from tests.moments import NOON


@pytest.fixture
def world(app_ctx):
    """The clinic's member sits in sessions for four patients: one whose consent covers
    scheduling (two sessions, one cancelled), one whose consent covers attendance only, one
    whose consent was revoked, and one (covered) whose only session was cancelled."""
    clinic = create_clinic()
    member, therapist, kind = clinic.family, clinic.therapist, clinic.private
    no_scope = create_user(Role.PATIENT, name="Ana Noscope", therapist=therapist)
    create_consent(no_scope, member, scopes=("attendance",))
    revoked = create_user(Role.PATIENT, name="Ben Revoked", therapist=therapist)
    ended = create_consent(revoked, member)
    db.session.add(
        ConsentClosure(consent_id=ended.id, reason=ClosureReason.REVOKED, closed_at=NOON)
    )
    quiet = create_user(Role.PATIENT, name="Cal Quiet", therapist=therapist)
    create_consent(quiet, member)
    db.session.flush()

    def seat(patient, days):
        return add_appointment(
            therapist, patient, member, kind, starts_at=NOON + timedelta(days=days), booked_at=NOON
        )

    shown, cancelled = seat(clinic.patient, 2), seat(clinic.patient, 3)
    seat(no_scope, 4), seat(revoked, 5)
    quiet_seat = seat(quiet, 6)
    for gone in (cancelled, quiet_seat):
        gone.appointment.status = AppointmentStatus.CANCELLED
    db.session.commit()
    return clinic, shown, cancelled, quiet_seat


def _disclosures():
    return [
        (e.actor_id, e.patient_id, e.recipient_id, e.object_type, e.object_id, e.detail)
        for e in audit.search(action="disclosure.viewed")
    ]


def test_the_list_holds_only_sessions_of_patients_whose_consent_covers_scheduling(world):
    clinic, shown, cancelled, quiet_seat = world
    seats = listings.upcoming_for_family(clinic.family, now=NOON)
    assert [s.id for s in seats] == [shown.id, cancelled.id, quiet_seat.id]
    assert _disclosures() == []  # the pages that list them record their own rows


def test_the_feed_holds_only_booked_sessions_of_patients_covered_and_discloses_each_once(world):
    clinic, shown, _cancelled, _quiet = world
    token = feeds.turn_on_feed(clinic.family, now=NOON)
    events = Calendar.from_ical(feeds.feed_for_token(token, now=NOON)).walk("VEVENT")
    assert [str(e["UID"]) for e in events] == [shown.appointment.uid]
    member, patient = clinic.family.id, clinic.patient.id
    assert _disclosures() == [(member, patient, member, None, None, {"what": "calendar feed"})]


def test_the_feed_forgets_a_patient_whose_consent_ends(world):
    clinic, _shown, _cancelled, quiet_seat = world
    token = feeds.turn_on_feed(clinic.family, now=NOON)
    record = db.session.scalars(
        db.select(ConsentRecord).where(ConsentRecord.patient_id == clinic.patient.id)
    ).one()
    db.session.add(
        ConsentClosure(consent_id=record.id, reason=ClosureReason.REVOKED, closed_at=NOON)
    )
    db.session.flush()
    db.session.expire_all()
    assert Calendar.from_ical(feeds.feed_for_token(token, now=NOON)).walk("VEVENT") == []
    assert listings.upcoming_for_family(clinic.family, now=NOON) == [quiet_seat]
    assert _disclosures() == []


def test_another_family_member_of_the_patient_sees_none_of_these_sessions(world):
    clinic, *_ = world
    other = add_family(clinic.patient, "Sam Rivera")
    assert listings.upcoming_for_family(other, now=NOON) == []
