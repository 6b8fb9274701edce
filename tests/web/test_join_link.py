"""The join link through the pages: /join/<token> answers 303 to the room for an attendee at
the right time, a clear page otherwise, and the same 404 as a missing token to anyone else;
the admin sets the room template, the therapist pastes a link when there is none."""

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from familylink.extensions import db
from familylink.models import Appointment, AuditEvent, ConsentRecord, Role, SessionType, User
from familylink.services.booking.rooms import room_name
from familylink.services.program import forget_cached_program, program_row
from tests.booking_setup import add_family, create_clinic, family_seat
from tests.factories import create_user
from tests.moments import NOON

TEMPLATE = "https://meet.example-clinic.org/{room}"
STARTS = NOON + timedelta(days=2)


@pytest.fixture
def clinic(app):
    with app.app_context():
        made = create_clinic()
        program_row().video_room_template = TEMPLATE
        video = SessionType(name="Family session (video)", duration_minutes=50, mode="video")
        db.session.add(video)
        db.session.flush()
        forget_cached_program()
        seat = family_seat(made, STARTS, booked_at=NOON, session_type=video)
        other_member = add_family(made.patient, "Luis Rivera")
        other_therapist = create_user(Role.THERAPIST, name="Dr. Patel")
        admin = create_user(Role.ADMIN)
        db.session.commit()
        return {
            "family": made.family.email,
            "therapist": made.therapist.email,
            "patient": made.patient.email,
            "other_member": other_member.email,
            "other_therapist": other_therapist.email,
            "admin": admin.email,
            "seat": seat.id,
            "appointment": seat.appointment.id,
            "join": f"/join/{seat.appointment.join_token}",
            "room": TEMPLATE.replace("{room}", room_name(seat.appointment)),
        }


def at(app, moment):
    """Sign-ins and requests happen at `moment` (set before signing in: idle logoff)."""
    app.config["NOW_OVERRIDE"] = moment


def test_signed_out_the_link_asks_to_sign_in_and_comes_back(app, client, clinic):
    response = client.get(clinic["join"])
    assert response.status_code == 302
    assert "/login" in response.location and "next=%2Fjoin%2F" in response.location


def test_a_family_member_joins_10_minutes_before_with_a_303_to_the_room(app, client, auth, clinic):
    at(app, STARTS - timedelta(minutes=10))
    auth.login(clinic["family"])
    response = client.get(clinic["join"])
    assert response.status_code == 303
    assert response.location == clinic["room"]
    with app.app_context():
        actions = db.session.scalars(
            select(AuditEvent.action).where(AuditEvent.object_id == clinic["appointment"])
        ).all()
    assert "video.joined" in actions


@pytest.mark.parametrize("who", ["therapist", "patient"])
def test_the_therapist_and_the_patient_join(app, client, auth, clinic, who):
    at(app, STARTS + timedelta(minutes=20))
    auth.login(clinic[who])
    response = client.get(clinic["join"])
    assert response.status_code == 303 and response.location == clinic["room"]


def test_too_early_the_page_says_when_the_room_opens(app, client, auth, clinic):
    at(app, STARTS - timedelta(hours=3))
    auth.login(clinic["family"])
    response = client.get(clinic["join"])
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and response.location is None
    # STARTS is 17:00 UTC, 12:00 in New York: the room opens at 11:45.
    assert "has not opened yet" in page and "11:45" in page
    assert "meet.example-clinic.org" not in page


def test_after_the_end_the_page_says_it_has_ended(app, client, auth, clinic):
    at(app, STARTS + timedelta(minutes=51))
    auth.login(clinic["family"])
    response = client.get(clinic["join"])
    assert response.status_code == 200 and "has ended" in response.get_data(as_text=True)


@pytest.mark.parametrize("who", ["other_member", "other_therapist"])
def test_anyone_not_coming_gets_the_same_404_as_a_missing_token(app, client, auth, clinic, who):
    at(app, STARTS - timedelta(minutes=10))
    auth.login(clinic[who])
    refused = client.get(clinic["join"])
    missing = client.get("/join/no-such-token")
    assert refused.status_code == missing.status_code == 404
    # The same page, but for the sign-out form's CSRF token, whose signature carries the
    # second it was made in (two requests may fall in different seconds).
    token = re.compile(r'name="csrf_token" (?:type="hidden" )?value="[^"]*"')
    assert token.sub("", refused.get_data(as_text=True)) == token.sub(
        "", missing.get_data(as_text=True)
    )


def test_an_admin_gets_404(app, client, auth, clinic):
    at(app, STARTS - timedelta(minutes=10))
    auth.login(clinic["admin"])
    assert client.get(clinic["join"]).status_code == 404


def test_a_revoked_member_gets_404(app, client, auth, clinic):
    at(app, STARTS - timedelta(minutes=10))
    auth.login(clinic["patient"])
    with app.app_context():
        family_id = db.session.scalar(select(User.id).where(User.email == clinic["family"]))
        consent_id = db.session.scalar(
            select(ConsentRecord.id).where(ConsentRecord.recipient_user_id == family_id)
        )
    assert client.post(f"/patient/consents/{consent_id}/revoke").status_code == 302
    auth.logout()
    auth.login(clinic["family"])
    assert client.get(clinic["join"]).status_code == 404


