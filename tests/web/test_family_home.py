"""A family member's home says honestly where they stand when nothing is shared with them:
access that ended says so (when, never why or whose), a waiting invitation says it waits,
and only someone never connected reads "not connected to anyone yet" (issue 16, point 6)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from familylink.extensions import db
from familylink.models import Role, TokenPurpose
from familylink.services import consent, tokens
from tests.conftest import AuthActions
from tests.factories import consent_details, create_consent, create_user
from tests.moments import NOON

NOT_YET = "You are not connected to anyone yet."


@pytest.fixture
def settings_override():
    return {"NOW_OVERRIDE": NOON}


def _home_of(app, email: str) -> str:
    client = app.test_client()
    AuthActions(client, app).login(email)
    response = client.get("/family/")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_a_member_whose_access_was_revoked_is_told_it_ended_not_yet(app):
    with app.app_context():
        patient = create_user(Role.PATIENT, name="Jordan Rivera")
        member = create_user(Role.FAMILY, email="maria@example.org")
        record = create_consent(patient, member)
        consent.revoke_consent(patient, record.id, now=NOON - timedelta(days=2))
        db.session.commit()
    page = _home_of(app, "maria@example.org")
    assert "Your access ended on November 16, 2026." in page
    assert NOT_YET not in page and "Jordan" not in page


def test_a_member_whose_consent_expired_is_told_when(app):
    with app.app_context():
        patient = create_user(Role.PATIENT, name="Jordan Rivera")
        member = create_user(Role.FAMILY, email="maria@example.org")
        create_consent(patient, member, expires_at=NOON - timedelta(days=1))
        db.session.commit()
    page = _home_of(app, "maria@example.org")
    assert "Your access ended on November 17, 2026." in page and NOT_YET not in page


@pytest.mark.parametrize(
    ("swept", "member_zone"),
    [(False, None), (True, None), (False, "Europe/Madrid")],
)
def test_a_consent_through_a_day_is_told_as_ended_on_that_day(app, swept, member_zone):
    """A dated consent lasts through its last day: it ends at the program's midnight after
    it, which the home names as that last day, not the next one, wherever the member lives
    (in Madrid that midnight is 6 AM); and the expiry sweep, which closes it a little
    later, does not move that day."""
    with app.app_context():
        patient = create_user(Role.PATIENT, name="Jordan Rivera")
        member = create_user(Role.FAMILY, email="maria@example.org")
        member.timezone = member_zone or member.timezone
        midnight = datetime(2026, 11, 17, 0, 0, tzinfo=ZoneInfo("America/New_York"))
        create_consent(patient, member, now=NOON - timedelta(days=30), expires_at=midnight)
        if swept:
            consent.sweep_consents(midnight + timedelta(minutes=5))
        db.session.commit()
    page = _home_of(app, "maria@example.org")
    assert "Your access ended on November 16, 2026." in page and NOT_YET not in page


def test_a_waiting_invitation_is_named_as_waiting(app):
    with app.app_context():
        patient = create_user(Role.PATIENT, name="Jordan Rivera")
        create_user(Role.FAMILY, email="maria@example.org")
        # An invitation waits while the open consent it was sent with does.
        consent.sign_consent(patient, consent_details(), now=NOON)
        db.session.commit()
    page = _home_of(app, "maria@example.org")
    assert "An invitation is waiting for you." in page and NOT_YET not in page


def test_a_link_with_no_open_consent_behind_it_is_not_a_waiting_invitation(app):
    with app.app_context():
        create_user(Role.FAMILY, email="maria@example.org")
        tokens.issue_token(
            TokenPurpose.FAMILY_INVITE, email="maria@example.org", payload={}, now=NOON
        )
        db.session.commit()
    page = _home_of(app, "maria@example.org")
    assert "An invitation is waiting for you." not in page and NOT_YET in page


def test_someone_never_connected_is_not_connected_yet(app):
    with app.app_context():
        create_user(Role.FAMILY, email="maria@example.org")
        db.session.commit()
    page = _home_of(app, "maria@example.org")
    assert NOT_YET in page and "ended" not in page
