"""Two consents to one person created at once never leave two open: the patient signing
twice (a page sent twice, two tabs), their therapist recording the paper form while the
patient signs in the portal, or the paper form recorded twice (PostgreSQL: on SQLite every
action holds the write lock from its start, so they cannot interleave).

Each race runs in two threads with their own connections: the first creates its consent and
keeps its transaction open until the second is seen waiting for a lock (pg_stat_activity),
then commits; the second goes on from there, and must find the first's consent (and
supersede it, or be refused: a paper form signed on an earlier day, as the patient's
later choice stands, and the very same paper form, already recorded)."""

from datetime import date, timedelta

import pytest
from sqlalchemy import or_, select

from familylink.extensions import db
from familylink.models import ConsentClosure, ConsentRecord, OutboxEmail, Role, User
from familylink.services import consent
from familylink.services.errors import InvalidToken, ValidationError
from tests.factories import consent_details, create_consent, create_user
from tests.moments import NOON
from tests.races import race

pytestmark = pytest.mark.usefixtures("racing_transactions")

#: The day NOON falls on in the program's time zone, and an earlier one.
TODAY = date(2026, 11, 18)
EARLIER = date(2026, 11, 16)


def _world(app, *, linked: bool) -> dict:
    """A therapist, their patient Jordan and, `linked`, Maria, joined to Jordan under a
    consent signed ten days ago (a renewal is then hers at once); else nobody holds the
    address yet (each consent sends an invitation)."""
    with app.app_context():
        therapist = create_user(Role.THERAPIST, email="lee@example.org")
        patient = create_user(
            Role.PATIENT, name="Jordan Rivera", email="jordan@example.org", therapist=therapist
        )
        ids = {"patient": patient.id, "therapist": therapist.id, "member": None}
        if linked:
            member = create_user(Role.FAMILY, name="Maria Rivera", email="maria@example.org")
            create_consent(patient, member, now=NOON - timedelta(days=10))
            ids["member"] = member.id
        db.session.commit()
        return ids


def _portal(ids, minutes: int):
    def sign():
        patient = db.session.get(User, ids["patient"])
        now = NOON + timedelta(minutes=minutes)
        return consent.sign_consent(patient, consent_details(), now=now).id

    return sign


def _paper(ids, minutes: int, signed_on: date):
    def record():
        therapist = db.session.get(User, ids["therapist"])
        now = NOON + timedelta(minutes=minutes)
        return consent.record_paper_consent(
            therapist,
            ids["patient"],
            consent_details(),
            signed_on=signed_on,
            attested=True,
            now=now,
        ).id

    return record


def _open_to_maria(app, ids) -> list[int]:
    """Jordan's open consents to Maria: bound to her, or to her address unaccepted."""
    with app.app_context():
        to_her = [ConsentRecord.recipient_email == "maria@example.org"]
        if ids["member"] is not None:
            to_her.append(ConsentRecord.recipient_user_id == ids["member"])
        return list(
            db.session.scalars(
                select(ConsentRecord.id)
                .outerjoin(ConsentClosure, ConsentClosure.consent_id == ConsentRecord.id)
                .where(
                    ConsentRecord.patient_id == ids["patient"],
                    or_(*to_her),
                    ConsentClosure.id.is_(None),
                )
            )
        )


SIDES = {
    "portal": lambda ids, minutes: _portal(ids, minutes),
    "paper today": lambda ids, minutes: _paper(ids, minutes, TODAY),
    "paper earlier": lambda ids, minutes: _paper(ids, minutes, EARLIER),
}


@pytest.mark.parametrize("linked", [False, True], ids=["invited address", "linked member"])
@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("portal", "portal"),
        ("paper earlier", "paper today"),
        ("paper earlier", "portal"),
        ("portal", "paper today"),
    ],
)
def test_the_second_of_two_consents_at_once_supersedes_the_first(app, linked, first, second):
    """The second waits for the first, then finds its consent open and supersedes it: one
    consent to Maria is open, the second's."""
    ids = _world(app, linked=linked)
    outcome = race(app, SIDES[first](ids, 0), SIDES[second](ids, 1))
    assert not isinstance(outcome["first"], Exception), outcome
    assert not isinstance(outcome["second"], Exception), outcome
    assert _open_to_maria(app, ids) == [outcome["second"]], outcome
    assert outcome["waited"], outcome


