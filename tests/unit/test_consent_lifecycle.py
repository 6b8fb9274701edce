"""Signing, recording, inviting, revoking and expiring consents (the services directly)."""

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from familylink.extensions import db
from familylink.models import (
    AccountToken,
    AuditEvent,
    ClosureReason,
    ConsentClosure,
    ConsentRecord,
    Episode,
    FamilyLink,
    OutboxEmail,
    OutboxStatus,
    Role,
    TokenPurpose,
    User,
)
from familylink.models.consent import ImmutableRecordError
from familylink.services import audit, consent, mail, tokens
from familylink.services.errors import Conflict, InvalidToken, NotFound, ValidationError
from tests import factories
from tests.booking_setup import create_clinic, family_seat
from tests.factories import consent_details as details

# Words no email may contain (program type, diagnosis, substance).
CLINICAL_WORDS = ["addiction", "substance", "rehab", "recovery", "treatment", "iop", "detox"]


@pytest.fixture
def people(create_user):
    lee = create_user(Role.THERAPIST, name="Dr. Grace Lee", email="lee@example.org")
    jordan = create_user(
        Role.PATIENT, name="Jordan Rivera", email="jordan@example.org", therapist=lee
    )
    maria = create_user(Role.FAMILY, name="Maria Rivera", email="maria@example.org")
    return lee, jordan, maria


def _count(model) -> int:
    return db.session.scalar(select(func.count(model.id)))


def _actions() -> list[str]:
    return list(db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def _invitation_token(recipient: str) -> str:
    email = db.session.scalar(
        select(OutboxEmail).where(
            OutboxEmail.kind == "family_invitation", OutboxEmail.to_address == recipient
        )
    )
    return email.text_body.split("/family/join/")[1].split()[0]


def _signed_and_linked(jordan, maria, now, **changes) -> ConsentRecord:
    record = consent.sign_consent(jordan, details(**changes), now=now)
    consent.accept_invitation(_invitation_token(maria.email), maria, now=now)
    return record


def test_signing_stores_every_element_the_snapshot_and_the_origin(app_ctx, people, now):
    _, jordan, _ = people
    record = consent.sign_consent(
        jordan, details(), now=now, ip="203.0.113.9", user_agent="Phone browser"
    )
    assert (record.patient_name, record.recipient_email, record.method) == (
        "Jordan Rivera",
        "maria@example.org",
        "portal",
    )
    assert record.scopes == ["scheduling", "attendance"]
    assert (record.signed_at, record.ip, record.user_agent) == (now, "203.0.113.9", "Phone browser")
    assert record.form_version == consent.FORM_VERSION
    assert "consent.signed" in _actions()


def test_the_snapshot_holds_the_exact_wording_and_choices(app_ctx, people, now):
    _, jordan, _ = people
    record = consent.sign_consent(jordan, details(), now=now)
    for text in (
        consent.REVOCATION_STATEMENT,
        consent.RELIANCE_STATEMENT,
        consent.REDISCLOSURE_NOTICE,
        consent.DEFAULT_PURPOSE,
        consent.SCOPE_EXPLANATIONS["scheduling"],
        consent.SCOPE_EXPLANATIONS["progress"],
        "Maria Rivera (Mother), maria@example.org",
        record.expiry_description,
    ):
        assert str(text) in record.text_snapshot
    assert f"[x] {consent.SCOPE_EXPLANATIONS['attendance']}" in record.text_snapshot
    assert f"[ ] {consent.SCOPE_EXPLANATIONS['progress']}" in record.text_snapshot


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"recipient_name": "  "}, "recipient_name"),
        ({"recipient_relationship": ""}, "recipient_relationship"),
        ({"recipient_email": ""}, "recipient_email"),
        ({"recipient_email": "not-an-address"}, "recipient_email"),
        ({"recipient_email": "jordan@example.org"}, "recipient_email"),
        ({"purpose": ""}, "purpose"),
        ({"scopes": []}, "scopes"),
        ({"scopes": ["everything"]}, "scopes"),
        ({"expiry_kind": None}, "expiry_kind"),
        ({"expiry_date": None}, "expiry_date"),
        ({"expiry_date": date(2028, 1, 1)}, "expiry_date"),
        ({"expiry_date": date(2026, 11, 1)}, "expiry_date"),
        (
            {"expiry_kind": "episode_end", "expiry_days_after_episode": None},
            "expiry_days_after_episode",
        ),
        (
            {"expiry_kind": "episode_end", "expiry_days_after_episode": -1},
            "expiry_days_after_episode",
        ),
        ({"signature_name": ""}, "signature_name"),
        ({"signature_name": "Jordan Smith"}, "signature_name"),
        ({"understood": False}, "understood"),
    ],
)
def test_every_element_is_required_and_nothing_is_stored_without_it(
    app_ctx, people, now, changes, field
):
    _, jordan, _ = people
    with pytest.raises(ValidationError) as caught:
        consent.sign_consent(jordan, details(**changes), now=now)
    assert caught.value.field == field and caught.value.message
    assert (_count(ConsentRecord), _count(OutboxEmail), _count(AccountToken)) == (0, 0, 0)


