"""Two transactions closing one consent at once: the one that waited for the consent's lock
finds it closed and does nothing twice (PostgreSQL: on SQLite every action holds the write
lock from its start, so they cannot interleave; the sequential case, a closing step handed a
consent already closed, is tested on both in test_consent_lifecycle.py).

Each race runs in two threads with their own connections: the first closes the consent and
keeps its transaction open until the second is seen waiting for a lock (pg_stat_activity),
then commits; the second goes on from there."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from familylink.extensions import db
from familylink.models import (
    AuditEvent,
    ConsentClosure,
    ConsentRecord,
    OutboxEmail,
    Role,
    User,
)
from familylink.services import consent
from familylink.services.consent import records
from familylink.services.errors import Conflict
from tests.factories import create_consent, create_user
from tests.moments import NOON
from tests.races import race

EXPIRY = NOON + timedelta(hours=1)


pytestmark = pytest.mark.usefixtures("racing_transactions")


def _world(app) -> dict:
    """A therapist, their patient and a family member under a consent ending at EXPIRY."""
    with app.app_context():
        therapist = create_user(Role.THERAPIST, email="lee@example.org")
        patient = create_user(Role.PATIENT, therapist=therapist)
        member = create_user(Role.FAMILY, email="maria@example.org")
        record = create_consent(patient, member, expires_at=EXPIRY)
        db.session.commit()
        return {"patient": patient.id, "therapist": therapist.id, "consent": record.id}


def _revocation(ids, by: str = "patient"):
    def revoke():
        actor = db.session.get(User, ids[by])
        return consent.revoke_consent(actor, ids["consent"], now=NOON)

    return revoke


def _sweep():
    return consent.sweep_consents(EXPIRY + timedelta(minutes=5))


def _ends_recorded(app, consent_id) -> dict:
    with app.app_context():
        return {
            "closures": db.session.scalar(
                select(func.count(ConsentClosure.id)).where(ConsentClosure.consent_id == consent_id)
            ),
            "audited": db.session.scalar(
                select(func.count(AuditEvent.id)).where(
                    AuditEvent.action.in_(("consent.revoked", "consent.expired"))
                )
            ),
            "emails": sorted(
                db.session.scalars(
                    select(OutboxEmail.kind).where(OutboxEmail.kind.like("family_access_ended%"))
                )
            ),
        }


@pytest.mark.parametrize("second_by", ["patient", "therapist"])
def test_a_second_revocation_waiting_on_the_first_is_told_it_has_already_ended(app, second_by):
    """The patient revokes on their page while the therapist records the paper revocation
    (or the patient's page is sent twice): the one that waited gets the answer a later
    second revocation gets, and nothing happens twice."""
    ids = _world(app)
    outcome = race(app, _revocation(ids), _revocation(ids, by=second_by))
    assert not isinstance(outcome["first"], Exception), outcome
    assert isinstance(outcome["second"], Conflict), outcome
    assert outcome["second"].message == "This consent has already ended."
    assert _ends_recorded(app, ids["consent"]) == {
        "closures": 1,
        "audited": 1,
        "emails": ["family_access_ended", "family_access_ended_therapist"],
    }


def test_the_sweep_waiting_on_a_revocation_leaves_that_consent_to_it(app):
    """The consent reaches its end while the patient's revocation of it is committing: the
    sweep, which read it still open, waits for the lock and then does not close it again."""
    ids = _world(app)
    outcome = race(app, _revocation(ids), _sweep)
    assert not isinstance(outcome["first"], Exception), outcome
    assert not isinstance(outcome["second"], Exception), outcome
    assert outcome["second"].expired == 0
    with app.app_context():
        reasons = db.session.scalars(
            select(ConsentClosure.reason).where(ConsentClosure.consent_id == ids["consent"])
        ).all()
    assert reasons == ["revoked"]
    assert _ends_recorded(app, ids["consent"])["audited"] == 1


def test_a_revocation_waiting_on_the_sweep_is_told_it_has_already_ended(app):
    """The other way round: the sweep closes the consent first; the patient's revocation,
    begun while the consent was still open, waits and is told it has already ended."""
    ids = _world(app)

    def revoke_just_before_the_end():
        actor = db.session.get(User, ids["patient"])
        return consent.revoke_consent(actor, ids["consent"], now=EXPIRY - timedelta(minutes=1))

    outcome = race(app, _sweep, revoke_just_before_the_end)
    assert outcome["first"].expired == 1, outcome
    assert isinstance(outcome["second"], Conflict), outcome
    assert _ends_recorded(app, ids["consent"])["closures"] == 1


def test_a_revocation_waiting_on_an_acceptance_ends_the_access_of_whoever_accepted(app):
    """The member accepts the invitation (the consent is bound to them) while the patient
    revokes it: the revocation, which read the consent before it was bound, waits for the
    lock and then ends access for the person it is bound to now (its audit row names them,
    and they are told), not for nobody."""
    ids = _world(app)
    with app.app_context():
        db.session.execute(  # not accepted yet: bound to nobody (Core: the model refuses)
            update(ConsentRecord)
            .where(ConsentRecord.id == ids["consent"])
            .values(recipient_user_id=None)
        )
        db.session.commit()
        member = db.session.scalar(select(User.id).where(User.email == "maria@example.org"))

    def accept():
        user = db.session.get(User, member)
        return records.bind_to_person(user, ids["patient"], "maria@example.org")

    outcome = race(app, accept, _revocation(ids))
    assert not isinstance(outcome["first"], Exception), outcome
    assert not isinstance(outcome["second"], Exception), outcome
    with app.app_context():
        revoked_for = db.session.scalar(
            select(AuditEvent.recipient_id).where(AuditEvent.action == "consent.revoked")
        )
    assert revoked_for == member
    assert _ends_recorded(app, ids["consent"])["emails"] == [
        "family_access_ended",
        "family_access_ended_therapist",
    ]
