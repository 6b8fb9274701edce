"""A private calendar feed's link is a credential, like a session: whatever ends the
account's sessions because someone else may have held the password (a new password, the
admin disabling the account) turns the feed off too. Turning it on again gives a new link."""

import pytest
from sqlalchemy import select

from familylink.extensions import db
from familylink.models import TokenPurpose, User
from familylink.services import account_admin, accounts, tokens
from tests.factories import PASSWORD
from tests.moments import NOON
from tests.web.test_calendar_feed import booked, settings_override, turn_on, uids  # noqa: F401

NEW_PASSWORD = "quiet harbour lantern"


def _reset(user: User) -> None:
    raw = tokens.issue_token(TokenPurpose.RESET, email=user.email, user=user, now=NOON)
    accounts.reset_password(raw, NEW_PASSWORD, now=NOON)


def _change(user: User) -> None:
    accounts.change_password(user, current_password=PASSWORD, new_password=NEW_PASSWORD, now=NOON)


def _disable_and_enable(user: User) -> None:
    account_admin.set_account_active(user, False, actor=None, now=NOON)
    account_admin.set_account_active(user, True, actor=None, now=NOON)


@pytest.mark.parametrize("what", [_reset, _change, _disable_and_enable])
def test_what_ends_the_sessions_turns_the_feed_off(app, client, auth, booked, what):  # noqa: F811
    auth.login(booked["family"])
    path = turn_on(client)
    auth.logout()
    assert uids(client.get(path).data) == [booked["uid"]]
    with app.app_context():
        what(db.session.scalar(select(User).where(User.email == booked["family"])))
        db.session.commit()
    assert client.get(path).status_code == 404
