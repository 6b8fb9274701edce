"""Progress updates through the pages: therapist drafts, patient decides, family reads."""

import pytest
from sqlalchemy import func, select

from familylink.extensions import db
from familylink.models import OutboxEmail, ProgressUpdate, ProgressUpdateVersion, Role, User
from familylink.services import consent
from tests.factories import create_consent, create_user
from tests.moments import NOON

DRAFT = (
    "What we worked on: taking turns to talk.\n\n"
    "How the family can help this week: a short walk together on Sunday.\n\n"
    "What is next: one calm conversation about plans."
)
REVISED = DRAFT.replace("on Sunday", "on Saturday morning")


@pytest.fixture
def settings_override():
    return {"NOW_OVERRIDE": NOON}


@pytest.fixture
def world(app):
    """Dr. Lee's patient Jordan shares progress with Maria, only scheduling with Sam; Dr.
    Patel treats Casey."""
    with app.app_context():
        lee = create_user(Role.THERAPIST, email="lee@example.org")
        patel = create_user(Role.THERAPIST, email="patel@example.org")
        jordan = create_user(
            Role.PATIENT, name="Jordan Vale", email="jordan@example.org", therapist=lee
        )
        create_user(Role.PATIENT, email="casey@example.org", therapist=patel)
        maria = create_user(Role.FAMILY, name="Maria Rivera", email="maria@example.org")
        sam = create_user(Role.FAMILY, name="Sam Rivera", email="sam@example.org")
        create_consent(jordan, maria, scopes=("scheduling", "progress"))
        create_consent(jordan, sam, scopes=("scheduling",))
        db.session.commit()
        return {"jordan": jordan.id, "maria": maria.id, "sam": sam.id}


def _as(auth, client, email):
    auth.logout()
    auth.login(email)


def _draft(client, auth, world, text=DRAFT, **extra):
    _as(auth, client, "lee@example.org")
    return client.post(
        f"/therapist/patients/{world['jordan']}/updates",
        data={"text": text, "recipient": "", **extra},
    )


def _newest(app):
    with app.app_context():
        update = db.session.scalars(
            select(ProgressUpdate).order_by(ProgressUpdate.id.desc())
        ).first()
        return update.id, update.current.id


def _decide(client, auth, update_id, version_id, decision, note=""):
    _as(auth, client, "jordan@example.org")
    return client.post(
        f"/patient/updates/{update_id}",
        data={"version_id": version_id, "decision": decision, "note": note},
    )


