"""Family members are shown to each other only with the patient's yes (issue 16, point 5):
without the consent's family-visibility choice, "Also invite" lists nobody and a seat's
"Coming" names only the reader, however many of the family come."""

from __future__ import annotations

from datetime import timedelta

import pytest

from familylink.extensions import db
from familylink.models import AppointmentAttendee, Role
from tests.booking_setup import add_appointment, add_weekday_hours, create_session_types
from tests.conftest import AuthActions
from tests.factories import create_consent, create_user
from tests.moments import NOON


@pytest.fixture
def settings_override():
    return {"NOW_OVERRIDE": NOON}


def _family_of_two(app, *, maria_sees_family: bool) -> dict:
    with app.app_context():
        therapist = create_user(Role.THERAPIST)
        patient = create_user(Role.PATIENT, name="Jordan Rivera", therapist=therapist)
        maria = create_user(Role.FAMILY, name="Maria Rivera", email="maria@example.org")
        luis = create_user(Role.FAMILY, name="Luis Okonkwo", email="luis@example.org")
        create_consent(patient, maria, family_visible=maria_sees_family)
        create_consent(patient, luis)
        add_weekday_hours(therapist)
        private, _group = create_session_types()
        seat = add_appointment(
            therapist,
            patient,
            maria,
            private,
            starts_at=NOON + timedelta(days=3),
            booked_at=NOON - timedelta(days=1),
        )
        db.session.add(AppointmentAttendee(seat_id=seat.id, user_id=luis.id, added_at=NOON))
        db.session.commit()
        return {"patient": patient.id, "seat": seat.id}


def _pages_for_maria(app, ids) -> tuple[str, str]:
    client = app.test_client()
    AuthActions(client, app).login("maria@example.org")
    booking_page = client.get(f"/booking/new?patient={ids['patient']}")
    seat_page = client.get(f"/booking/{ids['seat']}")
    assert booking_page.status_code == seat_page.status_code == 200
    return booking_page.get_data(as_text=True), seat_page.get_data(as_text=True)


def test_without_the_patients_yes_no_page_shows_maria_the_other_family_member(app):
    ids = _family_of_two(app, maria_sees_family=False)
    booking_page, seat_page = _pages_for_maria(app, ids)
    assert "Okonkwo" not in booking_page and "Okonkwo" not in seat_page
    assert "Coming: Maria Rivera</p>" in seat_page


def test_with_the_patients_yes_maria_sees_and_may_invite_the_other_family_member(app):
    ids = _family_of_two(app, maria_sees_family=True)
    booking_page, seat_page = _pages_for_maria(app, ids)
    assert "Luis Okonkwo" in booking_page and "Luis Okonkwo" in seat_page