def test_an_episode_consent_ends_when_the_episode_does_plus_its_days(app_ctx, people, now):
    _, jordan, maria = people
    _signed_and_linked(jordan, maria, now, expiry_kind="episode_end", expiry_days_after_episode=7)
    assert consent.may_disclose(maria.id, jordan.id, "scheduling", now=now + timedelta(days=400))
    episode = db.session.scalar(select(Episode).where(Episode.patient_id == jordan.id))
    episode.ended_on = now + timedelta(days=10)
    db.session.flush()
    assert consent.may_disclose(maria.id, jordan.id, None, now=now + timedelta(days=16))
    assert not consent.may_disclose(maria.id, jordan.id, None, now=now + timedelta(days=17))


def test_an_event_about_a_consent_is_audited_with_the_consent_and_its_patient(app_ctx, people, now):
    lee, jordan, maria = people
    record = consent.sign_consent(jordan, details(), now=now)
    row = audit.record_about("consent.viewed", record, actor=lee, recipient_id=maria.id, now=now)
    assert (row.object_type, row.object_id) == ("consent_records", record.id)
    assert (row.patient_id, row.recipient_id, row.actor_id) == (jordan.id, maria.id, lee.id)


def test_consent_rows_cannot_be_updated_through_the_orm(app_ctx, people, now):
    _, jordan, _ = people
    record = consent.sign_consent(jordan, details(), now=now)
    record.scope_progress = True
    with pytest.raises(ImmutableRecordError):
        db.session.flush()


def test_consent_rows_cannot_be_deleted_through_the_orm(app_ctx, people, now):
    _, jordan, _ = people
    record = consent.sign_consent(jordan, details(), now=now)
    db.session.delete(record)
    with pytest.raises(ImmutableRecordError):
        db.session.flush()


def test_renewal_is_a_new_record_that_supersedes_the_old(app_ctx, people, now):
    _, jordan, maria = people
    old = _signed_and_linked(jordan, maria, now)
    new = consent.sign_consent(jordan, details(scopes=["scheduling"]), now=now + timedelta(days=30))
    assert new.supersedes_id == old.id and old.closure.reason == ClosureReason.SUPERSEDED
    assert consent.active_consent(maria.id, jordan.id, now=now + timedelta(days=31)).id == new.id
    # Already linked: no second invitation.
    assert _count(AccountToken) == 1


def test_closing_a_consent_reads_it_once_under_its_lock(app_ctx, people, now, count_queries):
    """The lock (PostgreSQL), one read of the consent and its closure begun after it, and the
    closure's INSERT: the closure is not read back."""
    from familylink.services.consent import records

    _, jordan, maria = people
    record = _signed_and_linked(jordan, maria, now)
    db.session.flush()
    with count_queries() as counter:
        closure = records.close_consent(record, ClosureReason.REVOKED, now=now)
    statements = [s.lstrip().split()[0].upper() for s in counter.statements]
    lock = ["SELECT"] if db.session.get_bind().dialect.name == "postgresql" else []
    assert statements == [*lock, "SELECT", "INSERT"]
    assert record.closure is closure


# --- Paper consents --------------------------------------------------------------------------


def test_a_therapist_records_a_paper_consent_for_their_own_patient(app_ctx, people, now):
    lee, jordan, _ = people
    record = consent.record_paper_consent(
        lee, jordan.id, details(), signed_on=date(2026, 11, 16), attested=True, now=now
    )
    assert (record.method, record.recorded_by_id, record.attested) == ("paper", lee.id, True)
    assert record.signed_at.date() == date(2026, 11, 16)
    assert "Recorded from the signed paper form by Dr. Grace Lee" in record.text_snapshot
    assert "consent.recorded" in _actions()


@pytest.mark.parametrize(
    ("signed_on", "attested", "field"),
    [
        (None, True, "signed_on"),
        (date(2026, 11, 19), True, "signed_on"),
        (date(2026, 11, 16), False, "attested"),
    ],
)
def test_a_paper_consent_needs_a_past_date_and_the_attestation(
    app_ctx, people, now, signed_on, attested, field
):
    lee, jordan, _ = people
    with pytest.raises(ValidationError) as caught:
        consent.record_paper_consent(
            lee, jordan.id, details(), signed_on=signed_on, attested=attested, now=now
        )
    assert caught.value.field == field
    assert _count(ConsentRecord) == 0


def test_a_therapist_cannot_record_for_another_therapists_patient(
    app_ctx, create_user, people, now
):
    _, jordan, _ = people
    other = create_user(Role.THERAPIST)
    with pytest.raises(NotFound):
        consent.record_paper_consent(
            other, jordan.id, details(), signed_on=date(2026, 11, 16), attested=True, now=now
        )


def _discharged_and_readmitted(lee, jordan, now) -> Episode:
    """Jordan's first episode (from 2026-11-04) ended on 11-08; the second began on 11-15."""
    from familylink.services import episodes

    episodes.discharge(lee, jordan.id, ended_on=date(2026, 11, 8), reason="completed", now=now)
    return episodes.readmit(lee, jordan.id, started_on=date(2026, 11, 15), now=now)


def _until_episode_end():
    return details(expiry_kind="episode_end", expiry_date=None, expiry_days_after_episode=0)