@pytest.mark.parametrize("linked", [False, True], ids=["invited address", "linked member"])
def test_a_paper_form_signed_earlier_waiting_on_a_portal_signing_is_refused(app, linked):
    """The therapist records a form Jordan signed two days ago while Jordan signs in the
    portal: the form, which waited, finds the later choice and is refused; the portal's
    consent stays the one open."""
    ids = _world(app, linked=linked)
    outcome = race(app, SIDES["portal"](ids, 0), SIDES["paper earlier"](ids, 1))
    assert not isinstance(outcome["first"], Exception), outcome
    assert isinstance(outcome["second"], ValidationError), outcome
    assert outcome["second"].field == "signed_on"
    assert _open_to_maria(app, ids) == [outcome["first"]], outcome
    assert outcome["waited"], outcome


@pytest.mark.parametrize("linked", [False, True], ids=["invited address", "linked member"])
def test_the_same_paper_form_recorded_twice_at_once_is_recorded_once(app, linked):
    """The therapist's form sent twice at once: the second waits for the first, then finds
    the very same form open and is refused; one consent, one invitation at most."""
    ids = _world(app, linked=linked)
    outcome = race(app, SIDES["paper today"](ids, 0), SIDES["paper today"](ids, 1))
    assert not isinstance(outcome["first"], Exception), outcome
    assert isinstance(outcome["second"], ValidationError), outcome
    assert outcome["second"].message == "This consent is already recorded."
    assert _open_to_maria(app, ids) == [outcome["first"]], outcome
    with app.app_context():
        invitations = db.session.scalars(
            select(OutboxEmail.id).where(OutboxEmail.kind == "family_invitation")
        ).all()
    assert len(invitations) == (0 if linked else 1)
    assert outcome["waited"], outcome


def _invited(app) -> dict:
    """Jordan has signed a consent to Maria's address, which she has not accepted yet (she
    has an account, not linked to Jordan): the ids, and her invitation link's token."""
    ids = _world(app, linked=False)
    with app.app_context():
        member = create_user(Role.FAMILY, name="Maria Rivera", email="maria@example.org")
        patient = db.session.get(User, ids["patient"])
        consent.sign_consent(patient, consent_details(), now=NOON - timedelta(days=1))
        body = db.session.scalar(
            select(OutboxEmail.text_body).where(OutboxEmail.kind == "family_invitation")
        )
        db.session.commit()
        ids["member"] = member.id
        ids["token"] = body.split("/family/join/")[1].split()[0]
        return ids


def _accept(ids):
    def accept():
        member = db.session.get(User, ids["member"])
        return consent.accept_invitation(ids["token"], member, now=NOON).id

    return accept


def test_an_acceptance_waiting_on_a_renewal_finds_its_link_replaced(app):
    """Jordan signs again to the address while Maria accepts the first invitation: her
    acceptance waits, and then finds the link used up (the renewal sent its own)."""
    ids = _invited(app)
    outcome = race(app, _portal(ids, 0), _accept(ids))
    assert not isinstance(outcome["first"], Exception), outcome
    assert isinstance(outcome["second"], InvalidToken), outcome
    assert _open_to_maria(app, ids) == [outcome["first"]], outcome
    assert outcome["waited"], outcome


def test_a_renewal_waiting_on_an_acceptance_supersedes_the_accepted_consent(app):
    """Maria accepts while Jordan signs again: the signing waits for her consent's lock and
    then supersedes it; one consent to her is open, the renewal."""
    ids = _invited(app)
    outcome = race(app, _accept(ids), _portal(ids, 1))
    assert not isinstance(outcome["first"], Exception), outcome
    assert not isinstance(outcome["second"], Exception), outcome
    assert _open_to_maria(app, ids) == [outcome["second"]], outcome
    assert outcome["waited"], outcome