def _family_page(client, auth, world, email="maria@example.org"):
    _as(auth, client, email)
    response = client.get(f"/family/patients/{world['jordan']}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def _emails(app):
    with app.app_context():
        return db.session.scalars(
            select(OutboxEmail).where(OutboxEmail.kind == "progress_update")
        ).all()


def test_the_new_update_form_starts_from_the_three_prompts(client, auth, world):
    auth.login("lee@example.org")
    page = client.get(f"/therapist/patients/{world['jordan']}/updates").get_data(as_text=True)
    for prompt in ("What we worked on:", "How the family can help this week:", "What is next:"):
        assert prompt in page
    assert "Maria Rivera" in page and "Sam Rivera" not in page  # Sam has no progress scope


def test_a_draft_sent_twice_makes_one_update(app, client, auth, world):
    assert _draft(client, auth, world).status_code == 302
    with app.app_context():
        emails = db.session.scalar(select(func.count(OutboxEmail.id)))
    again = _draft(client, auth, world)
    assert again.status_code == 400
    assert "This update is already waiting for the patient to read it." in again.get_data(
        as_text=True
    )
    with app.app_context():
        assert db.session.scalar(select(func.count(ProgressUpdate.id))) == 1
        assert db.session.scalar(select(func.count(OutboxEmail.id))) == emails


def test_a_draft_reaches_the_patient_but_no_family_member(app, client, auth, world):
    assert _draft(client, auth, world).status_code == 302
    _as(auth, client, "jordan@example.org")
    assert "a short walk together on Sunday" in client.get("/patient/updates").get_data(
        as_text=True
    )
    assert "on Sunday" not in _family_page(client, auth, world)
    assert _emails(app) == []


def test_a_declined_update_never_reaches_the_family(app, client, auth, world):
    _draft(client, auth, world)
    response = _decide(client, auth, *_newest(app), "decline")
    assert response.status_code == 302
    assert "on Sunday" not in _family_page(client, auth, world)
    assert _emails(app) == []


def test_changes_then_a_new_version_then_approval_shows_only_the_approved_text(
    app, client, auth, world
):
    _draft(client, auth, world)
    update_id, first = _newest(app)
    _decide(client, auth, update_id, first, "changes", note="Saturday is better.")
    _as(auth, client, "lee@example.org")
    assert "Saturday is better." in client.get(
        f"/therapist/patients/{world['jordan']}/updates"
    ).get_data(as_text=True)
    assert (
        client.post(f"/therapist/updates/{update_id}/revise", data={"text": REVISED}).status_code
        == 302
    )
    _, second = _newest(app)
    stale = _decide(client, auth, update_id, first, "approve")  # the old page: refused
    assert stale.status_code == 303
    assert "on Saturday morning" not in _family_page(client, auth, world)
    _decide(client, auth, update_id, second, "approve")
    page = _family_page(client, auth, world)
    assert "on Saturday morning" in page and "on Sunday" not in page
    assert str(consent.REDISCLOSURE_NOTICE)[:60] in page
    assert len(_emails(app)) == 1


def test_a_member_without_the_progress_scope_never_sees_an_update(app, client, auth, world):
    _draft(client, auth, world)
    _decide(client, auth, *_newest(app), "approve")
    assert "on Sunday" not in _family_page(client, auth, world, email="sam@example.org")


def test_revocation_hides_released_updates(app, client, auth, world):
    _draft(client, auth, world)
    _decide(client, auth, *_newest(app), "approve")
    assert "on Sunday" in _family_page(client, auth, world)
    with app.app_context():
        jordan = db.session.get(User, world["jordan"])
        record = consent.active_consent(world["maria"], world["jordan"], now=NOON)
        # Revoked, then given again without the progress scope: the page opens, no update.
        consent.revoke_consent(jordan, record.id, now=NOON)
        maria = db.session.get(User, world["maria"])
        create_consent(jordan, maria, scopes=("scheduling",))
        db.session.commit()
    assert "on Sunday" not in _family_page(client, auth, world)


def test_another_therapist_cannot_draft_or_revise(app, client, auth, world):
    _draft(client, auth, world)
    update_id, _ = _newest(app)
    _as(auth, client, "patel@example.org")
    url = f"/therapist/patients/{world['jordan']}/updates"
    assert client.get(url).status_code == 404
    assert client.post(url, data={"text": DRAFT, "recipient": ""}).status_code == 404
    assert (
        client.post(f"/therapist/updates/{update_id}/revise", data={"text": REVISED}).status_code
        == 404
    )
    with app.app_context():
        assert db.session.scalar(select(func.count(ProgressUpdateVersion.id))) == 1


def test_another_patient_cannot_decide(app, client, auth, world):
    _draft(client, auth, world)
    update_id, version_id = _newest(app)
    _as(auth, client, "casey@example.org")
    response = client.post(
        f"/patient/updates/{update_id}", data={"version_id": version_id, "decision": "approve"}
    )
    assert response.status_code == 404
    assert _emails(app) == []


def test_clinical_words_warn_and_the_therapist_may_keep_them(app, client, auth, world):
    text = DRAFT.replace("taking turns to talk", "staying sober")
    response = _draft(client, auth, world, text=text)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "“sober”" in page and 'name="keep_words"' in page
    kept = client.post(
        f"/therapist/patients/{world['jordan']}/updates",
        data={"text": text, "recipient": "", "words_shown": "sober", "keep_words": "y"},
    )
    assert kept.status_code == 302


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "Write the update."),
        ("Too short.", "Write a few sentences"),
        ("x" * 1501, "Use at most 1500 characters"),
    ],
)
def test_bad_text_gets_a_clear_message_and_saves_nothing(app, client, auth, world, text, message):
    response = _draft(client, auth, world, text=text)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count(ProgressUpdate.id))) == 0


def test_a_change_request_without_a_note_is_refused_with_a_message(app, client, auth, world):
    _draft(client, auth, world)
    response = _decide(client, auth, *_newest(app), "changes")
    assert response.status_code == 303
    page = client.get("/patient/updates").get_data(as_text=True)
    assert "Say what you would like changed." in page


def _released_updates(app, world, count: int) -> None:
    """`count` more updates about Jordan, each approved and released to Maria."""
    from familylink.services import progress_updates

    with app.app_context():
        jordan = db.session.get(User, world["jordan"])
        lee = db.session.get(User, jordan.therapist_id)
        for _ in range(count):
            update = progress_updates.draft_update(
                lee, jordan.id, text=DRAFT, family_user_id=None, now=NOON
            )
            progress_updates.decide(
                jordan,
                update.id,
                version_id=update.current.id,
                decision="approve",
                note=None,
                now=NOON,
            )
        db.session.commit()


def _queries(client, count_queries, path: str) -> int:
    client.get(path)  # warm: the first request may load settings
    with count_queries() as counter:
        assert client.get(path).status_code == 200
    return counter.count


@pytest.mark.parametrize(
    "email, path",
    [
        ("maria@example.org", "/family/patients/{jordan}"),
        ("jordan@example.org", "/patient/updates"),
        ("lee@example.org", "/therapist/patients/{jordan}/updates"),
    ],
)
def test_update_pages_do_not_grow_with_updates(
    app, client, auth, world, count_queries, email, path
):
    path = path.format(**world)
    _released_updates(app, world, 1)
    auth.login(email)
    few = _queries(client, count_queries, path)
    _released_updates(app, world, 20)
    assert _queries(client, count_queries, path) == few
