"""The learn page, the family home and a module page about the patient no longer show a
reading released before the member's access ended (revoked, expired, discharge), whatever
consent they have now, nor their old notes on it as a reading about the patient; one
assigned again under the new consent shows afresh, with its new note and date. The
therapist's page says the old ones are no longer shown to them."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from familylink.extensions import db
from familylink.models import Assignment, AuditEvent, ModuleProgress, OutboxEmail, Role, User
from familylink.services import consent, episodes, learning
from tests.factories import create_consent, create_user
from tests.moments import NOON

START = NOON - timedelta(days=10)
NOTE = "Before Thursday: Jordan's detox plan"
REFLECTION = "I keep covering for him when he drinks."


@pytest.fixture
def settings_override():
    return {"NOW_OVERRIDE": NOON}


def _build(app, *, until_episode_end=False, expires_at=None):
    with app.app_context():
        learning.load_modules(now=START - timedelta(days=2))
        lee = create_user(Role.THERAPIST, email="lee@example.org")
        jordan = create_user(
            Role.PATIENT, name="Jordan Vale", email="jordan@example.org", therapist=lee
        )
        maria = create_user(Role.FAMILY, name="Maria Rivera", email="maria@example.org")
        record = create_consent(
            jordan,
            maria,
            now=START,
            days_after_episode=0 if until_episode_end else None,
            expires_at=expires_at,
        )
        mods = {m.slug: m.id for m in learning.all_modules()}
        learning.assign_modules(
            therapist=lee,
            patient_id=jordan.id,
            family_user_id=maria.id,
            module_ids=[mods["withdrawal-can-be-dangerous"], mods["relapse-warning-signs"]],
            note=NOTE,
            now=START + timedelta(hours=1),
        )
        page = learning.module_page("relapse-warning-signs", "en")
        learning.save_progress(
            maria,
            page,
            patient_id=jordan.id,
            completed=True,
            reflection=REFLECTION,
            share_with=None,
            now=START + timedelta(hours=2),
        )
        db.session.commit()
        return {"lee": lee.id, "jordan": jordan.id, "maria": maria.id, "consent": record.id}


def _pages(client, auth, w):
    auth.login("maria@example.org")
    home = client.get("/family/").get_data(as_text=True)
    library = client.get("/learn/").get_data(as_text=True)
    about = client.get(f"/learn/modules/relapse-warning-signs?patient={w['jordan']}")
    auth.logout()
    return home, library.split('role="search"')[0], about


def _end(app, w, how):
    with app.app_context():
        lee, jordan = db.session.get(User, w["lee"]), db.session.get(User, w["jordan"])
        at = START + timedelta(days=2)
        if how == "revoked":
            consent.revoke_consent(jordan, w["consent"], now=at)
        elif how == "expired":
            consent.sweep_consents(at)
        else:
            episodes.discharge(lee, jordan.id, ended_on=at.date(), reason="completed", now=at)
            at = START + timedelta(days=5)
            episodes.readmit(lee, jordan.id, started_on=at.date(), now=at)
        db.session.commit()


def _new_consent(app, w):
    with app.app_context():
        jordan, maria = (db.session.get(User, w[k]) for k in ("jordan", "maria"))
        create_consent(jordan, maria, now=START + timedelta(days=7))
        db.session.commit()


def _emails(app):
    with app.app_context():
        return db.session.scalar(
            select(func.count(OutboxEmail.id)).where(OutboxEmail.kind == "module_assigned")
        )


@pytest.mark.parametrize("how", ["revoked", "expired", "discharged"])
def test_a_later_consent_shows_no_reading_released_before(app, client, auth, how):
    w = _build(
        app,
        until_episode_end=how == "discharged",
        expires_at=START + timedelta(days=1) if how == "expired" else None,
    )
    _end(app, w, how)
    # In between: nothing.
    home, library, about = _pages(client, auth, w)
    assert "New readings for you" not in home and "From your care team" not in library
    assert about.status_code == 404
    _new_consent(app, w)
    home, library, about = _pages(client, auth, w)
    assert "New readings for you" not in home and "Stopping can be dangerous" not in home
    assert "From your care team" not in library and "About Jordan" not in library
    assert "detox plan" not in library
    # The module page: no old progress or reflection presented as a reading about Jordan.
    text = about.get_data(as_text=True)
    assert about.status_code == 200
    assert "You finished this on" not in text and REFLECTION not in text
    with app.app_context():
        (row,) = db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "learning.withdrawn")
        ).all()
        assert row.detail["readings"] == 2 and row.recipient_id == w["maria"]
        # Her notes are kept, withdrawn (the page just opened started a new, empty row).
        kept = select(ModuleProgress.reflection).where(ModuleProgress.withdrawn_at.is_not(None))
        assert db.session.scalars(kept).all() == [REFLECTION]


def test_assigning_again_under_the_new_consent_shows_it_afresh(app, client, auth):
    w = _build(app)
    _end(app, w, "revoked")
    _new_consent(app, w)
    sent = _emails(app)
    with app.app_context():
        module_id = learning.module_page("relapse-warning-signs", "en").id
    auth.login("lee@example.org")
    response = client.post(
        f"/learn/therapist/patients/{w['jordan']}/assign",
        data={"family": str(w["maria"]), "modules": [str(module_id)], "note": "A fresh note"},
    )
    assert response.status_code == 302
    auth.logout()
    assert _emails(app) == sent + 1
    home, library, about = _pages(client, auth, w)
    assert "A fresh note" in library and "detox plan" not in library
    assert "Relapse: early signs" in library and "Stopping can be dangerous" not in library
    assert "Relapse: early signs" in home  # not opened under this consent
    text = about.get_data(as_text=True)
    assert "A reading about Jordan" in text
    assert "You finished this on" not in text and REFLECTION not in text
    with app.app_context():
        again = db.session.scalar(select(Assignment).where(Assignment.module_id == module_id))
        assert again.note == "A fresh note" and again.released_at == NOON


def test_the_therapist_page_says_old_readings_are_no_longer_shown(app, client, auth):
    w = _build(app)
    _end(app, w, "revoked")
    _new_consent(app, w)
    auth.login("lee@example.org")
    page = client.get(f"/learn/therapist/patients/{w['jordan']}").get_data(as_text=True)
    assert page.count("no longer shown to them") == 2
    # Its notes went with it: no "not yet" that would say she never opened it.
    assert "not yet" not in page
