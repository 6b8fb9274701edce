"""The admin's session types page: add, edit, turn off; booked sessions keep working."""

import pytest
from sqlalchemy import func, select

from familylink.extensions import db
from familylink.models import AuditEvent, Role, SessionType, User
from familylink.services import booking
from tests.booking_setup import create_clinic
from tests.factories import create_user
from tests.moments import NOON

FORM = {
    "name": "Couples session",
    "duration_minutes": "60",
    "capacity": "1",
    "mode": "in_person",
    "location": "Room 4",
    "cancellation_window_hours": "48",
}


@pytest.fixture
def settings_override():
    return {"NOW_OVERRIDE": NOON}


@pytest.fixture
def world(app):
    with app.app_context():
        clinic = create_clinic()
        create_user(Role.ADMIN, email="admin@example.org")
        ids = {
            "private": clinic.private.id,
            "group": clinic.group.id,
            "patient": clinic.patient.id,
            "family": clinic.family.email,
            "therapist": clinic.therapist.email,
        }
        db.session.commit()
    return ids


def session_type(app, name):
    with app.app_context():
        return db.session.scalar(select(SessionType).where(SessionType.name == name))


def test_the_admin_adds_a_session_type(app, client, auth, world):
    auth.login("admin@example.org")
    page = client.get("/admin/session-types").get_data(as_text=True)
    assert "Family session" in page and "Multi-family group" in page
    response = client.post("/admin/session-types", data=FORM)
    assert response.status_code == 302
    made = session_type(app, "Couples session")
    assert (made.duration_minutes, made.location, made.cancellation_window_hours) == (
        60,
        "Room 4",
        48,
    )
    assert made.active


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "", "Enter a name."),
        ("duration_minutes", "5", "Use 10 to 480 minutes."),
        ("capacity", "0", "Use 1 (one family) to 50 families."),
        ("mode", "carrier-pigeon", "Choose in person or video."),
        ("cancellation_window_hours", "-1", "between 0 and 336"),
    ],
)
def test_bad_session_types_are_refused_beside_the_field(
    app, client, auth, world, field, value, message
):
    auth.login("admin@example.org")
    response = client.post("/admin/session-types", data={**FORM, field: value})
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert session_type(app, "Couples session") is None


def test_a_video_type_needs_no_link_of_its_own(app, client, auth, world):
    # Each video session gets its own room (services/booking/rooms.py), none per type.
    auth.login("admin@example.org")
    data = {**FORM, "mode": "video", "location": ""}
    assert client.post("/admin/session-types", data=data).status_code == 302
    assert session_type(app, "Couples session").mode == "video"


def test_the_admin_edits_a_session_type(app, client, auth, world):
    auth.login("admin@example.org")
    url = f"/admin/session-types/{world['private']}"
    assert 'value="Family session"' in client.get(url).get_data(as_text=True)
    data = {**FORM, "name": "Family meeting", "duration_minutes": "45"}
    assert client.post(url, data=data).status_code == 302
    changed = session_type(app, "Family meeting")
    assert changed.id == world["private"] and changed.duration_minutes == 45
    with app.app_context():
        assert db.session.scalar(
            select(AuditEvent).where(AuditEvent.action == "session_type.changed")
        )


def test_a_private_type_cannot_become_a_group(app, client, auth, world):
    auth.login("admin@example.org")
    url = f"/admin/session-types/{world['private']}"
    response = client.post(url, data={**FORM, "capacity": "6"})
    assert response.status_code == 400
    assert "Add a new session type instead." in response.get_data(as_text=True)
    assert session_type(app, "Family session").capacity == 1


def test_an_unknown_session_type_is_not_found(client, auth, world):
    auth.login("admin@example.org")
    assert client.get("/admin/session-types/987654").status_code == 404
    assert (
        client.post("/admin/session-types/987654/active", data={"active": "0"}).status_code == 404
    )


def test_a_turned_off_type_cannot_be_booked_but_booked_sessions_go_ahead(app, client, auth, world):
    with app.app_context():
        family = db.session.scalar(select(User).where(User.email == world["family"]))
        private = db.session.get(SessionType, world["private"])
        first, later = booking.slots_for(private_therapist(world, app), private, now=NOON)[20:22]
        seat = booking.book_private(
            actor=family,
            patient_id=world["patient"],
            session_type_id=private.id,
            starts_at=first,
            now=NOON,
        )
        db.session.commit()
        seat_id = seat.id
    auth.login("admin@example.org")
    response = client.post(f"/admin/session-types/{world['private']}/active", data={"active": "0"})
    assert response.status_code == 302
    assert "off" in client.get("/admin/session-types").get_data(as_text=True)
    client.post("/logout")
    auth.login(world["family"])
    page = client.get(f"/booking/new?patient={world['patient']}").get_data(as_text=True)
    assert "Family session" not in page and "There are no session types to book yet." in page
    refused = client.post(
        f"/booking/new?patient={world['patient']}&type={world['private']}",
        data={
            "slot": later.strftime("%Y-%m-%dT%H:%MZ"),
            "request_key": "k-off",
            "confirmed": "1",
        },
    )
    assert refused.status_code == 400
    # The session booked before still shows, moves and cancels.
    assert client.get(f"/booking/{seat_id}").status_code == 200
    moved = client.post(
        f"/booking/{seat_id}/reschedule", data={"slot": later.strftime("%Y-%m-%dT%H:%MZ")}
    )
    assert moved.status_code == 302
    assert client.post(f"/booking/{seat_id}/cancel").status_code == 302
    with app.app_context():
        from familylink.models import AppointmentFamily

        assert db.session.get(AppointmentFamily, seat_id).status == "cancelled"
    client.post("/logout")
    auth.login("admin@example.org")
    client.post(f"/admin/session-types/{world['private']}/active", data={"active": "1"})
    assert session_type(app, "Family session").active


