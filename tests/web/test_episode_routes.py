"""The therapist ends an episode of care and starts a new one from the patient's page; the
patient sees their episodes (issue 16, point 4)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from familylink.extensions import db
from familylink.models import ConsentRecord, Episode, Role
from tests.conftest import AuthActions
from tests.factories import create_consent, create_user
from tests.moments import NOON

DISCHARGE = {"ended_on": "2026-11-18", "reason": "completed", "confirm": "y"}


@pytest.fixture
def settings_override():
    return {"NOW_OVERRIDE": NOON}


def _world(app) -> dict:
    with app.app_context():
        lee = create_user(Role.THERAPIST, email="lee@example.org")
        create_user(Role.THERAPIST, email="kim@example.org")
        jordan = create_user(
            Role.PATIENT, name="Jordan Rivera", email="jordan@example.org", therapist=lee
        )
        maria = create_user(Role.FAMILY, name="Maria Rivera", email="maria@example.org")
        record = create_consent(jordan, maria, days_after_episode=0)
        db.session.commit()
        return {"patient_id": jordan.id, "consent_id": record.id}


def _signed_in(app, email: str):
    client = app.test_client()
    AuthActions(client, app).login(email)
    return client


def _episode(app, patient_id: int) -> Episode:
    with app.app_context():
        return db.session.scalars(
            select(Episode).where(Episode.patient_id == patient_id).order_by(Episode.number)
        ).all()[-1]


def test_the_therapist_ends_the_episode_and_access_ends_with_it(app):
    world = _world(app)
    client = _signed_in(app, "lee@example.org")
    page = client.get(f"/therapist/patients/{world['patient_id']}/family").get_data(as_text=True)
    assert "End this episode of care" in page
    response = client.post(f"/therapist/patients/{world['patient_id']}/discharge", data=DISCHARGE)
    assert response.status_code == 302
    episode = _episode(app, world["patient_id"])
    assert (episode.number, episode.end_reason) == (1, "completed")
    with app.app_context():
        assert db.session.get(ConsentRecord, world["consent_id"]).closure.reason == "expired"
    page = client.get(response.location).get_data(as_text=True)
    assert "Start a new episode" in page and "Completed" in page


def test_the_therapist_starts_a_new_episode_for_a_discharged_patient(app):
    world = _world(app)
    client = _signed_in(app, "lee@example.org")
    client.post(f"/therapist/patients/{world['patient_id']}/discharge", data=DISCHARGE)
    response = client.post(
        f"/therapist/patients/{world['patient_id']}/readmit", data={"started_on": "2026-11-18"}
    )
    assert response.status_code == 302
    assert _episode(app, world["patient_id"]).number == 2
    with app.app_context():  # the consent of episode 1 stays ended
        assert db.session.get(ConsentRecord, world["consent_id"]).closure is not None


def test_another_therapists_patient_answers_404_and_nothing_changes(app):
    world = _world(app)
    client = _signed_in(app, "kim@example.org")
    for path, data in [("discharge", DISCHARGE), ("readmit", {"started_on": "2026-11-18"})]:
        response = client.post(f"/therapist/patients/{world['patient_id']}/{path}", data=data)
        assert response.status_code == 404
    assert _episode(app, world["patient_id"]).ended_on is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"ended_on": "2026-11-19"}, "Choose a date no later than today."),
        ({"ended_on": "2026-01-01"}, "Choose a date on or after 2026-11-04."),
        ({"ended_on": "yesterday"}, "Enter a date between 1900-01-01 and 2100-12-31"),
        ({"ended_on": "99999-01-01"}, "Enter a date between 1900-01-01 and 2100-12-31"),
        ({"ended_on": ""}, "Enter the date care ended, like 2026-11-02."),
        ({"reason": "relapse"}, "Choose a reason from the list."),
        ({"reason": ""}, "Choose a reason from the list."),
        ({"confirm": ""}, "Tick the box to confirm."),
    ],
    ids=["future", "before start", "words", "year 99999", "empty", "reason", "no reason",
         "unconfirmed"],
)  # fmt: skip
def test_bad_discharge_input_gets_a_message_and_changes_nothing(app, changes, message):
    world = _world(app)
    client = _signed_in(app, "lee@example.org")
    response = client.post(
        f"/therapist/patients/{world['patient_id']}/discharge", data={**DISCHARGE, **changes}
    )
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert _episode(app, world["patient_id"]).ended_on is None
    with app.app_context():
        assert db.session.get(ConsentRecord, world["consent_id"]).closure is None


def test_discharging_twice_says_so_and_a_readmission_date_before_the_discharge_is_refused(app):
    world = _world(app)
    client = _signed_in(app, "lee@example.org")
    client.post(f"/therapist/patients/{world['patient_id']}/discharge", data=DISCHARGE)
    again = client.post(f"/therapist/patients/{world['patient_id']}/discharge", data=DISCHARGE)
    assert again.status_code == 400
    assert "no episode of care in progress" in again.get_data(as_text=True)
    early = client.post(
        f"/therapist/patients/{world['patient_id']}/readmit", data={"started_on": "2026-11-10"}
    )
    assert early.status_code == 400
    assert "Choose a date on or after 2026-11-18." in early.get_data(as_text=True)
    assert _episode(app, world["patient_id"]).number == 1


def test_the_patient_sees_their_episodes_on_their_home_page(app):
    world = _world(app)
    _signed_in(app, "lee@example.org").post(
        f"/therapist/patients/{world['patient_id']}/discharge", data=DISCHARGE
    )
    page = _signed_in(app, "jordan@example.org").get("/patient/").get_data(as_text=True)
    assert "Your episodes of care" in page
    assert "November 4, 2026" in page and "November 18, 2026" in page


def test_the_episodes_table_is_in_the_page_once_and_not_in_its_title(app):
    world = _world(app)
    _signed_in(app, "lee@example.org").post(
        f"/therapist/patients/{world['patient_id']}/discharge", data=DISCHARGE
    )
    page = _signed_in(app, "jordan@example.org").get("/patient/").get_data(as_text=True)
    title = page[page.index("<title>") : page.index("</title>")]
    assert "<table" not in title and "episodes" not in title
    assert page.count("Your episodes of care</h2>") == 1


@pytest.mark.parametrize(
    ("days_after_episode", "before_discharge"),
    [
        (0, "until the end of Jordan's current episode of care"),
        (30, "until 30 days after Jordan's current episode of care ends"),
    ],
)
def test_the_family_page_says_when_an_episode_consent_ends(
    app, days_after_episode, before_discharge
):
    with app.app_context():
        lee = create_user(Role.THERAPIST, email="lee@example.org")
        jordan = create_user(Role.PATIENT, name="Jordan Rivera", therapist=lee)
        maria = create_user(Role.FAMILY, name="Maria Rivera", email="maria@example.org")
        create_consent(jordan, maria, days_after_episode=days_after_episode)
        db.session.commit()
        patient_id = jordan.id
    family = _signed_in(app, "maria@example.org")
    first = family.get(f"/family/patients/{patient_id}")
    page = first.get_data(as_text=True)
    assert before_discharge in page, first.status_code
    therapist = _signed_in(app, "lee@example.org")
    therapist.post(f"/therapist/patients/{patient_id}/discharge", data=DISCHARGE)
    therapist.post(f"/therapist/patients/{patient_id}/readmit", data={"started_on": "2026-11-18"})
    response = family.get(f"/family/patients/{patient_id}")
    if days_after_episode == 0:  # access ended with the episode, and the member's sessions
        assert response.status_code == 302 and "/login" in response.location
        return
    page = response.get_data(as_text=True)
    # The episode it followed ended on 18 November: 30 days on, whatever the new episode.
    assert "This lasts until" in page and "December 17, 2026" in page, page
    assert "current episode" not in page
