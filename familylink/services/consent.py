"""The consent rule: what a family member may see of a patient, right now.

Every family-facing page and every email about a patient asks this module first, at the
moment of use. No active consent, or a consent without the needed scope, means nothing is
shown and the answer is indistinguishable from "no such patient".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from blinker import Namespace
from flask import render_template
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import aliased

from familylink.extensions import db
from familylink.models import (
    AccountToken,
    AuditEvent,
    ClosureReason,
    ConsentClosure,
    ConsentRecord,
    ExpiryKind,
    FamilyLink,
    Role,
    TokenPurpose,
    User,
)
from familylink.services import audit, mail, tokens
from familylink.services.errors import Conflict, InvalidToken, NotFound, ValidationError
from familylink.services.passwords import check_password_rules, hash_password
from familylink.services.program import get_program
from familylink.services.timefmt import is_valid_timezone

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


@cache
def _open_consents_query():
    """Consents joined to the family links they cover, not closed (clock checked after).

    Built once: the statement is immutable and callers add their own conditions; building
    it costs more than running it.
    """
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


def _active_consent_and_patient(
    family_user_id: int, patient_id: int, *, now: datetime
) -> tuple[ConsentRecord | None, User | None]:
    rows = db.session.execute(
        _open_consents_query().where(
            FamilyLink.family_user_id == family_user_id, ConsentRecord.patient_id == patient_id
        )
    ).all()
    for consent, _link, patient in rows:
        if is_active(consent, patient, now):
            return consent, patient
    return None, None


def active_consent(family_user_id: int, patient_id: int, *, now: datetime) -> ConsentRecord | None:
    """The consent now in force from that patient to that family member, if any."""
    return _active_consent_and_patient(family_user_id, patient_id, now=now)[0]


def family_in_force(
    patient_ids, *, now: datetime
) -> list[tuple[User, int, ConsentRecord, datetime | None]]:
    """(family member, patient id, consent in force, when it ends) for every family member
    of those patients.

    One query whatever the number of patients or family members (`patient_ids` may be a list
    or a SELECT of ids), for pages that show many people at once. Checks nothing about scopes
    and records nothing: the caller decides what to show and to whom.
    """
    if isinstance(patient_ids, list | tuple | set | frozenset) and not patient_ids:
        return []
    member = aliased(User)
    query = (
        _open_consents_query()
        .add_columns(member)
        .join(member, member.id == FamilyLink.family_user_id)
        .where(ConsentRecord.patient_id.in_(patient_ids), member.active.is_(True))
    )
    found: dict[tuple[int, int], tuple[User, int, ConsentRecord, datetime | None]] = {}
    for consent, _link, patient, person in db.session.execute(query).all():
        key = (person.id, patient.id)
        if key not in found and is_active(consent, patient, now):
            found[key] = (person, patient.id, consent, consent_end(consent, patient))
    return sorted(found.values(), key=lambda row: (row[1], row[0].name))


def pairs_with_scope(
    pairs: set[tuple[int, int]], scope: str | None, *, now: datetime
) -> set[tuple[int, int]]:
    """Of these (family member id, patient id) pairs, those whose consent in force now
    covers `scope` (None: any consent in force): what may_disclose answers for each, in
    one query (for sweeps and the sender's batches)."""
    family_ids = {f for f, _ in pairs}
    patient_ids = {p for _, p in pairs}
    rows = db.session.execute(
        _open_consents_query().where(
            FamilyLink.family_user_id.in_(family_ids), ConsentRecord.patient_id.in_(patient_ids)
        )
    ).all()
    decided: dict[tuple[int, int], bool] = {}
    for record, link, patient in rows:  # newest first, like active_consent
        pair = (link.family_user_id, record.patient_id)
        if pair in pairs and pair not in decided and is_active(record, patient, now):
            decided[pair] = scope is None or scope in record.scopes
    return {pair for pair, ok in decided.items() if ok}


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
        known = db.session.get(User, patient_id)
        audit.record(
            "access.denied",
            patient_id=known.id if known is not None else None,
            recipient_id=family_user_id,
            outcome="denied",
            detail={"scope": scope},
            now=now,
        )
    return allowed


def family_with_scope(patient_id: int, scope: str, *, now: datetime) -> list[User]:
    """The patient's family members whose active consent covers `scope`, by name."""
    rows = db.session.execute(
        _open_consents_query().where(ConsentRecord.patient_id == patient_id)
    ).all()
    allowed = {
        link.family_user_id
        for consent, link, patient in rows
        if is_active(consent, patient, now) and scope in consent.scopes
    }
    if not allowed:
        return []
    return list(
        db.session.scalars(
            select(User).where(User.id.in_(allowed), User.active.is_(True)).order_by(User.name)
        )
    )


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
    consent, patient = _active_consent_and_patient(family_user.id, patient_id, now=now)
    if consent is None or (scope is not None and scope not in consent.scopes):
        # A guessed id may name nobody: keep it in the detail, not in the patient column.
        known = db.session.get(User, patient_id)
        audit.record(
            "access.denied",
            actor=family_user,
            patient_id=known.id if known is not None else None,
            outcome="denied",
            detail={"wanted": disclosure, "asked_for": patient_id},
            now=now,
        )
        raise NotFound()
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


# --- Signing, recording, revoking and expiring consents ------------------------------------

#: Version of the consent wording; the snapshot template is ``consent/text_v<FORM_VERSION>.txt``.
FORM_VERSION = "1"

DEFAULT_PURPOSE = "Coordinating and taking part in family therapy."

#: Plain-language meaning of each scope, shown beside its checkbox and kept in the snapshot.
SCOPE_EXPLANATIONS = {
    "scheduling": "Family session times: they can see and book family sessions with my "
    "therapist, and get email reminders about them.",
    "attendance": "Attendance: they can see whether I came to my sessions.",
    "progress": "General progress: my therapist can share short, general notes about how I am "
    "doing, written for my family. Never my therapy notes.",
}

REVOCATION_STATEMENT = (
    "I can take back (revoke) this consent at any time, for one person at a time: on my "
    'FamilyLink page "My family\'s access", or by telling my therapist in writing. It ends '
    "at once."
)
RELIANCE_STATEMENT = (
    "Revoking does not undo what was already shared, or actions the program already took, "
    "while this consent was in force."
)
REDISCLOSURE_NOTICE = (
    "This information has been disclosed to you from records protected by federal "
    "confidentiality rules (42 CFR part 2). The federal rules prohibit you from making any "
    "further disclosure of information in this record that identifies a patient as having or "
    "having had a substance use disorder either directly, by reference to publicly available "
    "information, or through verification of such identification by another person unless "
    "further disclosure is expressly permitted by the written consent of the individual whose "
    "information is being disclosed or as otherwise permitted by 42 CFR part 2. A general "
    "authorization for the release of medical or other information is NOT sufficient for this "
    "purpose (see § 2.31). The federal rules restrict any use of the information to "
    "investigate or prosecute with regard to a crime any patient with a substance use "
    "disorder, except as provided at §§ 2.12(c)(5) and 2.65."
)

EXPIRING_SOON = timedelta(days=14)
MAX_DAYS_AFTER_EPISODE = 365


@dataclass
class ConsentDetails:
    """What a consent form collects; every field is checked by `check_details`."""

    recipient_name: str | None = None
    recipient_relationship: str | None = None
    recipient_email: str | None = None
    purpose: str | None = DEFAULT_PURPOSE
    scopes: list[str] = field(default_factory=list)
    expiry_kind: str | None = None
    expiry_date: date | None = None
    expiry_days_after_episode: int | None = None
    signature_name: str | None = None
    understood: bool = False


def _squash(text: str | None) -> str:
    return " ".join((text or "").split())


def _one_year_after(day: date) -> date:
    try:
        return day.replace(year=day.year + 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year + 1, day=28)


def _local_midnight_after(day: date, zone: str) -> datetime:
    """The instant a consent that runs 'through `day`' ends: midnight after it, local time."""
    return datetime.combine(day + timedelta(days=1), time(0, 0), tzinfo=ZoneInfo(zone)).astimezone(
        UTC
    )


def check_details(patient: User, details: ConsentDetails, *, now: datetime) -> dict:
    """Return the consent's columns from the form, or raise ValidationError naming the field.

    Every element §2.31 requires must be there: recipient, purpose, at least one kind of
    information, an expiry, the signature (the name on file) and the acknowledgement.
    """
    from familylink.services.accounts import normalize_email  # accounts imports mail

    name = _squash(details.recipient_name)
    if not name:
        raise ValidationError("Enter the family member's name.", field="recipient_name")
    if len(name) > 120:
        raise ValidationError("Use at most 120 characters.", field="recipient_name")
    relationship = _squash(details.recipient_relationship)
    if not relationship:
        raise ValidationError(
            "Say how they are related to you, for example mother or partner.",
            field="recipient_relationship",
        )
    if len(relationship) > 60:
        raise ValidationError("Use at most 60 characters.", field="recipient_relationship")
    email = normalize_email(details.recipient_email, field="recipient_email")
    if email == patient.email.lower():
        raise ValidationError(
            "Enter the family member's own email address, not yours.", field="recipient_email"
        )
    purpose = (details.purpose or "").strip()
    if not purpose:
        raise ValidationError("Say what the information is for.", field="purpose")
    if len(purpose) > 500:
        raise ValidationError("Use at most 500 characters.", field="purpose")
    scopes = [s for s in SCOPE_EXPLANATIONS if s in set(details.scopes or [])]
    if not scopes:
        raise ValidationError("Choose at least one kind of information to share.", field="scopes")
    zone = get_program().timezone
    expiry = {"expiry_kind": details.expiry_kind, "expires_at": None}
    if details.expiry_kind == ExpiryKind.DATE:
        today = now.astimezone(ZoneInfo(zone)).date()
        if details.expiry_date is None:
            raise ValidationError("Choose the date this consent ends.", field="expiry_date")
        if details.expiry_date < today:
            raise ValidationError("Choose a date from today onwards.", field="expiry_date")
        if details.expiry_date > _one_year_after(today):
            raise ValidationError(
                "Choose a date no more than one year from today.", field="expiry_date"
            )
        expiry["expires_at"] = _local_midnight_after(details.expiry_date, zone)
        expiry["expiry_days_after_episode"] = None
        expiry["expiry_description"] = (
            f"At the end of {details.expiry_date:%B} {details.expiry_date.day}, "
            f"{details.expiry_date.year} ({zone.replace('_', ' ')} time)."
        )
    elif details.expiry_kind == ExpiryKind.EPISODE_END:
        days = details.expiry_days_after_episode
        if days is None or not 0 <= days <= MAX_DAYS_AFTER_EPISODE:
            raise ValidationError(
                f"Enter a number of days from 0 to {MAX_DAYS_AFTER_EPISODE}.",
                field="expiry_days_after_episode",
            )
        expiry["expiry_days_after_episode"] = days
        expiry["expiry_description"] = "When my current episode of care with the program ends" + (
            f", plus {days} day{'s' if days != 1 else ''}." if days else "."
        )
    else:
        raise ValidationError("Choose when this consent ends.", field="expiry_kind")
    signature = _squash(details.signature_name)
    if not signature:
        raise ValidationError("Type your full name to sign.", field="signature_name")
    if signature.casefold() != _squash(patient.name).casefold():
        raise ValidationError(
            f"Type your full name exactly as we have it: {patient.name}.", field="signature_name"
        )
    if not details.understood:
        raise ValidationError(
            "Tick the box to confirm you have read and understood this consent.",
            field="understood",
        )
    return {
        "recipient_name": name,
        "recipient_relationship": relationship,
        "recipient_email": email,
        "purpose": purpose,
        "scope_scheduling": "scheduling" in scopes,
        "scope_attendance": "attendance" in scopes,
        "scope_progress": "progress" in scopes,
        "information_description": " ".join(SCOPE_EXPLANATIONS[s] for s in scopes),
        "revocation_statement": f"{REVOCATION_STATEMENT} {RELIANCE_STATEMENT}",
        "signature_name": signature,
        **expiry,
    }


def form_terms() -> dict:
    """The fixed wording the form shows, passed to both the page and the snapshot."""
    return {
        "form_version": FORM_VERSION,
        "scope_explanations": SCOPE_EXPLANATIONS,
        "revocation_statement": REVOCATION_STATEMENT,
        "reliance_statement": RELIANCE_STATEMENT,
        "redisclosure_notice": REDISCLOSURE_NOTICE,
    }


def render_snapshot(
    columns: dict,
    *,
    patient_name: str,
    program_name: str,
    signed_at: datetime,
    recorded_by: User | None = None,
) -> str:
    """The consent's full text as signed (paper consents name who recorded them)."""
    return render_template(
        f"consent/text_v{FORM_VERSION}.txt",
        c=columns,
        patient_name=patient_name,
        program_name=program_name,
        signed_at=signed_at,
        recorded_by=recorded_by,
        **form_terms(),
    )


def _open_consents_to(patient_id: int, email: str) -> list[ConsentRecord]:
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


def _link_for(patient_id: int, email: str) -> FamilyLink | None:
    return db.session.scalar(
        select(FamilyLink).where(
            FamilyLink.patient_id == patient_id, FamilyLink.recipient_email == email.lower()
        )
    )


def _close(consent: ConsentRecord, reason: str, *, now: datetime, by: User | None = None, **extra):
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


def _create(
    patient: User,
    columns: dict,
    *,
    now: datetime,
    signed_at: datetime,
    method: str,
    actor: User,
    ip: str | None,
    user_agent: str | None,
    recorded_by: User | None = None,
    attested: bool = False,
) -> ConsentRecord:
    program = get_program()
    previous = _open_consents_to(patient.id, columns["recipient_email"])
    consent = ConsentRecord(
        patient_id=patient.id,
        patient_name=patient.name,
        program_name=program.name,
        method=method,
        signed_at=signed_at,
        recorded_by_id=recorded_by.id if recorded_by else None,
        attested=attested,
        form_version=FORM_VERSION,
        text_snapshot=render_snapshot(
            columns,
            patient_name=patient.name,
            program_name=program.name,
            signed_at=signed_at,
            recorded_by=recorded_by,
        ),
        ip=(ip or None) and ip[:45],
        user_agent=(user_agent or None) and user_agent[:300],
        supersedes_id=previous[0].id if previous else None,
        created_at=now,
        **{k: v for k, v in columns.items()},
    )
    db.session.add(consent)
    db.session.flush()
    # A change or renewal is a new record: the one it replaces is closed, never edited.
    for old in previous:
        _close(old, ClosureReason.SUPERSEDED, now=now, by=actor)
        audit.record(
            "consent.superseded",
            actor=actor,
            obj=old,
            patient_id=patient.id,
            detail={"by_consent": consent.id},
            now=now,
        )
    if _link_for(patient.id, consent.recipient_email) is None:
        _send_invitation(consent, patient, now=now, actor=actor)
    return consent


def _send_invitation(consent: ConsentRecord, patient: User, *, now: datetime, actor: User):
    """Email the recipient a single-use link bound to their address (no account needed)."""
    raw = tokens.issue_token(
        TokenPurpose.FAMILY_INVITE,
        email=consent.recipient_email,
        payload={"consent_id": consent.id},
        now=now,
    )
    # Sent to the address, not an account: the invitation is what lets them link at all.
    mail.queue_email(
        "family_invitation",
        to=consent.recipient_email,
        dedupe_key=f"family_invitation:{consent.id}",
        now=now,
        actor=actor,
        patient_id=patient.id,
        context={
            "link": mail.external_url("family.accept_invitation", token=raw),
            "recipient_name": consent.recipient_name,
            "patient_first_name": patient.first_name,
        },
    )
    audit.record(
        "disclosure.invitation",
        actor=actor,
        obj=consent,
        patient_id=patient.id,
        detail={"recipient_name": consent.recipient_name},
        now=now,
    )
    return raw


def sign_consent(
    patient: User,
    details: ConsentDetails,
    *,
    now: datetime,
    ip: str | None = None,
    user_agent: str | None = None,
) -> ConsentRecord:
    """The patient signs in the portal; any open consent to the same address is superseded.

    Raises ValidationError (with the field) when an element is missing; nothing is stored.
    """
    if patient.role != Role.PATIENT:
        raise NotFound()
    columns = check_details(patient, details, now=now)
    consent = _create(
        patient,
        columns,
        now=now,
        signed_at=now,
        method="portal",
        actor=patient,
        ip=ip,
        user_agent=user_agent,
    )
    audit.record(
        "consent.signed",
        actor=patient,
        obj=consent,
        patient_id=patient.id,
        detail={"scopes": consent.scopes, "form_version": FORM_VERSION},
        now=now,
    )
    return consent


def own_patient(therapist: User, patient_id: int) -> User:
    """The therapist's own patient, or NotFound (another therapist's patient looks absent)."""
    patient = db.session.get(User, patient_id)
    if (
        therapist.role != Role.THERAPIST
        or patient is None
        or patient.role != Role.PATIENT
        or patient.therapist_id != therapist.id
    ):
        raise NotFound()
    return patient


def record_paper_consent(
    therapist: User,
    patient_id: int,
    details: ConsentDetails,
    *,
    signed_on: date | None,
    attested: bool,
    now: datetime,
    ip: str | None = None,
    user_agent: str | None = None,
) -> ConsentRecord:
    """A therapist records a consent their own patient signed on paper."""
    patient = own_patient(therapist, patient_id)
    zone = get_program().timezone
    today = now.astimezone(ZoneInfo(zone)).date()
    if signed_on is None:
        raise ValidationError("Enter the date the patient signed the form.", field="signed_on")
    if signed_on > today:
        raise ValidationError("The date signed can't be in the future.", field="signed_on")
    if signed_on < today - timedelta(days=60):
        raise ValidationError(
            "A paper consent older than 60 days needs a new signature.", field="signed_on"
        )
    columns = check_details(patient, details, now=now)
    if not attested:
        raise ValidationError(
            "Tick the box to confirm the patient signed this on paper.", field="attested"
        )
    signed_at = min(now, datetime.combine(signed_on, time(12, 0), tzinfo=ZoneInfo(zone)))
    consent = _create(
        patient,
        columns,
        now=now,
        signed_at=signed_at.astimezone(UTC),
        method="paper",
        actor=therapist,
        ip=ip,
        user_agent=user_agent,
        recorded_by=therapist,
        attested=True,
    )
    audit.record(
        "consent.recorded",
        actor=therapist,
        obj=consent,
        patient_id=patient.id,
        detail={"scopes": consent.scopes, "method": "paper", "signed_on": signed_on.isoformat()},
        now=now,
    )
    return consent


# --- Invitations ---------------------------------------------------------------------------

WRONG_ADDRESS = (
    "This invitation was sent to a different email address. Sign out, then open the link "
    "again and sign in (or create an account) with the address it was sent to."
)


def invitation(raw_token: str | None, *, now: datetime) -> tuple[AccountToken, ConsentRecord]:
    """The invitation's token and consent, while both are still good; else InvalidToken."""
    token = tokens.find_valid_token(raw_token, TokenPurpose.FAMILY_INVITE, now=now)
    consent = db.session.get(ConsentRecord, (token.payload or {}).get("consent_id") or 0)
    if consent is None or consent.recipient_email != token.email:
        raise InvalidToken(tokens.EXPIRED_OR_INVALID)
    patient = db.session.get(User, consent.patient_id)
    # A renewal may have superseded the consent the link named: any active one will do.
    if not any(is_active(c, patient, now) for c in _open_consents_to(patient.id, token.email)):
        raise InvalidToken(tokens.EXPIRED_OR_INVALID)
    return token, consent


def accept_invitation(raw_token: str | None, user: User, *, now: datetime) -> FamilyLink:
    """Link a signed-in family member; the token is used up. Conflict for another address."""
    token, consent = invitation(raw_token, now=now)
    if user.email.lower() != token.email or user.role != Role.FAMILY:
        audit.record(
            "consent.invitation_refused",
            actor=user,
            patient_id=consent.patient_id,
            outcome="denied",
            detail={"reason": "other address"},
            now=now,
        )
        raise Conflict(WRONG_ADDRESS)
    tokens.consume_token(raw_token, TokenPurpose.FAMILY_INVITE, now=now)
    return link_family_member(consent, user, now=now)


def register_through_invitation(
    raw_token: str | None, *, name: str, password: str, timezone: str, now: datetime
) -> User:
    """Create the invited family member's account and link it; the link proves the address."""
    from familylink.services import accounts

    token, consent = invitation(raw_token, now=now)
    if accounts.find_user_by_email(token.email) is not None:
        raise ValidationError(
            "You already have an account with this address. Sign in to accept the invitation."
        )
    name = accounts.clean_name(name)
    if not is_valid_timezone(timezone):
        raise ValidationError("Choose your time zone from the list.", field="timezone")
    check_password_rules(password, email=token.email, program_name=get_program().name)
    tokens.consume_token(raw_token, TokenPurpose.FAMILY_INVITE, now=now)
    user = User(
        email=token.email,
        name=name,
        role=Role.FAMILY,
        timezone=timezone,
        password_hash=hash_password(password),
        verified_at=now,
        created_at=now,
    )
    db.session.add(user)
    db.session.flush()
    audit.record("account.registered", actor=user, obj=user, detail={"via": "invitation"}, now=now)
    link_family_member(consent, user, now=now)
    return user


def link_family_member(consent: ConsentRecord, user: User, *, now: datetime) -> FamilyLink:
    """Join the family member to the patient (once); the consent decides what they see."""
    link = db.session.scalar(
        select(FamilyLink).where(
            FamilyLink.patient_id == consent.patient_id, FamilyLink.family_user_id == user.id
        )
    )
    if link is None:
        link = FamilyLink(
            patient_id=consent.patient_id,
            family_user_id=user.id,
            recipient_email=user.email.lower(),
            linked_at=now,
        )
        db.session.add(link)
        db.session.flush()
    audit.record(
        "consent.invitation_accepted",
        actor=user,
        obj=consent,
        patient_id=consent.patient_id,
        recipient_id=user.id,
        now=now,
    )
    return link


# --- Ending access -------------------------------------------------------------------------


def _end_access(consent: ConsentRecord, reason: str, *, now: datetime, actor: User | None):
    """Everything that follows an ended consent, in the caller's transaction."""
    patient = db.session.get(User, consent.patient_id)
    links = db.session.scalars(
        select(FamilyLink).where(
            FamilyLink.patient_id == consent.patient_id,
            FamilyLink.recipient_email == consent.recipient_email,
        )
    ).all()
    cancelled = mail.cancel_pending_to_address(
        now=now, to_address=consent.recipient_email, patient_id=patient.id
    )
    for link in links:
        cancelled += mail.cancel_pending(
            now=now, to_user_id=link.family_user_id, patient_id=patient.id
        )
        consent_ended.send(
            None, family_user_id=link.family_user_id, patient_id=patient.id, now=now, reason=reason
        )
    audit.record(
        f"consent.{reason}",
        actor=actor,
        obj=consent,
        patient_id=patient.id,
        recipient_id=links[0].family_user_id if links else None,
        detail={"cancelled_emails": cancelled},
        now=now,
    )
    therapist = db.session.get(User, patient.therapist_id) if patient.therapist_id else None
    if therapist is not None:
        mail.queue_email(
            "family_access_ended_therapist",
            to=therapist,
            dedupe_key=f"consent_ended_therapist:{consent.id}",
            now=now,
            actor=actor,
            context={
                "patient_first_name": patient.first_name,
                "consent": consent,
                "reason": reason,
                "link": mail.external_url("therapist.family_contacts", patient_id=patient.id),
            },
        )
    family_user = db.session.get(User, links[0].family_user_id) if links else None
    # Neutral, and not tied to the patient, so the cancellation above does not stop it.
    mail.queue_email(
        "family_access_ended",
        to=family_user or consent.recipient_email,
        dedupe_key=f"family_access_ended:{consent.id}",
        now=now,
        actor=actor,
        context={"recipient_name": consent.recipient_name},
    )


def _patient_or_own_therapist(actor: User, consent: ConsentRecord) -> None:
    if actor.role == Role.PATIENT and consent.patient_id == actor.id:
        return
    if actor.role == Role.THERAPIST:
        own_patient(actor, consent.patient_id)
        return
    raise NotFound()


def consent_for_viewer(actor: User, consent_id: int, *, now: datetime) -> ConsentRecord:
    """A consent the patient or their own therapist may open (audited); else NotFound."""
    consent = db.session.get(ConsentRecord, consent_id)
    if consent is None:
        raise NotFound()
    _patient_or_own_therapist(actor, consent)
    audit.record("consent.viewed", actor=actor, obj=consent, patient_id=consent.patient_id, now=now)
    return consent


def revoke_consent(
    actor: User,
    consent_id: int,
    *,
    now: datetime,
    method: str = "portal",
    note: str | None = None,
) -> ConsentRecord:
    """End a consent at once: the patient in the portal, or their therapist from writing.

    NotFound for anyone else's consent; Conflict when it has already ended.
    """
    consent = db.session.get(ConsentRecord, consent_id)
    if consent is None:
        raise NotFound()
    _patient_or_own_therapist(actor, consent)
    patient = db.session.get(User, consent.patient_id)
    if consent.closure is not None or not is_active(consent, patient, now):
        raise Conflict("This consent has already ended.")
    note = (note or "").strip() or None
    if note and len(note) > 1000:
        raise ValidationError("Use at most 1000 characters.", field="note")
    _close(consent, ClosureReason.REVOKED, now=now, by=actor, method=method, note=note)
    _end_access(consent, ClosureReason.REVOKED, now=now, actor=actor)
    return consent


@dataclass
class SweepReport:
    expired: int = 0
    reminded: int = 0

    def __str__(self) -> str:
        return f"{self.expired} consents expired, {self.reminded} expiry reminders queued"


def sweep_consents(now: datetime) -> SweepReport:
    """Close consents whose end has come and remind patients 14 days ahead (idempotent)."""
    report = SweepReport()
    rows = db.session.execute(
        select(ConsentRecord, User)
        .join(User, User.id == ConsentRecord.patient_id)
        .outerjoin(ConsentClosure, ConsentClosure.consent_id == ConsentRecord.id)
        .where(ConsentClosure.id.is_(None))
        .order_by(ConsentRecord.id)
    ).all()
    for consent, patient in rows:
        end = consent_end(consent, patient)
        if end is None:
            continue
        if end <= now:
            _close(consent, ClosureReason.EXPIRED, now=now)
            _end_access(consent, ClosureReason.EXPIRED, now=now, actor=None)
            report.expired += 1
        elif end - EXPIRING_SOON <= now:
            queued = mail.queue_email(
                "consent_expiring",
                to=patient,
                dedupe_key=f"consent_expiring:{consent.id}",
                now=now,
                context={
                    "consent": consent,
                    "ends_at": end,
                    "link": mail.external_url("patient.consents"),
                },
            )
            report.reminded += queued is not None
    return report


# --- What each person sees -----------------------------------------------------------------


def status_of(consent: ConsentRecord, patient: User, now: datetime) -> str:
    """active, expiring (within 14 days), revoked, expired or superseded."""
    if consent.closure is not None:
        return consent.closure.reason
    end = consent_end(consent, patient)
    if end is not None and end <= now:
        return "expired"
    if end is not None and end - EXPIRING_SOON <= now:
        return "expiring"
    return "active"


def consents_of(patient: User, *, now: datetime) -> list[tuple[ConsentRecord, str]]:
    """Every consent the patient has signed (or had recorded), newest first, with status."""
    consents = db.session.scalars(
        select(ConsentRecord)
        .where(ConsentRecord.patient_id == patient.id)
        .order_by(ConsentRecord.signed_at.desc(), ConsentRecord.id.desc())
    ).all()
    return [(c, status_of(c, patient, now)) for c in consents]


def family_contacts(therapist: User, patient_id: int, *, now: datetime):
    """The therapist's own patient and their consents with status (audited as a view)."""
    patient = own_patient(therapist, patient_id)
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
    pairs = linked_patients(family_user, now=now)
    for patient, consent in pairs:
        audit.record(
            "disclosure.viewed",
            actor=family_user,
            patient_id=patient.id,
            recipient_id=family_user.id,
            obj=consent,
            detail={"what": "home page"},
            now=now,
        )
    return pairs


DISCLOSURE_LABELS = {
    "disclosure.viewed": "Viewed a page",
    "disclosure.invitation": "Invitation email, with your first name",
    "email.sent": "Email sent",
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
        "status": status_of(consent, patient, now),
        "recorded_by": db.session.get(User, consent.recorded_by_id)
        if consent.recorded_by_id
        else None,
        "redisclosure_notice": REDISCLOSURE_NOTICE,
    }
