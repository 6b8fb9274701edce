"""The §2.32 re-disclosure notice goes with what is disclosed (DESIGN.md, the consent rule;
"pages that show patient information to a family member carry it"): every family page that
shows anything about a patient carries it, from one partial
(`templates/family/_redisclosure.html`); a page that shows nothing about anyone does not (the
notice itself would tell the context)."""

from datetime import timedelta

import pytest
from markupsafe import escape
from sqlalchemy import select

from familylink.extensions import db
from familylink.models import Role, SessionType, User
from familylink.services import consent
from tests.booking_setup import add_appointment
from tests.conftest import AuthActions
from tests.factories import create_consent, create_user, set_program
from tests.moments import NOON
from tests.web.test_booking_pages import slot_values
from tests.web.test_series_pages import series_seats


@pytest.fixture
def settings_override():
    return {"NOW_OVERRIDE": NOON}


def _notice(app) -> str:
    with app.test_request_context():
        return str(escape(str(consent.REDISCLOSURE_NOTICE)))


def _carries_the_notice_once(app, page: str) -> None:
    assert "Jordan" in page  # the page shows something about the patient
    assert page.count(_notice(app)) == 1
    assert page.count("Please keep this private") == 1


@pytest.fixture
def seat_id(app, clinic) -> int:
    """Maria's seat in a family session for Jordan tomorrow."""
    with app.app_context():
        people = [db.session.get(User, clinic[k]) for k in ("therapist_id", "patient", "family_id")]
        private = db.session.get(SessionType, clinic["private"])
        tomorrow = NOON + timedelta(days=1)
        return add_appointment(*people, private, starts_at=tomorrow, booked_at=NOON).id


GET_PAGES = [
    "/family/",
    "/family/patients/{patient}",
    "/booking/",
    "/booking/{seat}",
    "/booking/{seat}/cancel",
    "/booking/new?patient={patient}",
    "/booking/groups?patient={patient}",
]


@pytest.mark.parametrize("path", GET_PAGES)
def test_each_family_page_about_a_patient_carries_the_notice(
    app, client, auth, clinic, seat_id, path
):
    auth.login(clinic["family"])
    response = client.get(path.format(patient=clinic["patient"], seat=seat_id))
    assert response.status_code == 200
    _carries_the_notice_once(app, response.get_data(as_text=True))


def test_the_choice_of_session_type_carries_the_notice(app, client, auth, clinic):
    with app.app_context():
        db.session.add(SessionType(name="Couples", duration_minutes=50, capacity=1, active=True))
        db.session.commit()
    auth.login(clinic["family"])
    page = client.get(f"/booking/new?patient={clinic['patient']}").get_data(as_text=True)
    assert "What kind of session?" in page
    _carries_the_notice_once(app, page)


def test_the_booking_confirmation_step_carries_the_notice(app, client, auth, clinic):
    auth.login(clinic["family"])
    url = f"/booking/new?patient={clinic['patient']}"
    slot = slot_values(client.get(url).get_data(as_text=True))[0]
    response = client.post(url, data={"slot": slot, "request_key": "k", "note": ""})
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "Check your booking" in page
    _carries_the_notice_once(app, page)


def test_a_weekly_series_confirmation_and_its_cancellation_carry_the_notice(
    app, client, auth, clinic
):
    set_program(app, families_may_book_series=True)
    auth.login(clinic["family"])
    url = f"/booking/new?patient={clinic['patient']}"
    slot = slot_values(client.get(url).get_data(as_text=True))[0]
    form = {"slot": slot, "weeks": "3", "note": "", "request_key": "series"}
    checking = client.post(url, data=form)
    assert checking.status_code == 200
    _carries_the_notice_once(app, checking.get_data(as_text=True))
    assert client.post(url, data={**form, "confirmed": "1"}).status_code == 302
    seats = series_seats(app)
    page = client.get(f"/booking/{seats[0]}/cancel-future").get_data(as_text=True)
    assert "Cancel weekly sessions" in page
    _carries_the_notice_once(app, page)


@pytest.mark.parametrize("path", ["/family/", "/booking/"])
def test_a_member_shown_nothing_is_shown_no_notice(app, path):
    with app.app_context():
        patient = create_user(Role.PATIENT, name="Jordan Rivera")
        create_user(Role.FAMILY, email="maria@example.org")
        ended = create_user(Role.FAMILY, email="luis@example.org")
        create_consent(patient, ended, expires_at=NOON - timedelta(days=1))
        db.session.commit()
    for email in ("maria@example.org", "luis@example.org"):
        client = app.test_client()
        AuthActions(client, app).login(email)
        page = client.get(path).get_data(as_text=True)
        assert "Jordan" not in page
        assert _notice(app) not in page and "Please keep this private" not in page


def test_the_reading_pages_about_a_patient_carry_the_notice(app, client, auth, reading_world):
    from familylink.services import learning

    world = reading_world(jordan_name="Jordan Vale")
    with app.app_context():
        lee = db.session.scalar(select(User).where(User.email == "lee@example.org"))
        learning.assign_modules(
            therapist=lee,
            patient_id=world["jordan"],
            family_user_id=world["maria"],
            module_ids=[world["modules"]["relapse-warning-signs"]],
            note=None,
            now=NOON,
        )
        db.session.commit()
    auth.login("maria@example.org")
    _carries_the_notice_once(app, client.get("/learn/").get_data(as_text=True))
    about = f"/learn/modules/relapse-warning-signs?patient={world['jordan']}"
    _carries_the_notice_once(app, client.get(about).get_data(as_text=True))
    # A reading of her own, or a practice tool, offers to share with Jordan's therapist.
    _carries_the_notice_once(app, client.get("/learn/modules/boundaries").get_data(as_text=True))
    _carries_the_notice_once(app, client.get("/learn/practice/message/new").get_data(as_text=True))
    auth.logout()
    # Drew has no consent: the same pages name nobody and carry no notice.
    auth.login("drew@example.org")
    for path in ("/learn/", "/learn/modules/boundaries", "/learn/practice/message/new"):
        page = client.get(path).get_data(as_text=True)
        assert "Jordan" not in page and _notice(app) not in page, path
