"""The private calendar feed: a secret link, resettable, and consent-bound."""

import re

import pytest
from icalendar import Calendar

from familylink.extensions import db
from familylink.models import ConsentClosure, ConsentRecord
from familylink.services import booking
from tests.booking_setup import create_clinic
from tests.moments import NOON


@pytest.fixture
def settings_override():
    return {"NOW_OVERRIDE": NOON}


@pytest.fixture
def booked(app):
    with app.app_context():
        clinic = create_clinic()
        slot = booking.slots_for(clinic.therapist.id, clinic.private, now=NOON)[0]
        seat = booking.book_private(
            actor=clinic.family,
            patient_id=clinic.patient.id,
            session_type_id=clinic.private.id,
            starts_at=slot,
            now=NOON,
        )
        ids = {"family": clinic.family.email, "uid": seat.appointment.uid}
        db.session.commit()
    return ids


def turn_on(client) -> str:
    page = client.post("/booking/feed", data={"action": "on"}).get_data(as_text=True)
    return re.search(r"http://familylink.test(/booking/feed/[^<\s]+\.ics)", page).group(1)


def uids(data: bytes) -> list[str]:
    return [str(e["UID"]) for e in Calendar.from_ical(data).walk("VEVENT")]


def test_the_feed_lists_my_sessions_and_a_reset_kills_the_old_link(app, client, auth, booked):
    auth.login(booked["family"])
    path = turn_on(client)
    auth.logout()
    response = client.get(path)
    assert response.status_code == 200 and uids(response.data) == [booked["uid"]]
    assert b"Rivera" not in response.data
    auth.login(booked["family"])
    new_path = turn_on(client)
    auth.logout()
    assert client.get(path).status_code == 404
    assert client.get(new_path).status_code == 200


def test_the_feed_stops_showing_a_patients_sessions_when_consent_ends(app, client, auth, booked):
    auth.login(booked["family"])
    path = turn_on(client)
    with app.app_context():
        record = db.session.scalars(db.select(ConsentRecord)).one()
        db.session.add(ConsentClosure(consent_id=record.id, reason="revoked", closed_at=NOON))
        db.session.commit()
    assert uids(client.get(path).data) == []


def test_an_unknown_or_turned_off_feed_answers_404(app, client, auth, booked):
    assert client.get("/booking/feed/not-a-token.ics").status_code == 404
    auth.login(booked["family"])
    path = turn_on(client)
    client.post("/booking/feed", data={"action": "off"})
    assert client.get(path).status_code == 404
