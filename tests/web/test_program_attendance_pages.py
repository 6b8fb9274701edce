"""Program attendance through the pages: the therapist's one form per day for their own
patients, and the weekly summary on the family member's patient page, shown (and audited)
only under the attendance scope."""

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from familylink.extensions import db
from familylink.models import AuditEvent, ConsentRecord, ProgramAttendance, Role, User
from familylink.services import attendance, consent
from tests.conftest import AuthActions
from tests.factories import create_consent, create_user
from tests.moments import NOON

TODAY = date(2026, 11, 18)  # NOON's day in the program's time zone, a Wednesday
SUMMARY = "Program attendance"


@pytest.fixture
def settings_override():
    return {"NOW_OVERRIDE": NOON}


@pytest.fixture
def people(app) -> dict:
    """Dr. Lee with Jordan and Sam; Dr. Patel with Casey; Maria (Jordan's mother)."""
    with app.app_context():
        lee = create_user(Role.THERAPIST, name="Dr. Grace Lee", email="lee@example.org")
        jordan = create_user(Role.PATIENT, name="Jordan Rivera", therapist=lee)
        sam = create_user(Role.PATIENT, name="Sam Okafor", therapist=lee)
        patel = create_user(Role.THERAPIST, name="Dr. Ravi Patel", email="patel@example.org")
        casey = create_user(Role.PATIENT, name="Casey Nguyen", therapist=patel)
        create_user(Role.FAMILY, name="Maria Rivera", email="maria@example.org")
        db.session.commit()
        return {"jordan": jordan.id, "sam": sam.id, "casey": casey.id, "lee": lee.id}


def _signed_in(app, email: str):
    client = app.test_client()
    AuthActions(client, app).login(email)
    return client


def _rows(app) -> list[tuple[int, date, str]]:
    with app.app_context():
        return list(
            db.session.execute(
                select(
                    ProgramAttendance.patient_id, ProgramAttendance.day, ProgramAttendance.status
                ).order_by(ProgramAttendance.patient_id)
            ).tuples()
        )


def _disclosures(app) -> list[AuditEvent]:
    with app.app_context():
        return [
            event
            for event in db.session.scalars(
                select(AuditEvent).where(AuditEvent.action == "disclosure.viewed")
            )
            if event.detail == {"what": "program attendance"}
        ]


# --- The therapist's form ----------------------------------------------------------------


def test_the_form_lists_the_therapists_own_patients_with_nothing_chosen(app, people):
    page = _signed_in(app, "lee@example.org").get("/therapist/attendance").get_data(as_text=True)
    assert "Jordan Rivera" in page and "Sam Okafor" in page and "Casey Nguyen" not in page
    assert f'name="status-{people["jordan"]}" value="excused"' in page
    assert "checked" not in page
    assert "Wednesday, November 18, 2026" in page


def test_the_therapists_home_and_menu_link_to_the_form(app, people):
    page = _signed_in(app, "lee@example.org").get("/therapist/").get_data(as_text=True)
    assert page.count('href="/therapist/attendance"') == 2


def test_a_therapist_records_a_day_and_it_is_shown_as_recorded(app, people):
    client = _signed_in(app, "lee@example.org")
    response = client.post(
        "/therapist/attendance",
        data={"day": "2026-11-17", f"status-{people['jordan']}": "attended"},
    )
    assert response.status_code == 302
    assert response.location.endswith("/therapist/attendance?day=2026-11-17")
    assert _rows(app) == [(people["jordan"], date(2026, 11, 17), "attended")]
    page = client.get(response.location).get_data(as_text=True)
    assert "Saved 1 change." in page
    assert 'value="attended" checked' in page and page.count("checked") == 1
    with app.app_context():
        recorded = db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "program_attendance.recorded")
        ).all()
        assert [(e.patient_id, e.actor_id) for e in recorded] == [(people["jordan"], people["lee"])]


def test_a_correction_changes_the_day_in_place(app, people):
    client = _signed_in(app, "lee@example.org")
    for status in ("absent", "excused"):
        client.post(
            "/therapist/attendance",
            data={"day": "2026-11-18", f"status-{people['jordan']}": status},
        )
    assert _rows(app) == [(people["jordan"], TODAY, "excused")]


def test_a_day_to_come_is_refused_with_a_message_and_nothing_changes(app, people):
    response = _signed_in(app, "lee@example.org").post(
        "/therapist/attendance",
        data={"day": "2026-11-19", f"status-{people['jordan']}": "attended"},
    )
    assert response.status_code == 400
    assert "not a day to come" in response.get_data(as_text=True)
    assert _rows(app) == []


def test_asking_for_a_day_to_come_shows_today(app, people):
    page = _signed_in(app, "lee@example.org").get("/therapist/attendance?day=2026-12-25")
    assert "Wednesday, November 18, 2026" in page.get_data(as_text=True)


