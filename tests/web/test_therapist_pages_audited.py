"""Every page a therapist opens about one of their patients writes, in that request, an
audit row naming the patient and the therapist. The pages are found by walking the app's
routes (every GET under /therapist/ or /learn/therapist/ that takes an id), so a page added
later is checked without being listed here."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from familylink.extensions import db
from familylink.models import AuditEvent, ConsentRecord, SessionType
from familylink.services import progress_updates
from familylink.services.program import forget_cached_program, program_row
from tests.booking_setup import create_clinic, family_seat


def _world(app) -> dict:
    """A therapist's patient with a consented family member, a video session booked for
    them, and a progress update waiting for the patient: one of each thing a page shows."""
    with app.app_context():
        clinic = create_clinic(scopes=("scheduling", "progress"))
        program_row().video_room_template = "https://meet.example-clinic.org/{room}"
        video = SessionType(name="Family session (video)", duration_minutes=50, mode="video")
        db.session.add(video)
        db.session.flush()
        forget_cached_program()
        now = datetime.now(UTC)
        starts = (now + timedelta(days=3)).replace(hour=15, minute=0, second=0, microsecond=0)
        seat = family_seat(clinic, starts, booked_at=now, session_type=video)
        update = progress_updates.draft_update(
            clinic.therapist,
            clinic.patient.id,
            text="Jordan came to every group this week and spoke about home.",
            family_user_id=None,
            now=now,
        )
        db.session.commit()
        return {
            "therapist": clinic.therapist.email,
            "therapist_id": clinic.therapist.id,
            "patient_id": clinic.patient.id,
            "seat_id": seat.id,
            "appointment_id": seat.appointment_id,
            "consent_id": db.session.scalar(select(ConsentRecord.id)),
            "update_id": update.id,
        }


def _pages_about_one_patient(app, ids: dict) -> list[str]:
    pages = []
    for rule in app.url_map.iter_rules():
        therapists = rule.rule.startswith(("/therapist/", "/learn/therapist/"))
        if therapists and "GET" in rule.methods and rule.arguments:
            assert rule.arguments <= ids.keys(), f"{rule.rule}: give this test an id for it"
            pages.append(app.url_for(rule.endpoint, **{a: ids[a] for a in rule.arguments}))
    return sorted(pages)


def _rows_about(app, ids: dict) -> int:
    with app.app_context():
        return db.session.scalar(
            select(func.count()).where(
                AuditEvent.actor_id == ids["therapist_id"],
                AuditEvent.patient_id == ids["patient_id"],
            )
        )


def test_every_therapist_page_about_a_patient_is_audited(app, client, auth):
    ids = _world(app)
    auth.login(ids["therapist"])
    with app.test_request_context():
        pages = _pages_about_one_patient(app, ids)
    assert len(pages) >= 10  # the walk found the pages
    unaudited = []
    for path in pages:
        before = _rows_about(app, ids)
        response = client.get(path)
        assert response.status_code == 200, path
        if _rows_about(app, ids) == before:
            unaudited.append(path)
    assert unaudited == []
