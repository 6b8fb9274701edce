"""Progress updates: the patient approves the exact text, and only that reaches the family."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from familylink.extensions import db
from familylink.models import AuditEvent, OutboxEmail, Role, UpdateStatus, User
from familylink.services import consent, progress_updates
from familylink.services.errors import Conflict, NotFound, ValidationError
from familylink.services.progress_updates import Decision, WordsToConfirm
from familylink.services.screening import clinical_words
from tests import factories
from tests.factories import create_consent
from tests.moments import NOON
from tests.races import race

FIRST = (
    "What we worked on: listening without fixing.\n\n"
    "How the family can help this week: ask one open question at dinner.\n\n"
    "What is next: planning the weekend together."
)
SECOND = FIRST.replace("at dinner", "on a walk")


@pytest.fixture
def people(create_user):
    lee = create_user(Role.THERAPIST)
    patel = create_user(Role.THERAPIST)
    jordan = create_user(Role.PATIENT, name="Jordan Vale", therapist=lee)
    maria = create_user(Role.FAMILY, name="Maria Rivera")
    sam = create_user(Role.FAMILY, name="Sam Rivera")
    create_consent(jordan, maria, scopes=("scheduling", "progress"))
    create_consent(jordan, sam, scopes=("scheduling",))
    return {"lee": lee, "patel": patel, "jordan": jordan, "maria": maria, "sam": sam}


def _draft(p, text=FIRST, family_user_id=None, now=NOON):
    return progress_updates.draft_update(
        p["lee"], p["jordan"].id, text=text, family_user_id=family_user_id, now=now
    )


def _decide(p, update, decision, note=None, now=NOON):
    return progress_updates.decide(
        p["jordan"],
        update.id,
        version_id=update.current.id,
        decision=decision,
        note=note,
        now=now,
    )


def _read(p, who="maria", now=NOON):
    return [text for _at, text in progress_updates.released_to(p[who], p["jordan"].id, now=now)]


def _emails():
    return db.session.scalars(
        select(OutboxEmail).where(OutboxEmail.kind == "progress_update")
    ).all()


def test_a_draft_is_for_family_with_the_progress_scope_only(app_ctx, people):
    update = _draft(people)
    assert [r.family_user_id for r in update.recipients] == [people["maria"].id]
    with pytest.raises(ValidationError):
        _draft(people, family_user_id=people["sam"].id)


def test_the_same_draft_twice_is_refused_while_the_first_awaits_the_patient(app_ctx, people):
    """The form sent twice (a double click, a resent POST): one update for the patient."""
    first = _draft(people)
    audited = db.session.scalars(select(AuditEvent.action)).all()
    with pytest.raises(ValidationError, match="already waiting for the patient"):
        _draft(people)
    with pytest.raises(ValidationError, match="already waiting for the patient"):
        _draft(people, family_user_id=people["maria"].id)  # Maria is everyone it is for
    assert progress_updates.updates_of(people["jordan"].id) == [first]
    assert db.session.scalars(select(AuditEvent.action)).all() == audited
    second = _draft(people, text=SECOND)  # another text is another update
    assert {u.id for u in progress_updates.updates_of(people["jordan"].id)} == {
        first.id,
        second.id,
    }


def test_the_same_text_may_be_drafted_again_once_the_patient_declined_it(app_ctx, people):
    first = _draft(people)
    _decide(people, first, Decision.DECLINE)
    assert _draft(people).id != first.id


def test_a_draft_never_reaches_the_family_before_approval(app_ctx, people):
    _draft(people)
    assert _read(people) == []
    assert _emails() == []


def test_a_declined_update_never_reaches_the_family(app_ctx, people):
    update = _draft(people)
    _decide(people, update, Decision.DECLINE)
    assert update.status == UpdateStatus.DECLINED
    assert _read(people) == []
    assert _emails() == []


def test_changes_then_a_new_version_then_approval_releases_only_the_approved_text(app_ctx, people):
    update = _draft(people)
    _decide(people, update, Decision.CHANGES, note="Please say walk, not dinner.")
    assert _read(people) == []
    progress_updates.revise_update(people["lee"], update.id, text=SECOND, now=NOON)
    _decide(people, update, Decision.APPROVE)
    assert _read(people) == [SECOND]
    assert len(_emails()) == 1


def test_the_patient_approves_the_exact_version_they_read(app_ctx, people):
    update = _draft(people)
    first_version = update.current.id
    progress_updates.revise_update(people["lee"], update.id, text=SECOND, now=NOON)
    with pytest.raises(Conflict):
        progress_updates.decide(
            people["jordan"],
            update.id,
            version_id=first_version,
            decision=Decision.APPROVE,
            note=None,
            now=NOON,
        )
    assert _read(people) == []


def test_a_change_request_needs_a_note(app_ctx, people):
    update = _draft(people)
    with pytest.raises(ValidationError):
        _decide(people, update, Decision.CHANGES, note="  ")


def test_release_is_a_disclosure_in_the_patients_log(app_ctx, people):
    update = _draft(people)
    _decide(people, update, Decision.APPROVE)
    rows = consent.disclosures_of(people["jordan"])
    assert any(
        row["recipient"] == "Maria Rivera" and row["what"] == "A progress update you approved"
        for row in rows
    )


def test_revocation_hides_released_updates(app_ctx, people):
    update = _draft(people)
    _decide(people, update, Decision.APPROVE)
    record = consent.active_consent(people["maria"].id, people["jordan"].id, now=NOON)
    later = NOON + timedelta(hours=1)
    consent.revoke_consent(people["jordan"], record.id, now=later)
    assert _read(people, now=later + timedelta(minutes=1)) == []


def test_a_member_whose_progress_scope_ended_before_approval_gets_nothing(app_ctx, people):
    update = _draft(people)
    record = consent.active_consent(people["maria"].id, people["jordan"].id, now=NOON)
    consent.revoke_consent(people["jordan"], record.id, now=NOON + timedelta(minutes=1))
    create_consent(people["jordan"], people["maria"], now=NOON + timedelta(minutes=2))
    _decide(people, update, Decision.APPROVE, now=NOON + timedelta(minutes=3))
    assert _read(people, now=NOON + timedelta(minutes=4)) == []
    assert _emails() == []
    withheld = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "progress_update.withheld")
    ).all()
    assert [e.recipient_id for e in withheld] == [people["maria"].id]


def test_a_member_without_the_progress_scope_never_sees_it(app_ctx, people):
    update = _draft(people)
    _decide(people, update, Decision.APPROVE)
    assert _read(people, who="sam") == []


def test_another_therapist_cannot_draft_or_revise(app_ctx, people):
    with pytest.raises(NotFound):
        progress_updates.draft_update(
            people["patel"], people["jordan"].id, text=FIRST, family_user_id=None, now=NOON
        )
    update = _draft(people)
    with pytest.raises(NotFound):
        progress_updates.revise_update(people["patel"], update.id, text=SECOND, now=NOON)


def test_only_the_patient_decides(app_ctx, people):
    update = _draft(people)
    for someone in ("lee", "maria"):
        with pytest.raises(NotFound):
            progress_updates.decide(
                people[someone],
                update.id,
                version_id=update.current.id,
                decision=Decision.APPROVE,
                note=None,
                now=NOON,
            )


def test_a_decided_update_cannot_be_decided_or_revised_again(app_ctx, people):
    update = _draft(people)
    _decide(people, update, Decision.DECLINE)
    with pytest.raises(Conflict):
        _decide(people, update, Decision.APPROVE)
    with pytest.raises(Conflict):
        progress_updates.revise_update(people["lee"], update.id, text=SECOND, now=NOON)


@pytest.mark.parametrize(
    "text",
    [
        "",
        progress_updates.prompts(),
        "Too short.",
        "x" * (progress_updates.MAX_LENGTH + 1),
        FIRST.replace("listening", "listen\u200bing"),
        FIRST + "\ttabbed",
    ],
    ids=["empty", "prompts-only", "short", "long", "zero-width", "tab"],
)
def test_bad_text_is_refused_and_nothing_is_saved(app_ctx, people, text):
    with pytest.raises(ValidationError):
        _draft(people, text=text)
    assert progress_updates.updates_of(people["jordan"].id) == []


@pytest.mark.parametrize(
    "words",
    ["his sobriety", "the methadone dose", "her depression", "new medication", "una recaída"],
)
def test_clinical_words_warn_until_the_therapist_keeps_them(app_ctx, people, words):
    text = FIRST.replace("listening without fixing", words)
    with pytest.raises(WordsToConfirm) as warned:
        _draft(people, text=text)
    update = progress_updates.draft_update(
        people["lee"],
        people["jordan"].id,
        text=text,
        family_user_id=None,
        confirmed=warned.value.words,
        now=NOON,
    )
    assert update.current.text == text


def test_keeping_some_words_does_not_keep_new_ones(app_ctx, people):
    with pytest.raises(WordsToConfirm) as warned:
        progress_updates.draft_update(
            people["lee"],
            people["jordan"].id,
            text=FIRST + " Her medication and her relapse.",
            family_user_id=None,
            confirmed=("medication",),
            now=NOON,
        )
    assert warned.value.words == ("relapse",)


def test_the_email_says_only_that_there_is_an_update(app_ctx, people):
    update = _draft(people)
    _decide(people, update, Decision.APPROVE)
    (email,) = _emails()
    assert email.required_scope == "progress"
    for part in (email.subject, email.text_body, email.html_body):
        assert "dinner" not in part and "Jordan" not in part
        assert clinical_words(part) == ()


def test_the_same_draft_sent_twice_at_once_makes_one_update(app, racing_transactions):
    """The second waits for the first (the patient's row, `lockout.lock_account`), then
    finds its draft awaiting the patient and is refused (PostgreSQL only: on SQLite each
    action holds the write lock from its start)."""
    with app.app_context():
        lee = factories.create_user(Role.THERAPIST)
        jordan = factories.create_user(Role.PATIENT, therapist=lee)
        maria = factories.create_user(Role.FAMILY)
        create_consent(jordan, maria, scopes=("progress",))
        db.session.commit()
        ids = (lee.id, jordan.id)

    def draft():
        therapist = db.session.get(User, ids[0])
        return progress_updates.draft_update(
            therapist, ids[1], text=FIRST, family_user_id=None, now=NOON
        ).id

    outcome = race(app, draft, draft)
    assert isinstance(outcome["first"], int), outcome
    assert isinstance(outcome["second"], ValidationError), outcome
    with app.app_context():
        assert [u.id for u in progress_updates.updates_of(ids[1])] == [outcome["first"]]
    assert outcome["waited"], outcome