def private_therapist(world, app):

    return db.session.scalar(select(User.id).where(User.email == world["therapist"]))


def test_other_roles_cannot_manage_session_types(client, auth, world):
    auth.login(world["therapist"])
    assert client.get("/admin/session-types").status_code == 404
    response = client.post(f"/admin/session-types/{world['private']}/active", data={"active": "0"})
    assert response.status_code == 404


# --- The one screen: name and location reach emails and calendar files ---------------------


def confirmations(app):
    with app.app_context():
        return [
            (e.actor_id, e.object_id, e.patient_id, e.detail)
            for e in db.session.scalars(
                select(AuditEvent).where(AuditEvent.action == "screening.confirmed")
            )
        ]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "Dual Diagnosis family session", "leave out &#34;Diagnosis&#34;"),
        ("name", "Couples\r\nsession", "no line breaks, tabs or invisible characters"),
        ("name", "R\u0435hab couples", "leave out &#34;R\u0435hab&#34;"),
        ("location", "Room 4\nBcc: x", "no line breaks, tabs or invisible characters"),
    ],
)
def test_text_that_reaches_emails_is_screened_and_nothing_is_saved(
    app, client, auth, world, field, value, message
):
    auth.login("admin@example.org")
    data = {**FORM, field: value}
    response = client.post("/admin/session-types", data=data)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(SessionType)) == 2
    assert confirmations(app) == []


def test_a_location_with_a_clinical_word_is_saved_only_once_the_admin_confirms_it(
    app, client, auth, world
):
    """Issue 17: "… Addiction Recovery Center" went verbatim into emails and LOCATION."""
    auth.login("admin@example.org")
    place = "Lakeside Addiction Recovery Center, 12 Elm St"
    refused = client.post("/admin/session-types", data={**FORM, "location": place})
    page = refused.get_data(as_text=True)
    assert refused.status_code == 400
    assert "&#34;Addiction&#34;, &#34;Recovery&#34;" in page
    assert 'name="location_words" value="addiction,recovery"' in page
    assert "Use it anyway" in page
    assert session_type(app, "Couples session") is None
    # Ticking the box confirms the words shown, and the confirmation is audited.
    confirmed = {**FORM, "location": place, "location_anyway": "y"}
    confirmed["location_words"] = "addiction,recovery"
    assert client.post("/admin/session-types", data=confirmed).status_code == 302
    made = session_type(app, "Couples session")
    assert made.location == place
    with app.app_context():
        admin = db.session.scalar(select(User.id).where(User.email == "admin@example.org"))
    # It names the field and the words, and no patient.
    assert confirmations(app) == [
        (admin, made.id, None, {"field": "location", "words": ["addiction", "recovery"]})
    ]


def test_a_confirmation_covers_only_the_words_the_admin_was_shown(app, client, auth, world):
    auth.login("admin@example.org")
    data = {
        **FORM,
        "location": "12 Recovery Drive, Detox wing",
        "location_anyway": "y",
        "location_words": "recovery",
    }
    response = client.post("/admin/session-types", data=data)
    assert response.status_code == 400
    assert "&#34;Detox&#34;" in response.get_data(as_text=True)
    assert session_type(app, "Couples session") is None
    assert confirmations(app) == []


def test_a_plain_location_needs_no_confirmation_and_writes_none(app, client, auth, world):
    auth.login("admin@example.org")
    page = client.get("/admin/session-types").get_data(as_text=True)
    assert "Use it anyway" not in page
    assert client.post("/admin/session-types", data=FORM).status_code == 302
    assert confirmations(app) == []


def test_an_edit_is_screened_and_a_confirmed_location_is_audited(app, client, auth, world):
    auth.login("admin@example.org")
    url = f"/admin/session-types/{world['private']}"
    refused = client.post(url, data={**FORM, "name": "Drug Court family session"})
    assert refused.status_code == 400
    assert session_type(app, "Family session") is not None
    data = {**FORM, "location": "1 Sober Way", "location_anyway": "y", "location_words": "sober"}
    assert client.post(url, data=data).status_code == 302
    with app.app_context():
        assert db.session.get(SessionType, world["private"]).location == "1 Sober Way"
    assert [detail for *_, detail in confirmations(app)] == [
        {"field": "location", "words": ["sober"]}
    ]