@pytest.mark.parametrize(
    "signed_on", [date(2026, 11, 6), date(2026, 11, 10)], ids=["ended episode", "between"]
)
def test_an_episode_paper_consent_signed_outside_the_current_episode_is_refused(
    app_ctx, people, now, signed_on
):
    lee, jordan, _ = people
    _discharged_and_readmitted(lee, jordan, now)
    with pytest.raises(ValidationError) as caught:
        consent.record_paper_consent(
            lee, jordan.id, _until_episode_end(), signed_on=signed_on, attested=True, now=now
        )
    assert caught.value.field == "signed_on"
    assert "episode of care" in caught.value.message
    assert (_count(ConsentRecord), _count(AccountToken), _count(OutboxEmail)) == (0, 0, 0)


def test_an_episode_paper_consent_signed_in_the_current_episode_follows_it(app_ctx, people, now):
    lee, jordan, _ = people
    current = _discharged_and_readmitted(lee, jordan, now)
    record = consent.record_paper_consent(
        lee, jordan.id, _until_episode_end(), signed_on=date(2026, 11, 16), attested=True, now=now
    )
    assert record.episode_id == current.id
    assert consent.status_of(record, jordan, now) == "active"


def test_a_paper_consent_from_an_ended_episode_leaves_the_consent_in_force_alone(
    app_ctx, people, now
):
    lee, jordan, maria = people
    _discharged_and_readmitted(lee, jordan, now)
    old = factories.create_consent(jordan, maria, scopes=("scheduling",), now=now)
    with pytest.raises(ValidationError):
        consent.record_paper_consent(
            lee,
            jordan.id,
            _until_episode_end(),
            signed_on=date(2026, 11, 6),
            attested=True,
            now=now,
        )
    assert old.closure is None
    assert consent.active_consent(maria.id, jordan.id, now=now).id == old.id


def test_a_consent_not_in_force_never_supersedes_an_open_one(app_ctx, people, now):
    from familylink.services.consent import ending

    _, jordan, maria = people
    in_force = factories.create_consent(jordan, maria, now=now)
    ended = factories.create_consent(jordan, maria, now=now, expires_at=now - timedelta(hours=1))
    ending.replace([in_force], ended, now=now, actor=jordan)
    assert in_force.closure is None
    assert consent.active_consent(maria.id, jordan.id, now=now).id == in_force.id
    assert "consent.superseded" not in _actions()


@pytest.mark.parametrize("linked", [True, False], ids=["accepted", "not accepted yet"])
def test_a_paper_consent_signed_before_the_open_one_is_refused(app_ctx, people, now, linked):
    lee, jordan, maria = people
    signed = now - timedelta(days=2)  # 2026-11-16
    record = (
        _signed_and_linked(jordan, maria, signed)
        if linked
        else consent.sign_consent(jordan, details(), now=signed)
    )
    with pytest.raises(ValidationError) as caught:
        consent.record_paper_consent(
            lee,
            jordan.id,
            details(scopes=["scheduling", "attendance", "progress"]),
            signed_on=date(2026, 11, 15),
            attested=True,
            now=now,
        )
    assert caught.value.field == "signed_on"
    assert record.closure is None and _count(ConsentRecord) == 1
    # Signed on the same day or after it, the form is the later choice.
    later = consent.record_paper_consent(
        lee, jordan.id, details(), signed_on=date(2026, 11, 17), attested=True, now=now
    )
    assert record.closure.reason == ClosureReason.SUPERSEDED and later.closure is None


@pytest.mark.parametrize("signed_on", [date(2026, 11, 15), date(2026, 11, 16)])
def test_a_paper_consent_signed_before_a_revocation_is_refused(app_ctx, people, now, signed_on):
    # A form has no time of day: one dated the day of the revocation may be from before it,
    # and the revocation, the patient's choice to share less, stands.
    lee, jordan, maria = people
    record = _signed_and_linked(jordan, maria, now - timedelta(days=10))
    consent.revoke_consent(jordan, record.id, now=now - timedelta(days=2))  # 2026-11-16
    with pytest.raises(ValidationError) as caught:
        consent.record_paper_consent(
            lee, jordan.id, details(), signed_on=signed_on, attested=True, now=now
        )
    assert caught.value.field == "signed_on"
    assert not consent.may_disclose(maria.id, jordan.id, None, now=now)


@pytest.mark.parametrize("linked", [True, False], ids=["accepted", "not accepted yet"])
def test_the_same_paper_consent_recorded_twice_is_refused(app_ctx, people, now, linked):
    """The form sent twice (a double click, a resent POST): one record, one invitation, and
    the first is not superseded by its copy."""
    lee, jordan, maria = people
    if linked:
        factories.create_consent(jordan, maria, now=now - timedelta(days=20))

    def paper(**changes):
        return consent.record_paper_consent(
            lee,
            jordan.id,
            details(**changes),
            signed_on=date(2026, 11, 17),
            attested=True,
            now=now,
        )

    first = paper()
    counts = (_count(ConsentRecord), _count(OutboxEmail), _count(AccountToken), len(_actions()))
    with pytest.raises(ValidationError, match="This consent is already recorded.") as caught:
        paper(recipient_email="MARIA@example.org ")
    assert caught.value.field is None
    assert first.closure is None
    assert (_count(ConsentRecord), _count(OutboxEmail), _count(AccountToken), len(_actions())) == (
        counts
    )
    # Other terms are a change: recorded, superseding the first.
    changed = paper(scopes=["scheduling"])
    assert first.closure.reason == ClosureReason.SUPERSEDED and changed.closure is None


