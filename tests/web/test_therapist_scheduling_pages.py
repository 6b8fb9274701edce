"""The therapist's scheduling pages: hours, time off, session types, groups, booking."""

import pytest
from sqlalchemy import func, select

from familylink.extensions import db
from familylink.models import (
    Appointment,
    AppointmentFamily,
    AvailabilityOverride,
    AvailabilityWindow,
    OutboxEmail,
    Role,
    SessionType,
)
from tests.factories import create_user
from tests.moments import NOON


@pytest.fixture
def settings_override():
    return {"NOW_OVERRIDE": NOON}


def count(app, model):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def test_therapist_adds_weekly_hours_and_bad_hours_are_refused(app, client, auth, clinic):
    auth.login(clinic["therapist"])
    before = count(app, AvailabilityWindow)
    ok = client.post(
        "/therapist/availability/windows",
        data={"weekday": 5, "start_time": "10:00", "end_time": "12:00"},
    )
    assert ok.status_code == 302
    bad = client.post(
        "/therapist/availability/windows",
        data={"weekday": 5, "start_time": "12:00", "end_time": "10:00"},
    )
    assert bad.status_code == 400
    assert "The end time must be after the start time." in bad.get_data(as_text=True)
    assert count(app, AvailabilityWindow) == before + 1
    assert "Saturday 10:00 AM to 12:00 PM" in client.get("/therapist/availability").get_data(
        as_text=True
    )


def test_time_off_removes_free_slots(app, client, auth, clinic):
    auth.login(clinic["therapist"])
    client.post("/therapist/availability/overrides", data={"day": "2026-11-19", "off": "y"})
    page = client.get(f"/therapist/book?patient={clinic['patient']}").get_data(as_text=True)
    thursday = page.split("<legend>Thursday, November 19</legend>")[1].split("</fieldset>")[0]
    assert "No free times on this day." in thursday and 'type="radio"' not in thursday
    assert '<label for="slot-2026-11-20T1400Z">9:00 AM</label>' in page  # Friday


def test_time_off_with_a_day_of_spaces_only_is_refused_and_changes_nothing(
    app, client, auth, clinic
):
    auth.login(clinic["therapist"])
    before = count(app, AvailabilityOverride)
    response = client.post(
        "/therapist/availability/overrides",
        data={"day": "   ", "off": "y", "start_time": "10:00", "end_time": "11:00"},
    )
    assert response.status_code == 400
    assert count(app, AvailabilityOverride) == before


def test_therapist_adds_a_session_type(app, client, auth, clinic):
    auth.login(clinic["therapist"])
    data = {"name": "Couples session", "duration_minutes": 60, "capacity": 1, "mode": "in_person"}
    assert client.post("/therapist/session-types", data=data).status_code == 302
    data.update(mode="sky-writing")
    response = client.post("/therapist/session-types", data=data)
    assert response.status_code == 400 and "Choose in person or video." in response.get_data(
        as_text=True
    )
    assert count(app, SessionType) == 3


def test_a_therapists_session_type_goes_through_the_same_screen(app, client, auth, clinic):
    auth.login(clinic["therapist"])
    data = {"name": "Couples session", "duration_minutes": 60, "capacity": 1, "mode": "in_person"}
    refused = client.post("/therapist/session-types", data={**data, "name": "Detox couples"})
    assert refused.status_code == 400 and "leave out &#34;Detox&#34;" in refused.get_data(
        as_text=True
    )
    place = {**data, "location": "4 Recovery Road"}
    refused = client.post("/therapist/session-types", data=place)
    assert refused.status_code == 400 and "Use it anyway" in refused.get_data(as_text=True)
    assert count(app, SessionType) == 2
    confirmed = {**place, "location_anyway": "y", "location_words": "recovery"}
    assert client.post("/therapist/session-types", data=confirmed).status_code == 302
    with app.app_context():
        from familylink.models import AuditEvent

        event = db.session.scalar(
            select(AuditEvent).where(AuditEvent.action == "screening.confirmed")
        )
        assert event.detail == {"field": "location", "words": ["recovery"]}


def test_a_group_in_the_spring_forward_gap_is_refused_with_a_clear_message(
    app, client, auth, clinic
):
    auth.login(clinic["therapist"])
    data = {
        "session_type": clinic["group"],
        "first_day": "2027-03-14",
        "start_time": "02:30",
        "weeks": 1,
    }
    response = client.post("/therapist/groups", data=data)
    assert response.status_code == 400
    assert "the clocks skip that hour" in response.get_data(as_text=True)
    assert count(app, Appointment) == 0
    data.update(start_time="17:00", weeks=4)
    assert client.post("/therapist/groups", data=data).status_code == 302
    assert count(app, Appointment) == 4


def test_therapist_books_for_a_family_and_the_family_is_emailed(app, client, auth, clinic):
    auth.login(clinic["therapist"])
    data = {
        "session_type": clinic["private"],
        "slot": "2026-11-19T14:00Z",
        "attendees": [clinic["family_id"]],
    }
    response = client.post(f"/therapist/book?patient={clinic['patient']}", data=data)
    assert response.status_code == 302
    assert count(app, OutboxEmail) == 1
    again = client.post(f"/therapist/book?patient={clinic['patient']}", data=data)
    assert again.status_code == 409 or again.status_code == 400
    assert count(app, Appointment) == 1


def test_the_therapists_note_and_chosen_family_reach_the_booking(app, client, auth, clinic):
    auth.login(clinic["therapist"])
    data = {
        "session_type": clinic["private"],
        "slot": "2026-11-19T14:00Z",
        "attendees": [clinic["family_id"]],
        "note": "Bring the workbook",
    }
    response = client.post(f"/therapist/book?patient={clinic['patient']}", data=data)
    assert response.status_code == 302
    with app.app_context():
        seat = db.session.scalars(select(AppointmentFamily)).one()
        assert seat.note == "Bring the workbook"
        assert clinic["family_id"] in [person.user_id for person in seat.attendees]


def test_booking_for_another_therapists_patient_is_404(app, client, auth, clinic):
    with app.app_context():
        other = create_user(Role.PATIENT)
        other_id = other.id
        db.session.commit()
    auth.login(clinic["therapist"])
    assert client.get(f"/therapist/book?patient={other_id}").status_code == 404
    assert client.post(f"/therapist/book?patient={other_id}", data={}).status_code == 404


def test_the_calendar_shows_consent_scopes_and_consent_ending_soon(app, client, auth, clinic):
    from datetime import timedelta

    from familylink.models import Role, User
    from tests.factories import create_consent, create_user

    with app.app_context():
        patient = db.session.get(User, clinic["patient"])
        family = db.session.get(User, clinic["family_id"])
        create_consent(patient, family, scopes=("scheduling", "attendance"))
        uncle = create_user(Role.FAMILY, name="Sam Uncle")
        create_consent(patient, uncle, scopes=("scheduling",), expires_at=NOON + timedelta(days=3))
        db.session.commit()
    auth.login(clinic["therapist"])
    client.post(
        f"/therapist/book?patient={clinic['patient']}",
        data={
            "session_type": clinic["private"],
            "slot": "2026-11-19T14:00Z",
            "attendees": [clinic["family_id"]],
        },
    )
    page = client.get("/therapist/calendar?date=2026-11-19").get_data(as_text=True)
    assert "Coming: Maria Rivera" in page
    assert "may see: Family session times, Attendance" in page
    assert "May also come, not booked: Sam Uncle (consent lasts until" in page
    assert page.count("consent lasts until") == 1  # only Sam's consent ends soon