@pytest.mark.parametrize("day", ["", "2026-02-30", "18/11/2026"])
def test_a_missing_or_broken_day_is_refused_with_a_message(app, people, day):
    response = _signed_in(app, "lee@example.org").post(
        "/therapist/attendance", data={"day": day, f"status-{people['jordan']}": "attended"}
    )
    assert response.status_code == 400 and _rows(app) == []


def test_a_status_not_offered_is_refused(app, people):
    response = _signed_in(app, "lee@example.org").post(
        "/therapist/attendance", data={"day": "2026-11-18", f"status-{people['jordan']}": "gone"}
    )
    assert response.status_code == 400
    assert "Choose attended, absent or excused." in response.get_data(as_text=True)
    assert _rows(app) == []


@pytest.mark.parametrize("key", ["casey", "unknown", "garbage"])
def test_another_therapists_patient_or_a_guessed_id_is_404_and_nothing_is_recorded(
    app, people, key
):
    name = {
        "casey": f"status-{people['casey']}",
        "unknown": "status-99999",
        "garbage": "status-1x",
    }[key]
    response = _signed_in(app, "lee@example.org").post(
        "/therapist/attendance",
        data={"day": "2026-11-18", f"status-{people['jordan']}": "attended", name: "attended"},
    )
    assert response.status_code == 404
    assert _rows(app) == []


def test_another_therapist_cannot_record_for_jordan(app, people):
    response = _signed_in(app, "patel@example.org").post(
        "/therapist/attendance",
        data={"day": "2026-11-18", f"status-{people['jordan']}": "attended"},
    )
    assert response.status_code == 404 and _rows(app) == []


# --- The family member's summary ---------------------------------------------------------


def _record_jordans_week(app, people, scopes) -> None:
    with app.app_context():
        lee = db.session.get(User, people["lee"])
        jordan = db.session.get(User, people["jordan"])
        maria = db.session.scalar(select(User).where(User.email == "maria@example.org"))
        create_consent(jordan, maria, scopes=scopes)
        week = {
            date(2026, 11, 16): "attended",
            date(2026, 11, 17): "excused",
            date(2026, 11, 18): "attended",
            date(2026, 11, 13): "absent",
        }
        for day, status in week.items():
            attendance.record_program_attendance(lee, day, {jordan.id: status}, now=NOON)
        db.session.commit()


def test_a_member_with_the_attendance_scope_sees_the_weekly_summary(app, people):
    _record_jordans_week(app, people, ("scheduling", "attendance"))
    page = _signed_in(app, "maria@example.org").get(f"/family/patients/{people['jordan']}")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "This week:</strong> Jordan came to 2 of 3 program days. 1 absence was excused." in text
    assert "Last week:</strong> Jordan came to 0 of 1 program day." in text
    (disclosed,) = _disclosures(app)
    assert (disclosed.patient_id, disclosed.recipient_id) == (
        people["jordan"],
        disclosed.actor_id,
    )


def test_a_member_without_the_scope_sees_nothing_of_attendance_and_nothing_is_recorded(app, people):
    _record_jordans_week(app, people, ("scheduling", "progress"))
    page = _signed_in(app, "maria@example.org").get(f"/family/patients/{people['jordan']}")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert SUMMARY not in text and "program day" not in text and "came to" not in text
    assert _disclosures(app) == []


def test_a_revoked_member_sees_nothing_at_all(app, people):
    _record_jordans_week(app, people, ("scheduling", "attendance"))
    with app.app_context():
        jordan = db.session.get(User, people["jordan"])
        record = db.session.scalar(select(ConsentRecord))
        consent.revoke_consent(jordan, record.id, now=NOON - timedelta(hours=1))
        db.session.commit()
    page = _signed_in(app, "maria@example.org").get(f"/family/patients/{people['jordan']}")
    assert page.status_code == 404
    text = page.get_data(as_text=True)
    assert "Jordan" not in text and "came to" not in text
    assert _disclosures(app) == []


def test_the_summary_is_not_shown_to_another_member_of_the_family_without_the_scope(app, people):
    _record_jordans_week(app, people, ("scheduling", "attendance"))
    with app.app_context():
        jordan = db.session.get(User, people["jordan"])
        luis = create_user(Role.FAMILY, name="Luis Rivera", email="luis@example.org")
        create_consent(jordan, luis, scopes=("scheduling",))
        db.session.commit()
    text = _signed_in(app, "luis@example.org").get(f"/family/patients/{people['jordan']}")
    assert "came to" not in text.get_data(as_text=True)
    with app.app_context():
        count = db.session.scalar(
            select(func.count(AuditEvent.id)).where(AuditEvent.action == "disclosure.viewed")
        )
    assert len(_disclosures(app)) == 0 and count == 1  # the patient page itself, nothing more
