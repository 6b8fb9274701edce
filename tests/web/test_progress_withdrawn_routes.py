"""The family patient page (`/family/patients/<id>`) no longer shows a progress update
released before the member's access ended (revoked, expired) or a renewal dropped progress,
whatever consent they have now; one released under the new consent shows (rule 19)."""

from datetime import timedelta

import pytest

from familylink.extensions import db
from familylink.models import Role, Scope, User
from familylink.services import consent, progress_updates
from familylink.services.consent import ConsentDetails
from familylink.services.progress_updates import Decision
from tests.factories import create_consent, create_user
from tests.moments import NOON

OLD = (
    "What we worked on: taking turns to talk.\n\n"
    "How the family can help this week: a short walk together on Sunday.\n\n"
    "What is next: one calm conversation about plans."
)
NEW = OLD.replace("on Sunday", "on Saturday morning")
START = NOON - timedelta(days=5)


@pytest.fixture
def settings_override():
    return {"NOW_OVERRIDE": NOON}


@pytest.fixture
def world(app):
    """Dr. Lee's patient Jordan shares progress with Maria until two days after START; an
    update is released to her at START."""
    with app.app_context():
        lee = create_user(Role.THERAPIST, email="lee@example.org")
        jordan = create_user(
            Role.PATIENT, name="Jordan Vale", email="jordan@example.org", therapist=lee
        )
        maria = create_user(Role.FAMILY, name="Maria Rivera", email="maria@example.org")
        create_consent(
            jordan,
            maria,
            scopes=("scheduling", "progress"),
            now=START - timedelta(days=1),
            expires_at=START + timedelta(days=2),
        )
        _release(lee, jordan, OLD, START)
        db.session.commit()
        return {"lee": lee.id, "jordan": jordan.id, "maria": maria.id}


def _release(lee, jordan, text, now):
    update = progress_updates.draft_update(lee, jordan.id, text=text, family_user_id=None, now=now)
    progress_updates.decide(
        jordan,
        update.id,
        version_id=update.current.id,
        decision=Decision.APPROVE,
        note=None,
        now=now,
    )


def _renew(jordan, maria, scopes, now):
    details = ConsentDetails(
        recipient_name="Maria Rivera",
        recipient_relationship="Mother",
        recipient_email=maria.email,
        scopes=[Scope(s) for s in scopes],
        expiry_kind="date",
        expiry_date=(NOON + timedelta(days=90)).date(),
        signature_name=jordan.name,
        understood=True,
    )
    consent.sign_consent(jordan, details, now=now)


def _then(app, world, steps):
    """Run `steps(lee, jordan, maria)` before NOON, then release NEW just before NOON."""
    with app.app_context():
        lee, jordan, maria = (db.session.get(User, world[k]) for k in ("lee", "jordan", "maria"))
        steps(lee, jordan, maria)
        _release(lee, jordan, NEW, NOON - timedelta(minutes=1))
        db.session.commit()


def _family_page(client, auth, world):
    auth.login("maria@example.org")
    response = client.get(f"/family/patients/{world['jordan']}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def _revoked_then_a_new_consent(lee, jordan, maria):
    record = consent.active_consent(maria.id, jordan.id, now=START)
    consent.revoke_consent(jordan, record.id, now=START + timedelta(hours=1))
    create_consent(jordan, maria, scopes=("scheduling", "progress"), now=START + timedelta(hours=2))


def _expired_by_the_clock_then_a_new_consent(lee, jordan, maria):
    consent.sweep_consents(START + timedelta(days=3))
    create_consent(jordan, maria, scopes=("progress",), now=START + timedelta(days=3, hours=1))


def _a_renewal_dropping_progress_then_adding_it_back(lee, jordan, maria):
    _renew(jordan, maria, ("scheduling",), START + timedelta(hours=1))
    _renew(jordan, maria, ("scheduling", "progress"), START + timedelta(hours=2))


@pytest.mark.parametrize(
    "steps",
    [
        _revoked_then_a_new_consent,
        _expired_by_the_clock_then_a_new_consent,
        _a_renewal_dropping_progress_then_adding_it_back,
    ],
)
def test_the_family_page_shows_only_the_update_released_under_the_new_consent(
    app, client, auth, world, steps
):
    _then(app, world, steps)
    page = _family_page(client, auth, world)
    assert "on Saturday morning" in page and "on Sunday" not in page


def test_the_therapists_page_says_the_old_update_is_no_longer_shown_to_her(
    app, client, auth, world
):
    _then(app, world, _revoked_then_a_new_consent)
    auth.login("lee@example.org")
    page = client.get(f"/therapist/patients/{world['jordan']}/updates").get_data(as_text=True)
    assert page.count("Maria Rivera (shared; no longer shown to them)") == 1
    assert page.count("Maria Rivera (shared)") == 1  # the new one