# --- Invitations -------------------------------------------------------------------------------


def test_the_invitation_email_is_neutral(app_ctx, people, now):
    _, jordan, _ = people
    consent.sign_consent(jordan, details(), now=now)
    email = db.session.scalar(select(OutboxEmail).where(OutboxEmail.kind == "family_invitation"))
    assert email.subject == "You're invited to join your family's sessions"
    assert email.to_address == "maria@example.org"
    for body in (email.subject, email.text_body, email.html_body):
        assert "Rivera" not in body.replace("Maria Rivera", "")
        assert not any(word in body.lower().split() for word in CLINICAL_WORDS)
    assert "Jordan" in email.text_body


def test_accepting_links_the_family_member_who_then_has_access(app_ctx, people, now):
    _, jordan, maria = people
    consent.sign_consent(jordan, details(), now=now)
    assert not consent.may_disclose(maria.id, jordan.id, None, now=now)
    consent.accept_invitation(_invitation_token(maria.email), maria, now=now)
    assert consent.may_disclose(maria.id, jordan.id, "attendance", now=now)


def test_an_invitation_token_is_single_use(app_ctx, people, now):
    _, jordan, maria = people
    consent.sign_consent(jordan, details(), now=now)
    raw = _invitation_token(maria.email)
    consent.accept_invitation(raw, maria, now=now)
    with pytest.raises(InvalidToken):
        consent.accept_invitation(raw, maria, now=now)


def test_an_invitation_token_expires(app_ctx, people, now):
    _, jordan, maria = people
    consent.sign_consent(jordan, details(), now=now)
    raw = _invitation_token(maria.email)
    with pytest.raises(InvalidToken):
        consent.accept_invitation(raw, maria, now=now + timedelta(days=14))


def test_an_invitation_is_bound_to_its_address(app_ctx, create_user, people, now):
    _, jordan, maria = people
    stranger = create_user(Role.FAMILY, email="someone.else@example.org")
    consent.sign_consent(jordan, details(), now=now)
    raw = _invitation_token(maria.email)
    with pytest.raises(Conflict):
        consent.accept_invitation(raw, stranger, now=now)
    assert _count(FamilyLink) == 0
    # Still usable by the right person.
    consent.accept_invitation(raw, maria, now=now)


def test_an_invitation_for_a_revoked_consent_cannot_be_accepted(app_ctx, people, now):
    _, jordan, maria = people
    record = consent.sign_consent(jordan, details(), now=now)
    raw = _invitation_token(maria.email)
    consent.revoke_consent(jordan, record.id, now=now)
    with pytest.raises(InvalidToken):
        consent.accept_invitation(raw, maria, now=now)


def test_registering_through_an_invitation_verifies_and_links(app_ctx, people, now):
    _, jordan, _ = people
    consent.sign_consent(jordan, details(recipient_email="luis@example.org"), now=now)
    user = consent.register_through_invitation(
        _invitation_token("luis@example.org"),
        name="Luis Rivera",
        password="lantern orchard pebble",
        timezone="America/Chicago",
        now=now,
    )
    assert (user.email, user.role, user.verified_at) == ("luis@example.org", Role.FAMILY, now)
    assert consent.may_disclose(user.id, jordan.id, "scheduling", now=now)


def test_registering_through_an_invitation_refuses_a_known_address(app_ctx, people, now):
    _, jordan, maria = people
    consent.sign_consent(jordan, details(), now=now)
    with pytest.raises(ValidationError):
        consent.register_through_invitation(
            _invitation_token(maria.email),
            name="Maria",
            password="lantern orchard pebble",
            timezone="America/Chicago",
            now=now,
        )
    assert _count(User) == 3


# --- Revocation and expiry -----------------------------------------------------------------------


@pytest.fixture
def ended_signals(monkeypatch):
    """Each family member taken off future sessions by an ended consent (the operation's
    second step), recorded as it calls the booking service."""
    from familylink.services.booking import groups

    received = []
    original = groups.remove_from_future

    def spy(**kwargs):
        received.append(kwargs)
        return original(**kwargs)

    monkeypatch.setattr(groups, "remove_from_future", spy)
    return received


def _queue_reminder_about(patient, family, now):
    return mail.queue_email(
        "password_reset",
        to=family,
        dedupe_key=f"test-reminder:{family.id}",
        now=now,
        patient_id=patient.id,
        required_scope="scheduling",
        send_at=now + timedelta(days=2),
        context={"link": "https://familylink.test/x"},
    )


def test_revocation_ends_everything_at_that_instant(app_ctx, people, now, ended_signals):
    lee, jordan, maria = people
    record = _signed_and_linked(jordan, maria, now - timedelta(days=1))
    pending = _queue_reminder_about(jordan, maria, now - timedelta(hours=1))
    instant = now
    assert consent.may_disclose(maria.id, jordan.id, None, now=instant - timedelta(microseconds=1))

    consent.revoke_consent(jordan, record.id, now=instant)

    assert not consent.may_disclose(maria.id, jordan.id, None, now=instant)
    db.session.refresh(pending)
    assert pending.status == OutboxStatus.CANCELLED
    assert record.closure.reason == ClosureReason.REVOKED and record.closure.closed_at == instant
    assert ended_signals == [
        {
            "family_user_id": maria.id,
            "patient_id": jordan.id,
            "now": instant,
            "reason": "consent ended",
        }
    ]
    revoked = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "consent.revoked"))
    assert (revoked.at, revoked.patient_id, revoked.recipient_id) == (instant, jordan.id, maria.id)
    kinds = {
        (e.kind, e.to_address)
        for e in db.session.scalars(select(OutboxEmail).where(OutboxEmail.status == "pending"))
    }
    assert ("family_access_ended_therapist", lee.email) in kinds
    assert ("family_access_ended", maria.email) in kinds


