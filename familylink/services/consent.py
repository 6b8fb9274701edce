"""The consent rule: what a family member may see of a patient, right now.

Every family-facing page and every email about a patient asks this module first, at the
moment of use. No active consent, or a consent without the needed scope, means nothing is
shown and the answer is indistinguishable from "no such patient".
"""

from __future__ import annotations

from datetime import datetime, timedelta

from blinker import Namespace
from sqlalchemy import and_, select
from sqlalchemy.orm import aliased

from familylink.extensions import db
from familylink.models import ConsentClosure, ConsentRecord, ExpiryKind, FamilyLink, Role, User
from familylink.services import audit
from familylink.services.errors import NotFound

_signals = Namespace()

#: Sent (inside the caller's transaction) when a family member's access to a patient ends,
#: by revocation or expiry: ``consent_ended.send(None, family_user_id=…, patient_id=…,
#: now=…, reason="revoked"|"expired")``. Booking takes the family member off future
#: sessions; learning stops assignments; each receiver only flushes.
consent_ended = _signals.signal("consent-ended")


def consent_end(consent: ConsentRecord, patient: User) -> datetime | None:
    """When the consent stops by the clock, or None while its end event has not happened."""
    if consent.expiry_kind == ExpiryKind.DATE:
        return consent.expires_at
    if patient.episode_end is None:
        return None
    return patient.episode_end + timedelta(days=consent.expiry_days_after_episode or 0)


def is_active(consent: ConsentRecord, patient: User, now: datetime) -> bool:
    if consent.closure is not None:
        return False
    end = consent_end(consent, patient)
    return end is None or now < end


def _open_consents_query():
    """Consents joined to the family links they cover, not closed (clock checked after)."""
    patient = aliased(User)
    return (
        select(ConsentRecord, FamilyLink, patient)
        .join(
            FamilyLink,
            and_(
                FamilyLink.patient_id == ConsentRecord.patient_id,
                FamilyLink.recipient_email == ConsentRecord.recipient_email,
            ),
        )
        .join(patient, patient.id == ConsentRecord.patient_id)
        .outerjoin(ConsentClosure, ConsentClosure.consent_id == ConsentRecord.id)
        .where(ConsentClosure.id.is_(None), patient.active.is_(True))
        .order_by(ConsentRecord.signed_at.desc(), ConsentRecord.id.desc())
    )


def active_consent(family_user_id: int, patient_id: int, *, now: datetime) -> ConsentRecord | None:
    """The consent now in force from that patient to that family member, if any."""
    rows = db.session.execute(
        _open_consents_query().where(
            FamilyLink.family_user_id == family_user_id, ConsentRecord.patient_id == patient_id
        )
    ).all()
    for consent, _link, patient in rows:
        if is_active(consent, patient, now):
            return consent
    return None


def may_disclose(
    family_user_id: int,
    patient_id: int,
    scope: str | None,
    *,
    now: datetime,
    audit_access: bool = True,
) -> bool:
    """True when an active consent covers `scope` (None: any active consent at all)."""
    consent = active_consent(family_user_id, patient_id, now=now)
    allowed = consent is not None and (scope is None or scope in consent.scopes)
    if not allowed and audit_access:
        audit.record(
            "access.denied",
            patient_id=patient_id,
            recipient_id=family_user_id,
            outcome="denied",
            detail={"scope": scope},
            now=now,
        )
    return allowed


def linked_patients(family_user: User, *, now: datetime) -> list[tuple[User, ConsentRecord]]:
    """Each patient this family member may see now, with the consent that allows it."""
    rows = db.session.execute(
        _open_consents_query().where(FamilyLink.family_user_id == family_user.id)
    ).all()
    seen: dict[int, tuple[User, ConsentRecord]] = {}
    for consent, _link, patient in rows:
        if patient.id not in seen and is_active(consent, patient, now):
            seen[patient.id] = (patient, consent)
    return sorted(seen.values(), key=lambda pair: pair[0].name)


def patient_for_family(
    family_user: User, patient_id: int, *, scope: str | None, now: datetime, disclosure: str
) -> tuple[User, ConsentRecord]:
    """The patient and consent, when the family member may see `scope`; else NotFound.

    Records the disclosure (what was shown to whom) in the audit log, which feeds the
    patient's "what was shared" page.
    """
    if family_user.role != Role.FAMILY:
        raise NotFound()
    consent = active_consent(family_user.id, patient_id, now=now)
    if consent is None or (scope is not None and scope not in consent.scopes):
        audit.record(
            "access.denied",
            actor=family_user,
            patient_id=patient_id,
            outcome="denied",
            detail={"wanted": disclosure},
            now=now,
        )
        raise NotFound()
    patient = db.session.get(User, patient_id)
    audit.record(
        "disclosure.viewed",
        actor=family_user,
        patient_id=patient_id,
        recipient_id=family_user.id,
        obj=consent,
        detail={"what": disclosure},
        now=now,
    )
    return patient, consent
