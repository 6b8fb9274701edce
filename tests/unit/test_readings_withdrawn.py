"""Readings released to a family member about a patient are withdrawn when their access
about the patient ends (revoked, expired, discharge), as progress updates are: a later
consent shows only readings released under it (`assignments.withdraw_released`); the
member's own notes on them stay theirs but are no longer a reading about the patient
(`progress.withdraw_readings`). Unreleased readings stop as before."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from familylink.extensions import db
from familylink.models import Assignment, AuditEvent, ModuleProgress, OutboxEmail, Role, User
from familylink.services import consent, episodes, homes, learning
from tests.factories import create_consent
from tests.moments import NOON

START = NOON - timedelta(days=10)
NOTE = "Before Thursday: Jordan's detox plan"
REFLECTION = "I keep covering for him when he drinks."


@pytest.fixture
def people(create_user):
    learning.load_modules(now=START - timedelta(days=2))
    lee = create_user(Role.THERAPIST)
    jordan = create_user(Role.PATIENT, name="Jordan Vale", therapist=lee)
    maria = create_user(Role.FAMILY, name="Maria Rivera")
    mods = {m.slug: m.id for m in learning.all_modules()}
    return {"lee": lee, "jordan": jordan, "maria": maria, "mods": mods}


def _start(p, *, days_after_episode=None, expires_at=None):
    """Maria's consent; two readings assigned with a note, the weekly sequence (its first
    released now, the rest later), and one read with a private reflection."""
    record = create_consent(
        p["jordan"],
        p["maria"],
        now=START,
        days_after_episode=days_after_episode,
        expires_at=expires_at,
    )
    learning.assign_modules(
        therapist=p["lee"],
        patient_id=p["jordan"].id,
        family_user_id=p["maria"].id,
        module_ids=[p["mods"]["withdrawal-can-be-dangerous"], p["mods"]["relapse-warning-signs"]],
        note=NOTE,
        now=START + timedelta(hours=1),
    )
    learning.apply_sequence(
        therapist=p["lee"],
        patient_id=p["jordan"].id,
        family_user_id=p["maria"].id,
        now=START + timedelta(hours=1),
    )
    page = learning.module_page("relapse-warning-signs", "en")
    learning.save_progress(
        p["maria"],
        page,
        patient_id=p["jordan"].id,
        completed=True,
        reflection=REFLECTION,
        share_with=None,
        now=START + timedelta(hours=2),
    )
    return record


def _shown(p, now):
    """What Maria's learn page and home show of readings about Jordan."""
    readings = [(r.module.slug, r.note) for r in learning.assigned_to(p["maria"], now=now)]
    home = homes.family_home(p["maria"], now=now)
    return readings, list(home.new_readings)


def _withdrawn_rows():
    return db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "learning.withdrawn")
    ).all()


def _assigned_emails():
    return db.session.scalar(
        select(func.count(OutboxEmail.id)).where(OutboxEmail.kind == "module_assigned")
    )


def _revoke(p, record, at):
    consent.revoke_consent(p["jordan"], record.id, now=at)


def _check_withdrawn(p, now):
    readings, home = _shown(p, now)
    assert readings == [] and home == []
    rows = db.session.scalars(select(Assignment)).all()
    released = [a for a in rows if a.released_at is not None]
    assert len(released) == 3 and all(a.stopped_at is not None for a in released)
    assert all(a.stopped_at is not None for a in rows)
    (row,) = _withdrawn_rows()
    assert (row.patient_id, row.recipient_id) == (p["jordan"].id, p["maria"].id)
    assert row.detail["readings"] == 3
    # The member's notes stay hers, but are no reading about Jordan any more.
    page = learning.module_page("relapse-warning-signs", "en")
    assert learning.progress.progress_for(p["maria"], page, p["jordan"].id) is None
    kept = db.session.scalar(select(ModuleProgress))
    assert kept.reflection == REFLECTION and kept.completed_at is not None
    assert kept.withdrawn_at is not None


def test_revoked_then_a_new_consent_shows_no_old_reading(app_ctx, people):
    record = _start(people)
    assert len(_shown(people, START + timedelta(hours=3))[0]) == 3
    _revoke(people, record, START + timedelta(days=2))
    # Nothing in between.
    assert _shown(people, START + timedelta(days=3)) == ([], [])
    create_consent(people["jordan"], people["maria"], now=START + timedelta(days=4))
    _check_withdrawn(people, START + timedelta(days=4, hours=1))


def test_expired_and_swept_then_a_new_consent_shows_no_old_reading(app_ctx, people):
    _start(people, expires_at=START + timedelta(days=2))
    consent.sweep_consents(START + timedelta(days=3))
    assert _shown(people, START + timedelta(days=3)) == ([], [])
    create_consent(people["jordan"], people["maria"], now=START + timedelta(days=4))
    _check_withdrawn(people, START + timedelta(days=4, hours=1))