def test_the_access_ended_email_is_neutral(app_ctx, people, now):
    _, jordan, maria = people
    record = _signed_and_linked(jordan, maria, now)
    consent.revoke_consent(jordan, record.id, now=now)
    email = db.session.scalar(select(OutboxEmail).where(OutboxEmail.kind == "family_access_ended"))
    for body in (email.subject, email.text_body, email.html_body):
        assert "Jordan" not in body and "Rivera" not in body.replace("Maria Rivera", "")
        assert not any(word in body.lower().split() for word in CLINICAL_WORDS)


def test_a_therapist_records_a_written_revocation(app_ctx, people, now):
    lee, jordan, maria = people
    record = _signed_and_linked(jordan, maria, now)
    consent.revoke_consent(lee, record.id, now=now, method="written", note="Letter of 17 Nov")
    assert (record.closure.method, record.closure.closed_by_id) == ("written", lee.id)
    assert not consent.may_disclose(maria.id, jordan.id, None, now=now)


def test_nobody_else_can_revoke(app_ctx, create_user, people, now):
    _, jordan, maria = people
    record = _signed_and_linked(jordan, maria, now)
    for outsider in (maria, create_user(Role.PATIENT), create_user(Role.THERAPIST)):
        with pytest.raises(NotFound):
            consent.revoke_consent(outsider, record.id, now=now)
    assert consent.may_disclose(maria.id, jordan.id, None, now=now)


def test_revoking_twice_is_a_conflict(app_ctx, people, now):
    _, jordan, maria = people
    record = _signed_and_linked(jordan, maria, now)
    consent.revoke_consent(jordan, record.id, now=now)
    with pytest.raises(Conflict):
        consent.revoke_consent(jordan, record.id, now=now)


def _ends_recorded(record) -> tuple[int, int, int]:
    """The consent's closures, end audit rows, and access-ended emails to the member."""
    return (
        db.session.scalar(
            select(func.count(ConsentClosure.id)).where(ConsentClosure.consent_id == record.id)
        ),
        db.session.scalar(
            select(func.count(AuditEvent.id)).where(
                AuditEvent.action.in_(("consent.revoked", "consent.expired"))
            )
        ),
        db.session.scalar(
            select(func.count(OutboxEmail.id)).where(OutboxEmail.kind == "family_access_ended")
        ),
    )


def test_ending_access_under_a_consent_already_closed_is_a_conflict_that_does_nothing(
    app_ctx, people, now
):
    """What a closing step meets when another closed the consent first (the sweep or a
    discharge holding a list read before a revocation): the revocation's answer, no
    second closure, audit row or email (on PostgreSQL the race itself is in
    test_consent_closing_races.py)."""
    _, jordan, maria = people
    record = _signed_and_linked(jordan, maria, now)
    consent.revoke_consent(jordan, record.id, now=now)
    with pytest.raises(Conflict) as refused:
        consent.end_family_access(record, ClosureReason.EXPIRED, actor=None, now=now)
    assert refused.value.message == "This consent has already ended."
    assert _ends_recorded(record) == (1, 1, 1)


def _queue_about(patient, family, now, count: int) -> None:
    """Exactly `count` unsent emails about the patient to the member (the invitation sent)."""
    for sent in db.session.scalars(select(OutboxEmail)):
        sent.status = OutboxStatus.SENT
    for n in range(count):
        mail.queue_email(
            "password_reset",
            to=family,
            dedupe_key=f"test-about:{family.id}:{n}",
            now=now,
            patient_id=patient.id,
            send_at=now + timedelta(days=2),
        )


def _told_therapist(lee) -> OutboxEmail:
    return db.session.scalar(
        select(OutboxEmail).where(
            OutboxEmail.kind == "family_access_ended_therapist", OutboxEmail.to_address == lee.email
        )
    )


@pytest.mark.parametrize(
    ("pending", "said"),
    [
        (1, "1 pending email to them about your patient was cancelled."),
        (3, "3 pending emails to them about your patient were cancelled."),
    ],
)
def test_the_therapist_is_told_how_many_pending_emails_were_cancelled(
    app_ctx, people, now, pending, said
):
    lee, jordan, maria = people
    record = _signed_and_linked(jordan, maria, now)
    _queue_about(jordan, maria, now, pending)
    consent.revoke_consent(jordan, record.id, now=now)
    told = _told_therapist(lee)
    assert said in told.text_body and said in told.html_body


def test_the_therapist_is_told_nothing_about_emails_when_none_were_cancelled(app_ctx, people, now):
    lee, jordan, maria = people
    record = _signed_and_linked(jordan, maria, now)
    _queue_about(jordan, maria, now, 0)
    consent.revoke_consent(jordan, record.id, now=now)
    told = _told_therapist(lee)
    for body in (told.text_body, told.html_body):
        assert "no longer has access" in body
        assert "pending email" not in body and "cancelled" not in body