def test_a_cancelled_session_says_so_and_never_redirects(app, client, auth, clinic):
    at(app, NOON)
    auth.login(clinic["family"])
    assert client.post(f"/booking/{clinic['seat']}/cancel").status_code == 302
    auth.logout()
    at(app, STARTS - timedelta(minutes=10))
    auth.login(clinic["family"])
    response = client.get(clinic["join"])
    assert response.status_code == 200 and "was cancelled" in response.get_data(as_text=True)


def test_the_booking_page_shows_the_join_link_never_the_room(app, client, auth, clinic):
    at(app, NOON)
    auth.login(clinic["family"])
    page = client.get(f"/booking/{clinic['seat']}").get_data(as_text=True)
    assert clinic["join"] in page and "meet.example-clinic.org" not in page


# --- Settings: the room template (admin), a pasted link (therapist) -----------------------


def settings_form(app) -> dict:
    with app.app_context():
        program = program_row()
        return {
            "name": program.name,
            "sender_name": program.sender_name,
            "timezone": program.timezone,
            "reminder_offsets_hours": [str(h) for h in program.reminder_offsets_hours],
            "cancellation_window_hours": program.cancellation_window_hours,
            "booking_horizon_days": program.booking_horizon_days,
            "minimum_notice_hours": program.minimum_notice_hours,
            "waitlist_hold_hours": program.waitlist_hold_hours,
            "buffer_minutes": program.buffer_minutes,
        }


@pytest.mark.parametrize(
    "template", ["http://meet.example-clinic.org/{room}", "https://meet.example-clinic.org/"]
)
def test_the_admin_is_told_what_a_room_template_needs_and_nothing_changes(
    app, client, auth, clinic, template
):
    at(app, NOON)
    auth.login(clinic["admin"])
    data = {**settings_form(app), "video_room_template": template}
    response = client.post("/admin/settings", data=data)
    assert response.status_code == 400
    assert "https://" in response.get_data(as_text=True)
    with app.app_context():
        assert program_row().video_room_template == TEMPLATE


def test_the_admin_sets_the_room_template(app, client, auth, clinic):
    at(app, NOON)
    auth.login(clinic["admin"])
    data = {**settings_form(app), "video_room_template": "https://jitsi.example.org/fl/{room}"}
    assert client.post("/admin/settings", data=data).status_code == 302
    with app.app_context():
        assert program_row().video_room_template == "https://jitsi.example.org/fl/{room}"


def test_without_a_template_the_therapist_pastes_the_sessions_link(app, client, auth, clinic):
    with app.app_context():
        program_row().video_room_template = None
        db.session.commit()
        forget_cached_program()
    at(app, STARTS - timedelta(minutes=10))
    auth.login(clinic["therapist"])
    page = f"/therapist/appointments/{clinic['appointment']}/room"
    calendar = "/therapist/calendar?date=2026-11-20"
    before = client.get(calendar).get_data(as_text=True)
    assert clinic["join"] in before and "not added yet" in before
    refused = client.post(page, data={"room_link": "http://video.example.org/j/1"})
    assert refused.status_code == 400 and "https://" in refused.get_data(as_text=True)
    link = "https://video.example.org/j/8812-4471"
    assert client.post(page, data={"room_link": link}).status_code == 302
    with app.app_context():
        assert db.session.get(Appointment, clinic["appointment"]).room_link == link
    assert "not added yet" not in client.get(calendar).get_data(as_text=True)
    auth.logout()
    auth.login(clinic["family"])
    response = client.get(clinic["join"])
    assert response.status_code == 303 and response.location == link


def test_once_the_session_is_over_the_calendar_offers_no_room_and_no_link_is_taken(
    app, client, auth, clinic
):
    with app.app_context():
        program_row().video_room_template = None
        db.session.commit()
        forget_cached_program()
        ends = db.session.get(Appointment, clinic["appointment"]).ends_at
    auth.login(clinic["therapist"])
    page = f"/therapist/appointments/{clinic['appointment']}/room"
    calendar = "/therapist/calendar?date=2026-11-20"
    at(app, ends - timedelta(minutes=1))
    assert page in client.get(calendar).get_data(as_text=True)
    at(app, ends)
    shown = client.get(calendar).get_data(as_text=True)
    assert page not in shown and clinic["join"] not in shown
    refused = client.post(page, data={"room_link": "https://video.example.org/j/1"})
    assert refused.status_code == 400
    assert "will not open again" in refused.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Appointment, clinic["appointment"]).room_link is None


def test_another_therapist_cannot_open_the_room_page(app, client, auth, clinic):
    at(app, NOON)
    auth.login(clinic["other_therapist"])
    page = f"/therapist/appointments/{clinic['appointment']}/room"
    assert client.get(page).status_code == 404
    assert client.post(page, data={"room_link": "https://x.example.org/1"}).status_code == 404


def test_the_patients_sessions_page_shows_the_join_link_never_the_room(app, client, auth, clinic):
    at(app, NOON)
    auth.login(clinic["patient"])
    page = client.get("/patient/sessions").get_data(as_text=True)
    assert clinic["join"] in page and "meet.example-clinic.org" not in page
