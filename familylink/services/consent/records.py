"""Consent records as each person sees them, and the one write allowed on a signed record:
closing it (revoked, expired or superseded) with a ConsentClosure row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, or_, select

from familylink.extensions import db
from familylink.models import (
    AccountToken,
    AuditEvent,
    ConsentClosure,
    ConsentRecord,
    FamilyLink,
    TokenPurpose,
    User,
)
from familylink.services import access, audit
from familylink.services.consent.wording import (
    FAMILY_HIDDEN_STATEMENT,
    FAMILY_VISIBLE_STATEMENT,
    REDISCLOSURE_NOTICE,
)


def open_consents_to(patient_id: int, email: str) -> list[ConsentRecord]:
    return list(
        db.session.scalars(
            select(ConsentRecord)
            .outerjoin(ConsentClosure, ConsentClosure.consent_id == ConsentRecord.id)
            .where(
                ConsentRecord.patient_id == patient_id,
                ConsentRecord.recipient_email == email.lower(),
                ConsentClosure.id.is_(None),
            )
        )
    )


def close_consent(
    consent: ConsentRecord, reason: str, *, now: datetime, by: User | None = None, **extra
):
    closure = ConsentClosure(
        consent_id=consent.id,
        reason=reason,
        closed_at=now,
        closed_by_id=by.id if by else None,
        **extra,
    )
    db.session.add(closure)
    db.session.flush()
    db.session.refresh(consent)
    return closure


def consents_of(patient: User, *, now: datetime) -> list[tuple[ConsentRecord, str]]:
    """Every consent the patient has signed (or had recorded), newest first, with status."""
    consents = db.session.scalars(
        select(ConsentRecord)
        .where(ConsentRecord.patient_id == patient.id)
        .order_by(ConsentRecord.signed_at.desc(), ConsentRecord.id.desc())
    ).all()
    return [(c, access.status_of(c, patient, now)) for c in consents]


def family_contacts(therapist: User, patient_id: int, *, now: datetime):
    """The therapist's own patient and their consents with status (audited as a view)."""
    patient = access.therapist_patient(therapist, patient_id, now=now, what=None)
    rows = consents_of(patient, now=now)
    audit.record(
        "consent.viewed",
        actor=therapist,
        patient_id=patient.id,
        detail={"what": "family contacts"},
        now=now,
    )
    return patient, rows


def family_overview(family_user: User, *, now: datetime) -> list[tuple[User, ConsentRecord]]:
    """The family member's home list (first names and scopes), each listing a disclosure."""
    return access.family_patients(family_user, now=now, what="home page")


DISCLOSURE_LABELS = {
    "disclosure.viewed": "Viewed a page",
    "disclosure.invitation": "Invitation email, with your first name",
    "email.sent": "Email sent",
    "consent.revoked": _l("Access ended (the consent was revoked)"),
    "consent.expired": _l("Access ended (the consent reached its end)"),
}


def disclosures_of(patient: User, *, limit: int = 500) -> list[dict]:
    """The patient's accounting of disclosures: what was shared, with whom, when."""
    events = db.session.scalars(
        select(AuditEvent)
        .where(
            AuditEvent.patient_id == patient.id,
            AuditEvent.outcome == "success",
            or_(
                and_(AuditEvent.action.like("disclosure.%"), AuditEvent.recipient_id.is_not(None)),
                AuditEvent.action == "disclosure.invitation",
                and_(AuditEvent.action.like("email.%"), AuditEvent.recipient_id.is_not(None)),
                # The end of their access, so the log shows when sharing stopped.
                AuditEvent.action.in_(("consent.revoked", "consent.expired")),
            ),
        )
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        .limit(limit)
    ).all()
    names = {
        u.id: u.name
        for u in db.session.scalars(
            select(User).where(User.id.in_({e.recipient_id for e in events if e.recipient_id}))
        )
    }
    rows = []
    for event in events:
        detail = event.detail or {}
        rows.append(
            {
                "at": event.at,
                "recipient": names.get(event.recipient_id) or detail.get("recipient_name", ""),
                "what": DISCLOSURE_LABELS.get(event.action, event.action.split(".", 1)[-1]),
                "detail": detail.get("what") or detail.get("kind", ""),
            }
        )
    return rows


def printable(consent: ConsentRecord, *, now: datetime) -> dict:
    """What the printable consent page shows besides the record itself."""
    patient = db.session.get(User, consent.patient_id)
    return {
        "consent": consent,
        "status": access.status_of(consent, patient, now),
        "recorded_by": db.session.get(User, consent.recorded_by_id)
        if consent.recorded_by_id
        else None,
        "redisclosure_notice": REDISCLOSURE_NOTICE,
        "family_visible_statement": FAMILY_VISIBLE_STATEMENT,
        "family_hidden_statement": FAMILY_HIDDEN_STATEMENT,
    }


def consent_for_viewer(actor: User, consent_id: int, *, now: datetime) -> ConsentRecord:
    """A consent the patient or their own therapist may open (audited); else NotFound."""
    return access.consent_record(actor, consent_id, now=now, what="consent")


@dataclass(frozen=True)
class FamilyStanding:
    """What a family member's home may say when no patient is shared with them now: when
    their last access ended (never why, nor whose), and whether an invitation waits."""

    access_ended_at: datetime | None
    invitation_waiting: bool


def family_standing(member: User, *, now: datetime) -> FamilyStanding:
    """The member's standing when `access.linked_patients` is empty (one or two queries)."""
    ends = []
    for consent, patient in db.session.execute(
        select(ConsentRecord, User)
        .join(FamilyLink, FamilyLink.patient_id == ConsentRecord.patient_id)
        .join(User, User.id == ConsentRecord.patient_id)
        .where(
            FamilyLink.family_user_id == member.id,
            FamilyLink.recipient_email == ConsentRecord.recipient_email,
        )
    ).all():
        if consent.closure is not None and consent.closure.reason != "superseded":
            ends.append(consent.closure.closed_at)
        elif (end := access.consent_end(consent, patient)) is not None and end <= now:
            ends.append(end)
    waiting = db.session.scalar(
        select(AccountToken.id)
        .where(
            AccountToken.purpose == TokenPurpose.FAMILY_INVITE,
            AccountToken.email == member.email.lower(),
            AccountToken.used_at.is_(None),
            AccountToken.expires_at > now,
        )
        .limit(1)
    )
    return FamilyStanding(max(ends) if ends else None, waiting is not None)