def _ended_with_sessions_ahead(now, count: int) -> OutboxEmail:
    """The therapist's email once the clinic's family member, seated in `count` future
    sessions (one a day from tomorrow), has their consent revoked."""
    clinic = create_clinic()
    for day in range(1, count + 1):
        family_seat(clinic, now + timedelta(days=day), booked_at=now - timedelta(days=1))
    record = db.session.scalar(
        select(ConsentRecord).where(ConsentRecord.patient_id == clinic.patient.id)
    )
    consent.revoke_consent(clinic.patient, record.id, now=now)
    return _told_therapist(clinic.therapist)


@pytest.mark.parametrize(
    ("sessions", "said"),
    [
        (1, "They have been taken off 1 future session."),
        (3, "They have been taken off 3 future sessions."),
    ],
)
def test_the_therapist_is_told_how_many_future_sessions_the_member_was_taken_off(
    app_ctx, now, sessions, said
):
    told = _ended_with_sessions_ahead(now, sessions)
    assert said in told.text_body and said in told.html_body


def test_the_therapist_is_told_nothing_about_sessions_when_the_member_had_none(app_ctx, now):
    told = _ended_with_sessions_ahead(now, 0)
    for body in (told.text_body, told.html_body):
        assert "no longer has access" in body
        assert "taken off" not in body and "session" not in body


def test_expiry_ends_access_by_the_clock_and_the_sweep_does_the_rest(
    app_ctx, people, now, ended_signals
):
    _, jordan, maria = people
    record = _signed_and_linked(jordan, maria, now - timedelta(days=1))
    end = record.expires_at
    pending = _queue_reminder_about(jordan, maria, now)

    assert consent.sweep_consents(end - timedelta(seconds=1)).expired == 0
    assert consent.may_disclose(maria.id, jordan.id, None, now=end - timedelta(seconds=1))
    # Before any sweep has run, the clock alone ends access.
    assert not consent.may_disclose(maria.id, jordan.id, None, now=end)

    assert consent.sweep_consents(end).expired == 1
    db.session.refresh(pending)
    assert pending.status == OutboxStatus.CANCELLED
    assert record.closure.reason == ClosureReason.EXPIRED and record.closure.closed_at == end
    assert ended_signals == [
        {"family_user_id": maria.id, "patient_id": jordan.id, "now": end, "reason": "consent ended"}
    ]
    assert "consent.expired" in _actions()
    assert consent.sweep_consents(end + timedelta(hours=1)).expired == 0


def test_patients_are_reminded_once_fourteen_days_before_expiry(app_ctx, people, now):
    _, jordan, maria = people
    record = _signed_and_linked(jordan, maria, now)
    reminder_time = record.expires_at - timedelta(days=14)
    assert consent.sweep_consents(reminder_time - timedelta(minutes=1)).reminded == 0
    assert consent.sweep_consents(reminder_time).reminded == 1
    assert consent.sweep_consents(reminder_time + timedelta(days=1)).reminded == 0
    email = db.session.scalar(select(OutboxEmail).where(OutboxEmail.kind == "consent_expiring"))
    assert email.to_address == jordan.email and "Maria (Mother)" in email.text_body


def test_the_mail_worker_runs_the_consent_sweep(app):
    from familylink.cli import run_consent_sweep

    assert run_consent_sweep in app.extensions["familylink_sweeps"]


def test_the_sweep_command_expires_consents(app, runner):
    end = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    with app.app_context():
        therapist = factories.create_user(Role.THERAPIST)
        patient = factories.create_user(Role.PATIENT, therapist=therapist)
        family = factories.create_user(Role.FAMILY)
        factories.create_consent(patient, family, expires_at=end)
        db.session.commit()
        ids = (family.id, patient.id)
    result = runner.invoke(args=["consent", "sweep", "--now", "2026-11-30T12:00"])
    assert result.exit_code == 0, result.output
    assert "1 consents expired" in result.output
    with app.app_context():
        expired = db.session.scalar(
            select(func.count(AuditEvent.id)).where(
                AuditEvent.action == "consent.expired", AuditEvent.recipient_id == ids[0]
            )
        )
        assert expired == 1


def test_tokens_purpose_is_family_invite(app_ctx, people, now):
    _, jordan, maria = people
    consent.sign_consent(jordan, details(), now=now)
    token = tokens.find_valid_token(
        _invitation_token(maria.email), TokenPurpose.FAMILY_INVITE, now=now
    )
    assert token.email == "maria@example.org" and token.payload["consent_id"]


def _pending(kind: str) -> list[OutboxEmail]:
    return list(
        db.session.scalars(
            select(OutboxEmail).where(
                OutboxEmail.kind == kind, OutboxEmail.status == OutboxStatus.PENDING
            )
        )
    )


def _unused_invitations() -> int:
    return db.session.scalar(
        select(func.count(AccountToken.id)).where(
            AccountToken.purpose == TokenPurpose.FAMILY_INVITE, AccountToken.used_at.is_(None)
        )
    )


def _end_by_revocation(jordan, record, now):
    consent.revoke_consent(jordan, record.id, now=now)


def _end_by_expiry(jordan, record, now):
    assert consent.sweep_consents(now + timedelta(days=30)).expired == 1


