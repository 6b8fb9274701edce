"""Every page a family member opens about a patient writes, in that request, a disclosure
row naming the patient and the member (the patient's "what was shared" log reads them). The
pages are found by walking the app's routes (every GET under /booking/ or /family/ that takes
an id), so a page added later is checked without being listed here."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from familylink.extensions import db
from familylink.models import AppointmentSeries, AuditEvent
from tests.booking_setup import create_clinic, family_seat

# Pages that take an id but show nothing about a patient, and why.
NOTHING_ABOUT_A_PATIENT = {
    # A waitlist offer's claim page is one button: no time, no name, nothing about a patient.
    "booking.claim",
}


def _world(app) -> dict:
    with app.app_context():
        clinic = create_clinic(scopes=("scheduling", "attendance", "progress"))
        now = datetime.now(UTC)
        starts = (now + timedelta(days=3)).replace(hour=15, minute=0, second=0, microsecond=0)
        seat = family_seat(clinic, starts, booked_at=now)
        # One week of a weekly series, so its "this and every later week" page opens.
        series = AppointmentSeries(
            therapist_id=clinic.therapist.id,
            patient_id=clinic.patient.id,
            session_type_id=clinic.private.id,
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
        db.session.commit()
        return {
            "family": clinic.family.email,
            "family_id": clinic.family.id,
            "patient_id": clinic.patient.id,
            "seat_id": seat.id,
        }


def _pages_about_one_patient(app, ids: dict) -> list[str]:
    pages = []
    for rule in app.url_map.iter_rules():
        families = rule.rule.startswith(("/booking/", "/family/"))
        if not (families and "GET" in rule.methods and rule.arguments):
            continue
        if rule.endpoint in NOTHING_ABOUT_A_PATIENT or "token" in rule.arguments:
            continue  # a token's page is reached by its link, and checked with it
        assert rule.arguments <= ids.keys(), f"{rule.rule}: give this test an id for it"
        pages.append(app.url_for(rule.endpoint, **{a: ids[a] for a in rule.arguments}))
    return sorted(pages)


def _disclosed(app, ids: dict) -> int:
    with app.app_context():
        return db.session.scalar(
            select(func.count()).where(
                AuditEvent.action.like("disclosure.%"),
                AuditEvent.recipient_id == ids["family_id"],
                AuditEvent.patient_id == ids["patient_id"],
            )
        )


def test_every_family_page_about_a_patient_is_audited_as_a_disclosure(app, client, auth):
    ids = _world(app)
    auth.login(ids["family"])
    with app.test_request_context():
        pages = _pages_about_one_patient(app, ids)
    assert len(pages) >= 4, pages  # the walk found the pages
    unaudited = []
    for path in pages:
        before = _disclosed(app, ids)
        response = client.get(path)
        assert response.status_code == 200, path
        if _disclosed(app, ids) == before:
            unaudited.append(path)
    assert unaudited == []
