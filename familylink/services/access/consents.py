"""The consent rule: which consent is in force from a patient to a family member, what it
covers, and the bulk answers built on it (for sweeps, the sender, staff lists and pages that
show many people at once). These record nothing but refusals; the functions that open
something for a person, and record that they did, are in the package's `__init__`.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from functools import cache

from sqlalchemy import and_, bindparam, select
from sqlalchemy.orm import aliased, contains_eager, defer

from familylink.extensions import db
from familylink.models import (
    AppointmentFamily,
    ConsentClosure,
    ConsentRecord,
    ExpiryKind,
    FamilyLink,
    Role,
    Scope,
    User,
)
from familylink.services import audit

#: A consent that ends within this time is "expiring": the patient is reminded, staff warned.
EXPIRING_SOON = timedelta(days=14)


def consent_end(consent: ConsentRecord, patient: User) -> datetime | None:
    """When the consent stops by the clock, or None while its end event has not happened.

    An "end of episode" consent follows the episode it was signed in, never the patient's
    current one: a readmission does not revive it.
    """
    if consent.expiry_kind == ExpiryKind.DATE:
        return consent.expires_at
    episode = consent.episode
    if episode is None or episode.ended_on is None:
        return None
    return episode.ended_on + timedelta(days=consent.expiry_days_after_episode or 0)


def is_active(consent: ConsentRecord, patient: User, now: datetime) -> bool:
    if consent.closure is not None:
        return False
    end = consent_end(consent, patient)
    return end is None or now < end


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


@cache
def _open_consents_query():
    """Consents joined to the family links they cover, not closed (clock checked after).

    A consent covers the person it is bound to (`recipient_user_id`, set when they accepted
    it), never whoever now holds the address it was sent to: an email change moves nothing.

    Built once: the statement is immutable and callers add their own conditions; building
    it costs more than running it.

    Every signed-in family page runs it, so it reads no more than the rule needs: not the
    signed text (`text_snapshot`, loaded if something asks for it), which PostgreSQL keeps
    compressed and unpacked on every read (about 40% of the statement's server time); and
    the closure from the join that finds none (every row's is None), not a second join.
    """
    patient = aliased(User)
    return (
        select(ConsentRecord, FamilyLink, patient)
        .options(defer(ConsentRecord.text_snapshot), contains_eager(ConsentRecord.closure))
        .join(
            FamilyLink,
            and_(
                FamilyLink.patient_id == ConsentRecord.patient_id,
                FamilyLink.family_user_id == ConsentRecord.recipient_user_id,
            ),
        )
        .join(patient, patient.id == ConsentRecord.patient_id)
        .outerjoin(ConsentClosure, ConsentClosure.consent_id == ConsentRecord.id)
        .where(ConsentClosure.id.is_(None), patient.active.is_(True))
        .order_by(ConsentRecord.signed_at.desc(), ConsentRecord.id.desc())
    )


# Every signed-in family page asks one of these: built once with their ids as parameters,
# since building a statement and its cache key on each request cost more than running it.
@cache
def _open_consents_of_member():
    return _open_consents_query().where(FamilyLink.family_user_id == bindparam("member"))


@cache
def _open_consents_of_member_about():
    return _open_consents_of_member().where(ConsentRecord.patient_id == bindparam("patient"))


def _active_consent_and_patient(
    family_user_id: int, patient_id: int, *, now: datetime
) -> tuple[ConsentRecord | None, User | None]:
    rows = db.session.execute(
        _open_consents_of_member_about(), {"member": family_user_id, "patient": patient_id}
    ).all()
    for consent, _link, patient in rows:
        if is_active(consent, patient, now):
            return consent, patient
    return None, None


def _covers(consent: ConsentRecord | None, scope: Scope | None) -> bool:
    return consent is not None and (scope is None or scope in consent.scopes)


def active_consent(family_user_id: int, patient_id: int, *, now: datetime) -> ConsentRecord | None:
    """The consent now in force from that patient to that family member, if any."""
    return _active_consent_and_patient(family_user_id, patient_id, now=now)[0]


def may_disclose(
    family_user_id: int,
    patient_id: int,
    scope: Scope | None,
    *,
    now: datetime,
    audit_access: bool = True,
) -> bool:
    """True when an active consent covers `scope` (None: any active consent at all).

    A refusal is audited unless `audit_access` is False (checks that show nothing).
    """
    allowed = _covers(active_consent(family_user_id, patient_id, now=now), scope)
    if not allowed and audit_access:
        _deny(None, patient_id, recipient_id=family_user_id, detail={"scope": scope}, now=now)
    return allowed


def pairs_with_scope(
    pairs: set[tuple[int, int]], scope: Scope | None, *, now: datetime
) -> set[tuple[int, int]]:
    """Of these (family member id, patient id) pairs, those whose consent in force now
    covers `scope` (None: any consent in force): what may_disclose answers for each, in
    one query (for sweeps and the sender's batches)."""
    if not pairs:
        return set()
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
            decided[pair] = _covers(record, scope)
    return {pair for pair, ok in decided.items() if ok}


def recipients_allowed(
    pairs: set[tuple[int | str, int]], scope: str | None, *, now: datetime
) -> set[tuple[int | str, int]]:
    """The sender's check: of these (recipient, patient id) pairs, those that may still be
    told about the patient. A recipient is a family member's id (their consent in force must
    cover `scope`), or the address of someone invited who has no account yet (a consent to
    that address must still be open: an invitation must not outlive its consent)."""
    members = {pair for pair in pairs if isinstance(pair[0], int)}
    invited = pairs - members
    allowed: set[tuple[int | str, int]] = set(pairs_with_scope(members, scope, now=now))
    if invited:
        rows = db.session.execute(
            select(ConsentRecord, User)
            .join(User, User.id == ConsentRecord.patient_id)
            .outerjoin(ConsentClosure, ConsentClosure.consent_id == ConsentRecord.id)
            .where(
                ConsentClosure.id.is_(None),
                User.active.is_(True),
                ConsentRecord.patient_id.in_({p for _, p in invited}),
                ConsentRecord.recipient_email.in_({str(a).lower() for a, _ in invited}),
            )
        ).all()
        for record, patient in rows:
            pair = (record.recipient_email, record.patient_id)
            if pair in invited and is_active(record, patient, now) and _covers(record, scope):
                allowed.add(pair)
    return allowed


@cache
def _family_in_force_of_listed():
    """Open consents about the listed patients (parameter "patients") with the family
    member each covers: built once, the booking page asks it on every request."""
    member = aliased(User)
    return (
        _open_consents_query()
        .add_columns(member)
        .join(member, member.id == FamilyLink.family_user_id)
        .where(
            ConsentRecord.patient_id.in_(bindparam("patients", expanding=True)),
            member.active.is_(True),
        )
    )


def family_in_force(
    patient_ids: Collection[int], *, now: datetime
) -> list[tuple[User, int, ConsentRecord, datetime | None]]:
    """(family member, patient id, consent in force, when it ends) for every family member
    of those patients, sorted by patient and name.

    One query whatever the number of patients or family members, for pages that show many
    people at once. `patient_ids` are the ids the page already holds, never a SELECT: given a
    subquery, PostgreSQL walked every open consent of the program and probed the subquery
    for each (25 s for one therapist's week at 100,000 consents). Checks nothing about
    scopes and records nothing: the caller decides what to show and to whom.
    """
    if not patient_ids:
        return []
    rows = db.session.execute(_family_in_force_of_listed(), {"patients": sorted(patient_ids)})
    found: dict[tuple[int, int], tuple[User, int, ConsentRecord, datetime | None]] = {}
    for consent, _link, patient, person in rows.all():
        key = (person.id, patient.id)
        if key not in found and is_active(consent, patient, now):
            found[key] = (person, patient.id, consent, consent_end(consent, patient))
    return sorted(found.values(), key=lambda row: (row[1], row[0].name, row[0].id))


def family_with_scope(patient: User, scope: Scope | None, *, now: datetime) -> list[User]:
    """The patient's family members whose consent in force covers `scope` (None: any), by
    name: who may be invited to a session, assigned a reading, or emailed about them."""
    return [
        person
        for person, _patient_id, record, _end in family_in_force([patient.id], now=now)
        if _covers(record, scope)
    ]


def family_shown_to(member: User, patient: User, *, now: datetime) -> list[User]:
    """The patient's other family members (holding the scheduling scope) that `member` may
    see and invite: nobody, unless the patient's consent to `member` says so (its
    family_visible choice, off by default)."""
    return family_shown_under(
        active_consent(member.id, patient.id, now=now), member, patient, now=now
    )


def family_shown_under(
    own: ConsentRecord | None, member: User, patient: User, *, now: datetime
) -> list[User]:
    """`family_shown_to`, given the member's consent in force as the gate just read it
    (`PatientAccess.consent`), so a page does not read it twice."""
    if own is None or not own.family_visible:
        return []
    return [m for m in family_with_scope(patient, "scheduling", now=now) if m.id != member.id]


def attendees_shown_to(viewer: User, seat: AppointmentFamily, *, now: datetime) -> list[User]:
    """Who `viewer` is shown as coming to a seat: everyone for staff; a family member sees
    themself, and the others only when their consent lets them see other family members."""
    coming = [attendee.user for attendee in seat.present_attendees]
    if viewer.role != Role.FAMILY:
        return coming
    own = active_consent(viewer.id, seat.patient_id, now=now)
    if own is not None and own.family_visible:
        return coming
    return [person for person in coming if person.id == viewer.id]


def linked_patients(
    family_user: User, *, now: datetime, scope: Scope | None = None
) -> list[tuple[User, ConsentRecord]]:
    """Each patient this family member may see now (with `scope`: whose consent covers it),
    with the consent that allows it, by name. Records nothing: see `family_patients`."""
    rows = db.session.execute(_open_consents_of_member(), {"member": family_user.id}).all()
    seen: dict[int, tuple[User, ConsentRecord]] = {}
    for consent, _link, patient in rows:
        if patient.id not in seen and is_active(consent, patient, now):
            seen[patient.id] = (patient, consent)
    allowed = [pair for pair in seen.values() if _covers(pair[1], scope)]
    return sorted(allowed, key=lambda pair: pair[0].name)


def _deny(actor: User | None, patient_id, *, now: datetime, recipient_id=None, detail=None):
    # A guessed id may name nobody: keep it in the detail, not in the patient column.
    known = db.session.get(User, patient_id) if isinstance(patient_id, int) else None
    audit.record(
        "access.denied",
        actor=actor,
        patient_id=known.id if known is not None else None,
        recipient_id=recipient_id,
        outcome="denied",
        detail=detail,
        now=now,
    )