ENDINGS = pytest.mark.parametrize(
    "end", [_end_by_revocation, _end_by_expiry], ids=["revoked", "expired"]
)


@ENDINGS
def test_ending_a_consent_nobody_accepted_tells_the_invited_address_nothing(
    app_ctx, people, now, end
):
    lee, jordan, maria = people
    record = consent.sign_consent(jordan, details(expiry_date=date(2026, 11, 30)), now=now)
    end(jordan, record, now)
    assert _pending("family_access_ended") == []
    assert [e.to_address for e in _pending("family_access_ended_therapist")] == [lee.email]


@ENDINGS
def test_once_a_consent_nobody_accepted_ends_no_invitation_waits(app_ctx, people, now, end):
    _, jordan, maria = people
    record = consent.sign_consent(jordan, details(expiry_date=date(2026, 11, 30)), now=now)
    assert consent.family_standing(maria, now=now).invitation_waiting
    end(jordan, record, now)
    assert _unused_invitations() == 0
    assert not consent.family_standing(maria, now=now).invitation_waiting


def test_an_invitation_waits_only_while_an_open_consent_to_the_address_does(app_ctx, people, now):
    from familylink.services.consent import records

    _, jordan, maria = people
    record = consent.sign_consent(jordan, details(), now=now)
    # Closed without ending access's steps (its token left unused), as a race could leave it.
    records.close_consent(record, ClosureReason.REVOKED, now=now)
    assert _unused_invitations() == 1
    assert not consent.family_standing(maria, now=now).invitation_waiting


def test_an_invitation_still_open_from_another_patient_keeps_waiting(
    app_ctx, create_user, people, now
):
    lee, jordan, maria = people
    casey = create_user(Role.PATIENT, name="Casey Hale", email="casey@example.org", therapist=lee)
    record = consent.sign_consent(jordan, details(), now=now)
    consent.sign_consent(casey, details(signature_name="Casey Hale"), now=now)
    consent.revoke_consent(jordan, record.id, now=now)
    assert _unused_invitations() == 1
    assert consent.family_standing(maria, now=now).invitation_waiting


def test_signing_the_same_consent_twice_leaves_one_invitation(app_ctx, people, now):
    _, jordan, maria = people
    first = consent.sign_consent(jordan, details(), now=now)
    first_link = _invitation_token(maria.email)
    second = consent.sign_consent(jordan, details(), now=now + timedelta(minutes=1))
    assert first.closure.reason == ClosureReason.SUPERSEDED
    assert [e.dedupe_key for e in _pending("family_invitation")] == [
        f"family_invitation:{second.id}"
    ]
    assert _unused_invitations() == 1
    with pytest.raises(InvalidToken):
        consent.accept_invitation(first_link, maria, now=now + timedelta(minutes=2))


# --- Invitations are checked again when sent -----------------------------------------------


def _invitation_row() -> OutboxEmail:
    return db.session.scalar(select(OutboxEmail).where(OutboxEmail.kind == "family_invitation"))


def test_an_invitation_of_an_open_consent_is_sent(app_ctx, people, now):
    _, jordan, _ = people
    consent.sign_consent(jordan, details(), now=now)
    db.session.commit()
    mail.send_pending(now=now)
    assert _invitation_row().status == OutboxStatus.SENT


def test_an_invitation_whose_consent_closed_is_never_sent_even_if_still_queued(
    app_ctx, people, now
):
    from familylink.services.consent import records

    _, jordan, _ = people
    record = consent.sign_consent(jordan, details(), now=now)
    # Closed without the operation's cancellations, as a race or a retried failed row would
    # leave it: the sender itself must refuse an invitation that outlived its consent.
    records.close_consent(record, ClosureReason.REVOKED, now=now)
    db.session.commit()
    mail.send_pending(now=now)
    row = _invitation_row()
    assert (row.status, row.last_error) == (OutboxStatus.CANCELLED, "consent ended")


# --- The person, not the address (issue 16, point 2) ---------------------------------------


def _change_email(user: User, new_address: str, now) -> None:
    from familylink.services import accounts

    accounts.request_email_change(user, password=factories.PASSWORD, new_email=new_address, now=now)
    verify = db.session.scalar(
        select(OutboxEmail).where(
            OutboxEmail.kind == "email_change_verify", OutboxEmail.to_address == new_address
        )
    )
    accounts.confirm_email_change(verify.text_body.split("/email-change/")[1].split()[0], now=now)


def _invitations() -> int:
    return db.session.scalar(
        select(func.count(AccountToken.id)).where(
            AccountToken.purpose == TokenPurpose.FAMILY_INVITE
        )
    )


def test_accepting_binds_the_consent_to_the_person_once(app_ctx, create_user, people, now):
    _, jordan, maria = people
    record = _signed_and_linked(jordan, maria, now)
    assert record.recipient_user_id == maria.id
    other = create_user(Role.FAMILY, email="other@example.org")
    record.recipient_user_id = other.id  # binding is once: never moved to someone else
    with pytest.raises(ImmutableRecordError):
        db.session.flush()


