"""Every page a therapist or a family member opens about a patient writes, in that request,
an audit row naming the patient and the person: for a family member a disclosure, which the
patient's "what was shared" log reads. The pages are found by walking the app's routes
(every GET under the person's prefixes that takes an id), so a page added later is checked
without being listed here."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from familylink.extensions import db
from familylink.models import AppointmentSeries, AuditEvent, ConsentRecord, SessionType
from familylink.services import progress_updates
from familylink.services.program import forget_cached_program, program_row
from tests.booking_setup import create_clinic, family_seat
from tests.moments import NOON

# Pages that take an id but show nothing about a patient, and why.
NOTHING_ABOUT_A_PATIENT = {
    # A waitlist offer's claim page is one button: no time, no name, nothing about a patient.
    "booking.claim",
}


@pytest.fixture
def settings_override():
    # The app's clock, the same as the world's: consents made at NOON last 180 days, so a
    # world on the wall clock would see them end one day.
    return {"NOW_OVERRIDE": NOON}


def _world(app) -> dict:
    """A therapist's patient with a consented family member, a video session in a weekly
    series booked for them, and a progress update waiting for the patient: one of each
    thing a page shows."""
    with app.app_context():
        clinic = create_clinic(scopes=("scheduling", "attendance", "progress"))
        program_row().video_room_template = "https://meet.example-clinic.org/{room}"
        video = SessionType(name="Family session (video)", duration_minutes=50, mode="video")
        db.session.add(video)
        db.session.flush()
        forget_cached_program()
        now = NOON
        starts = (now + timedelta(days=3)).replace(hour=15, minute=0, second=0, microsecond=0)
        seat = family_seat(clinic, starts, booked_at=now, session_type=video)
        # One week of a weekly series, so its "this and every later week" pages open.
        series = AppointmentSeries(
            therapist_id=clinic.therapist.id,
            patient_id=clinic.patient.id,
            session_type_id=video.id,
            first_day=starts.date(),
            weekday=starts.weekday(),
            local_time=starts.time(),
            zone="UTC",
            count=1,
            created_at=now,
            created_by_id=clinic.therapist.id,
        )
        db.session.add(series)
        db.session.flush()
        seat.appointment.weekly_series_id = series.id
        update = progress_updates.draft_update(
            clinic.therapist,
            clinic.patient.id,
            text="Jordan came to every group this week and spoke about home.",
            family_user_id=None,
            now=now,
        )
        db.session.commit()
        return {
            "therapist": (clinic.therapist.email, AuditEvent.actor_id == clinic.therapist.id),
            "family": (
                clinic.family.email,
                AuditEvent.action.like("disclosure.%")
                & (AuditEvent.recipient_id == clinic.family.id),
            ),
            "patient_id": clinic.patient.id,
            "seat_id": seat.id,
            "appointment_id": seat.appointment_id,
            "consent_id": db.session.scalar(select(ConsentRecord.id)),
            "update_id": update.id,
        }


def _pages_about_one_patient(app, prefixes: tuple[str, ...], ids: dict) -> list[str]:
    pages = []
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            if not (rule.rule.startswith(prefixes) and "GET" in rule.methods and rule.arguments):
                continue
            if rule.endpoint in NOTHING_ABOUT_A_PATIENT or "token" in rule.arguments:
                continue  # a token's page is reached by its link, and checked with it
            assert rule.arguments <= ids.keys(), f"{rule.rule}: give this test an id for it"
            pages.append(app.url_for(rule.endpoint, **{a: ids[a] for a in rule.arguments}))
    return sorted(pages)


def _unaudited(app, client, auth, ids: dict, who: str, prefixes: tuple[str, ...]) -> list[str]:
    email, theirs = ids[who]
    about = theirs & (AuditEvent.patient_id == ids["patient_id"])
    auth.login(email)
    pages = _pages_about_one_patient(app, prefixes, ids)
    assert len(pages) >= 4, pages  # the walk found the pages
    unaudited = []
    for path in pages:
        with app.app_context():
            before = db.session.scalar(select(func.count()).where(about))
        assert client.get(path).status_code == 200, path
        with app.app_context():
            if db.session.scalar(select(func.count()).where(about)) == before:
                unaudited.append(path)
    return unaudited


def test_every_therapist_page_about_a_patient_is_audited(app, client, auth):
    ids = _world(app)
    assert (
        _unaudited(app, client, auth, ids, "therapist", ("/therapist/", "/learn/therapist/")) == []
    )


def test_every_family_page_about_a_patient_is_audited_as_a_disclosure(app, client, auth):
    ids = _world(app)
    assert _unaudited(app, client, auth, ids, "family", ("/booking/", "/family/")) == []