def test_discharged_readmitted_and_a_new_consent_shows_no_old_reading(app_ctx, people):
    _start(people, days_after_episode=0)
    lee, jordan = people["lee"], people["jordan"]
    at = START + timedelta(days=2)
    episodes.discharge(lee, jordan.id, ended_on=at.date(), reason="completed", now=at)
    assert _shown(people, START + timedelta(days=3)) == ([], [])
    at = START + timedelta(days=5)
    episodes.readmit(lee, jordan.id, started_on=at.date(), now=at)
    create_consent(people["jordan"], people["maria"], now=START + timedelta(days=7))
    _check_withdrawn(people, START + timedelta(days=7, hours=1))


def test_reassigning_under_a_later_consent_shares_it_afresh_with_one_email(app_ctx, people):
    record = _start(people)
    _revoke(people, record, START + timedelta(days=2))
    create_consent(people["jordan"], people["maria"], now=START + timedelta(days=4))
    emails = _assigned_emails()
    at = START + timedelta(days=5)
    made = learning.assign_modules(
        therapist=people["lee"],
        patient_id=people["jordan"].id,
        family_user_id=people["maria"].id,
        module_ids=[people["mods"]["relapse-warning-signs"]],
        note="A new note",
        now=at,
    )
    assert len(made) == 1
    assert (made[0].note, made[0].released_at, made[0].stopped_at) == ("A new note", at, None)
    assert _assigned_emails() == emails + 1
    readings, home = _shown(people, at + timedelta(minutes=1))
    assert readings == [("relapse-warning-signs", "A new note")]
    assert [r.slug for r in home] == ["relapse-warning-signs"]  # not opened under this one
    page = learning.module_page("relapse-warning-signs", "en")
    reading = learning.reading(people["maria"], page, patient_id=people["jordan"].id, now=at)
    assert reading.progress is None and reading.patient.id == people["jordan"].id
    # Assigned again now: nothing new.
    again = learning.assign_modules(
        therapist=people["lee"],
        patient_id=people["jordan"].id,
        family_user_id=people["maria"].id,
        module_ids=[people["mods"]["relapse-warning-signs"]],
        note="Another",
        now=at + timedelta(minutes=2),
    )
    assert again == [] and _assigned_emails() == emails + 1
    # Read again under the new consent: a new row; the old one stays hers, withdrawn.
    learning.save_progress(
        people["maria"],
        page,
        patient_id=people["jordan"].id,
        completed=False,
        reflection="Now",
        share_with=people["jordan"].id,
        now=at + timedelta(minutes=3),
    )
    rows = db.session.scalars(select(ModuleProgress).order_by(ModuleProgress.id)).all()
    assert [(r.reflection, r.withdrawn_at is None) for r in rows] == [
        (REFLECTION, False),
        ("Now", True),
    ]


def test_the_therapist_sees_old_readings_as_no_longer_shown(app_ctx, people):
    record = _start(people)
    _revoke(people, record, START + timedelta(days=2))
    create_consent(people["jordan"], people["maria"], now=START + timedelta(days=4))
    at = START + timedelta(days=4, hours=1)
    (family,) = learning.family_progress(people["lee"], people["jordan"].id, now=at)
    released = [r for r in family.rows if r.assignment.released_at is not None]
    assert len(released) == 3 and all(r.assignment.stopped_at for r in released)
    # The member's old notes are not shown against it under the later consent.
    assert all(r.completed_at is None and r.opened_at is None for r in family.rows)


def test_unreleased_readings_still_stop_as_before(app_ctx, people):
    record = _start(people)
    _revoke(people, record, START + timedelta(days=2))
    unreleased = db.session.scalars(
        select(Assignment).where(Assignment.released_at.is_(None))
    ).all()
    assert unreleased and all(a.stopped_at == START + timedelta(days=2) for a in unreleased)
    (stopped,) = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "learning.stopped")
    ).all()
    assert stopped.detail["assignments"] == len(unreleased)
    # The sweep releases none of them later, under no consent or a new one.
    create_consent(people["jordan"], people["maria"], now=START + timedelta(days=4))
    assert learning.release_due(now=NOON + timedelta(days=60)).released == []


def test_ending_twice_writes_no_second_withdrawal(app_ctx, people):
    record = _start(people)
    _revoke(people, record, START + timedelta(days=2))
    second = create_consent(people["jordan"], people["maria"], now=START + timedelta(days=4))
    _revoke(people, second, START + timedelta(days=5))
    assert len(_withdrawn_rows()) == 1  # nothing was released under the second


def test_another_patients_readings_are_left_alone(app_ctx, people, create_user):
    record = _start(people)
    sam = create_user(Role.PATIENT, name="Sam Lo", therapist=people["lee"])
    create_consent(sam, people["maria"], now=START)
    learning.assign_modules(
        therapist=people["lee"],
        patient_id=sam.id,
        family_user_id=people["maria"].id,
        module_ids=[people["mods"]["relapse-warning-signs"]],
        note=None,
        now=START + timedelta(hours=1),
    )
    _revoke(people, record, START + timedelta(days=2))
    readings = learning.assigned_to(people["maria"], now=START + timedelta(days=3))
    assert [(r.patient_id, r.module.slug) for r in readings] == [(sam.id, "relapse-warning-signs")]
    assert db.session.get(User, sam.id) is not None