def test_after_an_email_change_a_new_consent_to_the_new_address_supersedes_the_old(
    app_ctx, people, now
):
    _, jordan, maria = people
    old = _signed_and_linked(jordan, maria, now)
    _change_email(maria, "maria.new@example.org", now)
    new = consent.sign_consent(
        jordan,
        details(recipient_email="maria.new@example.org", scopes=["scheduling"]),
        now=now + timedelta(days=1),
    )
    later = now + timedelta(days=2)
    assert not consent.may_disclose(maria.id, jordan.id, "attendance", now=later)
    assert consent.active_consent(maria.id, jordan.id, now=later).id == new.id
    assert old.closure.reason == ClosureReason.SUPERSEDED and new.supersedes_id == old.id
    assert new.recipient_user_id == maria.id
    assert _invitations() == 1  # already linked: no second invitation
    consent.revoke_consent(jordan, new.id, now=later)
    assert not consent.may_disclose(maria.id, jordan.id, None, now=later)


def test_a_consent_superseded_at_a_new_address_cancels_unsent_mail_to_the_old_one(
    app_ctx, people, now
):
    """Found by the privacy oracle: the invitation to Maria's old address, still queued,
    named Jordan after that consent was superseded by one to her new address."""
    _, jordan, maria = people
    _signed_and_linked(jordan, maria, now)
    _change_email(maria, "maria.new@example.org", now)

    def unsent_to_old_address():
        return db.session.scalar(
            select(func.count(OutboxEmail.id)).where(
                OutboxEmail.to_address == "maria@example.org",
                OutboxEmail.patient_id == jordan.id,
                OutboxEmail.status.in_([OutboxStatus.PENDING, OutboxStatus.FAILED]),
            )
        )

    assert unsent_to_old_address() > 0
    consent.sign_consent(
        jordan,
        details(recipient_email="maria.new@example.org", scopes=["scheduling"]),
        now=now + timedelta(days=1),
    )
    assert unsent_to_old_address() == 0


def test_a_consent_to_a_members_old_address_does_not_reach_them(app_ctx, people, now):
    _, jordan, maria = people
    mine = _signed_and_linked(jordan, maria, now)
    _change_email(maria, "maria.new@example.org", now)
    stranger = consent.sign_consent(
        jordan,
        details(recipient_email="maria@example.org", scopes=["scheduling", "progress"]),
        now=now + timedelta(days=1),
    )
    later = now + timedelta(days=2)
    # Whoever holds the old address now is invited; Maria's own consent is untouched.
    assert not consent.may_disclose(maria.id, jordan.id, "progress", now=later)
    assert consent.active_consent(maria.id, jordan.id, now=later).id == mine.id
    assert mine.closure is None
    assert stranger.recipient_user_id is None and _invitations() == 2


def test_accepting_a_newer_consent_after_an_email_change_leaves_one_in_force(app_ctx, people, now):
    _, jordan, maria = people
    old = _signed_and_linked(jordan, maria, now)
    new = consent.sign_consent(
        jordan,
        details(recipient_email="maria.new@example.org", scopes=["scheduling"]),
        now=now + timedelta(hours=1),
    )
    _change_email(maria, "maria.new@example.org", now + timedelta(hours=2))
    consent.accept_invitation(
        _invitation_token("maria.new@example.org"), maria, now=now + timedelta(hours=3)
    )
    later = now + timedelta(days=1)
    assert not consent.may_disclose(maria.id, jordan.id, "attendance", now=later)
    assert consent.active_consent(maria.id, jordan.id, now=later).id == new.id
    assert old.closure.reason == ClosureReason.SUPERSEDED
    assert new.recipient_user_id == maria.id
    assert consent.other_grants(new, now=later) == []


def test_an_invitation_to_the_old_address_stays_with_the_person(app_ctx, people, now):
    _, jordan, maria = people
    consent.sign_consent(jordan, details(), now=now)
    raw = _invitation_token("maria@example.org")
    _change_email(maria, "maria.new@example.org", now)
    assert consent.family_standing(maria, now=now).invitation_waiting
    # Nobody can take it by registering the address she left.
    with pytest.raises(ValidationError):
        consent.register_through_invitation(
            raw, name="Someone", password="lantern orchard pebble", timezone="UTC", now=now
        )
    consent.accept_invitation(raw, maria, now=now)
    assert consent.may_disclose(maria.id, jordan.id, "attendance", now=now)


def test_an_invitation_kept_for_the_person_refuses_the_new_holder_of_the_old_address(
    app_ctx, create_user, people, now
):
    _, jordan, maria = people
    consent.sign_consent(jordan, details(), now=now)
    raw = _invitation_token("maria@example.org")
    _change_email(maria, "maria.new@example.org", now)
    newcomer = create_user(Role.FAMILY, email="maria@example.org")
    with pytest.raises(Conflict):
        consent.accept_invitation(raw, newcomer, now=now)
    assert _count(FamilyLink) == 0


def test_the_expiry_reminder_names_the_last_day_not_the_next_days_12_am(app_ctx, people, now):
    """A consent runs through its last day and ends at the midnight after it: the email says
    so, where it used to read as the next day at 12:00 AM."""
    _, jordan, maria = people
    record = _signed_and_linked(jordan, maria, now)
    consent.sweep_consents(record.expires_at - timedelta(days=14))
    email = db.session.scalar(select(OutboxEmail).where(OutboxEmail.kind == "consent_expiring"))
    last_day = "Saturday, May 1, 2027"  # details(): runs through May 1, 2027
    for body in (email.text_body, email.html_body):
        assert f"the end of {last_day} (midnight " in body
        assert "12:00 AM" not in body
