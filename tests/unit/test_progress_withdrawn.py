"""A progress update released to a family member stops showing to them when their access
about the patient ends, or a renewal no longer covers progress, and a later consent does
not show it again (`progress_updates.withdraw_releases`, rule 19): as practice tools and
shared reflections go private again. Updates released under the new consent show as usual."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from familylink.extensions import db
from familylink.models import AuditEvent, ProgressUpdateRecipient, Role, Scope
from familylink.services import consent, progress_updates
from familylink.services.consent import ConsentDetails
from familylink.services.progress_updates import Decision
from tests.factories import create_consent
from tests.moments import NOON

OLD = (
    "What we worked on: listening without fixing.\n\n"
    "How the family can help this week: ask one open question at dinner.\n\n"
    "What is next: planning the weekend together."
)
NEW = OLD.replace("at dinner", "on a walk")


@pytest.fixture
def people(create_user):
    lee = create_user(Role.THERAPIST)
    jordan = create_user(Role.PATIENT, name="Jordan Vale", therapist=lee)
    maria = create_user(Role.FAMILY, name="Maria Rivera")
    create_consent(
        jordan, maria, scopes=("scheduling", "progress"), expires_at=NOON + timedelta(days=2)
    )
    return {"lee": lee, "jordan": jordan, "maria": maria}


def _release(p, text, now):
    update = progress_updates.draft_update(
        p["lee"], p["jordan"].id, text=text, family_user_id=None, now=now
    )
    progress_updates.decide(
        p["jordan"],
        update.id,
        version_id=update.current.id,
        decision=Decision.APPROVE,
        note=None,
        now=now,
    )
    return update


def _read(p, now):
    return [text for _at, text in progress_updates.released_to(p["maria"], p["jordan"].id, now=now)]


def _renew(p, scopes, now):
    """The patient signs a new consent to Maria in the portal (a renewal: hers at once)."""
    details = ConsentDetails(
        recipient_name="Maria Rivera",
        recipient_relationship="Mother",
        recipient_email=p["maria"].email,
        scopes=[Scope(s) for s in scopes],
        expiry_kind="date",
        expiry_date=(now + timedelta(days=90)).date(),
        signature_name=p["jordan"].name,
        understood=True,
    )
    return consent.sign_consent(p["jordan"], details, now=now)


def _withdrawn_rows():
    return db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "progress_update.withdrawn")
    ).all()


def test_revoked_then_a_new_consent_shows_only_what_is_released_after_it(app_ctx, people):
    _release(people, OLD, NOON)
    assert _read(people, NOON) == [OLD]
    record = consent.active_consent(people["maria"].id, people["jordan"].id, now=NOON)
    consent.revoke_consent(people["jordan"], record.id, now=NOON + timedelta(minutes=1))
    create_consent(
        people["jordan"],
        people["maria"],
        scopes=("scheduling", "progress"),
        now=NOON + timedelta(minutes=2),
    )
    later = NOON + timedelta(minutes=3)
    assert _read(people, later) == []
    _release(people, NEW, later)
    assert _read(people, later + timedelta(minutes=1)) == [NEW]
    # One audit row, counted, for the member and patient; the recipient row keeps its release.
    (row,) = _withdrawn_rows()
    assert (row.patient_id, row.recipient_id) == (people["jordan"].id, people["maria"].id)
    assert row.detail["updates"] == 1
    recipients = db.session.scalars(select(ProgressUpdateRecipient)).all()
    assert sorted(r.withdrawn_at is None for r in recipients) == [False, True]
    assert all(r.released_at is not None for r in recipients)


def test_expired_by_the_clock_and_swept_then_a_new_consent_does_not_show_it(app_ctx, people):
    _release(people, OLD, NOON)
    after = NOON + timedelta(days=3)
    consent.sweep_consents(after)
    create_consent(
        people["jordan"], people["maria"], scopes=("progress",), now=after + timedelta(minutes=1)
    )
    assert _read(people, after + timedelta(minutes=2)) == []
    _release(people, NEW, after + timedelta(minutes=2))
    assert _read(people, after + timedelta(minutes=3)) == [NEW]


def test_expired_by_the_clock_before_any_sweep_then_renewed_does_not_show_it(app_ctx, people):
    _release(people, OLD, NOON)
    after = NOON + timedelta(days=3)
    _renew(people, ("scheduling", "progress"), after)
    assert _read(people, after + timedelta(minutes=1)) == []


def test_a_renewal_dropping_progress_then_one_adding_it_back_does_not_show_it(app_ctx, people):
    _release(people, OLD, NOON)
    _renew(people, ("scheduling",), NOON + timedelta(minutes=1))
    _renew(people, ("scheduling", "progress"), NOON + timedelta(minutes=2))
    later = NOON + timedelta(minutes=3)
    assert _read(people, later) == []
    _release(people, NEW, later)
    assert _read(people, later + timedelta(minutes=1)) == [NEW]
    assert len(_withdrawn_rows()) == 1


def test_a_renewal_that_keeps_progress_keeps_what_was_released(app_ctx, people):
    _release(people, OLD, NOON)
    _renew(people, ("progress",), NOON + timedelta(minutes=1))
    assert _read(people, NOON + timedelta(minutes=2)) == [OLD]
    assert _withdrawn_rows() == []


def test_the_patient_and_therapist_still_see_to_whom_it_was_released(app_ctx, people):
    update = _release(people, OLD, NOON)
    record = consent.active_consent(people["maria"].id, people["jordan"].id, now=NOON)
    consent.revoke_consent(people["jordan"], record.id, now=NOON + timedelta(minutes=1))
    (recipient,) = progress_updates.updates_of(people["jordan"].id)[0].recipients
    assert recipient.update_id == update.id and recipient.released_at is not None
    assert recipient.withdrawn_at is not None
