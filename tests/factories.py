"""Factories for test data: plain functions with sensible defaults, flushed not committed."""

from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta

import pyotp
from sqlalchemy import select

from familylink.extensions import db
from familylink.models import Episode, Role, User
from familylink.services import consent as consent_service
from familylink.services.passwords import hash_password
from familylink.services.program import forget_cached_program, program_row
from tests.moments import NOON

PASSWORD = "quiet river morning tea"
_sequence = itertools.count(1)


def create_user(
    role: Role = Role.FAMILY,
    *,
    name: str | None = None,
    email: str | None = None,
    password: str | None = PASSWORD,
    verified: bool = True,
    timezone: str = "America/New_York",
    therapist: User | None = None,
    now: datetime = NOON,
    mfa: bool | None = None,
    **extra,
) -> User:
    """A user; therapists and admins come with two-step sign-in enrolled unless mfa=False."""
    n = next(_sequence)
    if mfa is None:
        mfa = role in (Role.THERAPIST, Role.ADMIN, Role.DIRECTOR)
    if mfa:
        extra.setdefault("totp_secret", pyotp.random_base32())
        extra.setdefault("totp_enabled_at", now - timedelta(days=30))
    user = User(
        role=role,
        name=name or f"{role.value.title()} Person{n}",
        email=(email or f"{role.value}{n}@example.org").lower(),
        password_hash=hash_password(password) if password else None,
        verified_at=now - timedelta(days=30) if verified else None,
        timezone=timezone,
        therapist_id=therapist.id if therapist else None,
        created_at=now - timedelta(days=30),
        **extra,
    )
    db.session.add(user)
    db.session.flush()
    if role == Role.PATIENT:  # enrolment starts episode 1, as accounts.invite_user does
        db.session.add(Episode(patient_id=user.id, number=1, started_on=now - timedelta(days=14)))
        db.session.flush()
    return user


def create_consent(
    patient: User,
    family_member: User,
    *,
    scopes: tuple[str, ...] = ("scheduling",),
    now: datetime = NOON,
    expires_at: datetime | None = None,
    relationship: str = "Mother",
    family_visible: bool = False,
    days_after_episode: int | None = None,
):
    """An active portal consent from `patient` to `family_member`, with the link it allows.

    It ends on `expires_at` (default: in 180 days), or, given `days_after_episode`, that many
    days after the end of the episode of care in force when it was signed (a day before now).
    """
    from familylink.models import ConsentRecord, ExpiryKind, FamilyLink
    from familylink.services.consent.records import episode_in_force

    by_episode = days_after_episode is not None

    consent = ConsentRecord(
        patient_id=patient.id,
        patient_name=patient.name,
        program_name="Test Program",
        recipient_name=family_member.name,
        recipient_relationship=relationship,
        recipient_email=family_member.email,
        recipient_user_id=family_member.id,
        purpose="Coordinating and taking part in family therapy",
        scope_scheduling="scheduling" in scopes,
        scope_attendance="attendance" in scopes,
        scope_progress="progress" in scopes,
        family_visible=family_visible,
        information_description="Session times",
        revocation_statement="You may revoke at any time.",
        expiry_kind=ExpiryKind.EPISODE_END if by_episode else ExpiryKind.DATE,
        expires_at=None if by_episode else expires_at or now + timedelta(days=180),
        expiry_days_after_episode=days_after_episode,
        episode_id=getattr(episode_in_force(patient.id, now - timedelta(days=1)), "id", None),
        expiry_description="End of the episode" if by_episode else "180 days",
        signature_name=patient.name,
        signed_at=now - timedelta(days=1),
        method="portal",
        form_version="test",
        text_snapshot="test consent text",
        created_at=now - timedelta(days=1),
    )
    db.session.add(consent)
    link = db.session.scalar(
        select(FamilyLink).where(
            FamilyLink.patient_id == patient.id, FamilyLink.family_user_id == family_member.id
        )
    )
    if link is None:
        db.session.add(
            FamilyLink(
                patient_id=patient.id,
                family_user_id=family_member.id,
                linked_at=now - timedelta(days=1),
            )
        )
    db.session.flush()
    return consent


def saved_user(app, role: Role = Role.FAMILY, email: str = "maria@example.org", **extra) -> int:
    """For web tests: create and commit a user in its own app context; return the id."""
    with app.app_context():
        user = create_user(role, email=email, **extra)
        db.session.commit()
        return user.id


def set_program(app=None, **values) -> None:
    """Set program settings as stored (bypassing the settings form) and drop the cached
    settings so the next read sees them: with `app` (web tests) in its own app context,
    committed; without, flushed in the current one (service tests)."""
    if app is not None:
        with app.app_context():
            set_program(**values)
            db.session.commit()
        return
    program = program_row()
    for name, value in values.items():
        setattr(program, name, value)
    db.session.flush()
    forget_cached_program()


def set_after_hours_phone(app, phone: str | None) -> None:
    """For web tests: the program's after-hours number, as `set_program` sets it."""
    set_program(app, after_hours_phone=phone)


def consent_details(**changes) -> consent_service.ConsentDetails:
    """What a patient fills in to consent to Maria Rivera, with `changes`."""
    values = {
        "recipient_name": "Maria Rivera",
        "recipient_relationship": "Mother",
        "recipient_email": "Maria@Example.org",
        "purpose": consent_service.DEFAULT_PURPOSE,
        "scopes": ["scheduling", "attendance"],
        "expiry_kind": "date",
        "expiry_date": date(2027, 5, 1),
        "expiry_days_after_episode": None,
        "signature_name": "jordan rivera",
        "understood": True,
    }
    values.update(changes)
    return consent_service.ConsentDetails(**values)
