"""Two wrong passwords for one account at once (PostgreSQL, two transactions: on SQLite
each holds the write lock from its start). The lockout check takes the account's row lock
(`lockout.is_locked_out`), so the second guess counts the first one's failure: no more
than LOCKOUT_FAILURES guesses are ever checked in the window."""

import pytest
from sqlalchemy import select

from familylink.extensions import db
from familylink.models import AuditEvent, Role
from familylink.services import accounts, audit
from familylink.services.errors import ValidationError
from tests.factories import create_user
from tests.moments import NOON
from tests.races import race

pytestmark = pytest.mark.usefixtures("racing_transactions")

PASSWORD = "correct horse battery staple"


def _try(password: str):
    def attempt():
        try:
            return accounts.authenticate("lee@example.org", password, now=NOON)
        except ValidationError:
            return "refused"  # its failure row is kept, as `web.run` keeps it

    return attempt


def test_a_guess_racing_the_last_allowed_one_is_refused_as_locked_out(app):
    with app.app_context():
        user = create_user(Role.THERAPIST, email="lee@example.org", password=PASSWORD)
        for _ in range(app.config["LOCKOUT_FAILURES"] - 1):
            audit.record("auth.sign_in_failed", actor=user, outcome="failure", now=NOON)
        db.session.commit()
    # The last allowed guess is wrong; the one racing it is right, and must not be checked.
    outcome = race(app, _try("wrong guess 1"), _try(PASSWORD))
    assert outcome["waited"]
    assert outcome["first"] == outcome["second"] == "refused"
    with app.app_context():
        reasons = db.session.scalars(
            select(AuditEvent.detail).where(AuditEvent.action == "auth.sign_in_failed")
        ).all()
    assert reasons[-2:] == [{"reason": "wrong password"}, {"reason": "locked out"}]
