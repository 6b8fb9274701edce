"""The one gate: may this person see, or act on, this patient's data, now?

Every page, service, email at send time, calendar file and feed, reading and staff list asks
here, and nowhere else. The rules (DESIGN.md, "The consent rule"):

- a family member sees nothing about a patient, not even that they are enrolled, until that
  patient's consent to them is active, and then only what its scopes cover;
- a therapist sees their own patients only; a patient sees their own data only;
- anyone else (another role, a guessed id) gets NotFound, answered as 404 in one place.

The functions that open something for a person return what they allowed and write the audit
row that access is due (a disclosure to a family member, a view of patient data by staff or
the patient): pass `what` (the page or purpose). Actions whose own audit row records them
pass `what=None` on purpose. The bulk answers (`pairs_with_scope`, `family_in_force`, …)
record nothing: they serve sweeps, the sender and staff lists, which record their own rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from sqlalchemy import and_, select
from sqlalchemy.orm import aliased

from familylink.extensions import db
from familylink.models import (
    Appointment,
    AppointmentFamily,
    AppointmentStatus,
    ConsentClosure,
    ConsentRecord,
    ExpiryKind,
    FamilyLink,
    Role,
    Scope,
    User,
    WaitlistEntry,
)
from familylink.services import audit
from familylink.services.errors import NotFound

#: A consent that ends within this time is "expiring": the patient is reminded, staff warned.
EXPIRING_SOON = timedelta(days=14)


# --- The consent rule ------------------------------------------------------------------------


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
    """
    patient = aliased(User)
    return (
        select(ConsentRecord, FamilyLink, patient)
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


def family_in_force(
    patient_ids, *, now: datetime
) -> list[tuple[User, int, ConsentRecord, datetime | None]]:
    """(family member, patient id, consent in force, when it ends) for every family member
    of those patients, sorted by patient and name.

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
    own = active_consent(member.id, patient.id, now=now)
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
    rows = db.session.execute(
        _open_consents_query().where(FamilyLink.family_user_id == family_user.id)
    ).all()
    seen: dict[int, tuple[User, ConsentRecord]] = {}
    for consent, _link, patient in rows:
        if patient.id not in seen and is_active(consent, patient, now):
            seen[patient.id] = (patient, consent)
    allowed = [pair for pair in seen.values() if _covers(pair[1], scope)]
    return sorted(allowed, key=lambda pair: pair[0].name)


# --- Opening something for a person (audited) ---------------------------------------------


@dataclass(frozen=True)
class PatientAccess:
    patient: User
    #: The consent in force, when the person is a family member.
    consent: ConsentRecord | None = None


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


def _viewed(actor: User, patient_id: int, what: str | None, *, now: datetime, consent=None):
    if what is None:
        return
    if actor.role == Role.FAMILY:
        audit.record(
            "disclosure.viewed",
            actor=actor,
            patient_id=patient_id,
            recipient_id=actor.id,
            obj=consent,
            detail={"what": what},
            now=now,
        )
    else:
        audit.record_patient_views(actor, [patient_id], page=what, now=now)


def patient_for_family(
    family_user: User, patient_id: int, *, scope: Scope | None, now: datetime, disclosure: str
) -> tuple[User, ConsentRecord]:
    """The patient and the consent in force, when it covers `scope`; else NotFound.

    Records the disclosure (what was shown to whom), which feeds the patient's "what was
    shared" page; a refusal is recorded as access.denied.
    """
    if family_user.role == Role.FAMILY:
        consent, patient = _active_consent_and_patient(family_user.id, patient_id, now=now)
        if _covers(consent, scope):
            _viewed(family_user, patient_id, disclosure, now=now, consent=consent)
            return patient, consent
    _deny(family_user, patient_id, detail={"wanted": disclosure, "asked_for": patient_id}, now=now)
    raise NotFound()


def therapist_patient(therapist: User, patient_id: int, *, now: datetime, what: str | None):
    """The therapist's own patient (a patient they treat), or NotFound: another therapist's
    patient looks like no one."""
    patient = db.session.get(User, patient_id) if isinstance(patient_id, int) else None
    if (
        therapist.role != Role.THERAPIST
        or patient is None
        or patient.role != Role.PATIENT
        or patient.therapist_id != therapist.id
    ):
        raise NotFound()
    _viewed(therapist, patient.id, what, now=now)
    return patient


def patient(
    actor: User, patient_id: int, *, now: datetime, what: str | None, scope: Scope | None = None
) -> PatientAccess:
    """The patient, for whoever may see them: a family member under a consent covering
    `scope`, their own therapist, or the patient themself. NotFound for anyone else."""
    if actor.role == Role.FAMILY:
        found, consent = patient_for_family(
            actor, patient_id, scope=scope, now=now, disclosure=what or "action"
        )
        return PatientAccess(found, consent)
    if actor.role == Role.THERAPIST:
        return PatientAccess(therapist_patient(actor, patient_id, now=now, what=what))
    if actor.role == Role.PATIENT and actor.id == patient_id:
        _viewed(actor, actor.id, what, now=now)
        return PatientAccess(actor)
    raise NotFound()


def therapist_patients(therapist: User, *, now: datetime, what: str | None) -> list[User]:
    """The therapist's own patients by name; listing them is a view of each (audited)."""
    if therapist.role != Role.THERAPIST:
        raise NotFound()
    patients = list(
        db.session.scalars(
            select(User)
            .where(User.role == Role.PATIENT, User.therapist_id == therapist.id)
            .order_by(User.name, User.id)
        )
    )
    if what is not None:
        audit.record_patient_views(therapist, [p.id for p in patients], page=what, now=now)
    return patients


def family_patients(
    family_user: User, *, now: datetime, what: str, scope: Scope | None = None
) -> list[tuple[User, ConsentRecord]]:
    """The patients this family member may see (with `scope`), each listing a disclosure."""
    pairs = linked_patients(family_user, now=now, scope=scope)
    for found, consent in pairs:
        _viewed(family_user, found.id, what, now=now, consent=consent)
    return pairs


def reading_patients(family_user: User, *, now: datetime, what: str | None) -> list[User]:
    """The patients a family member's reading may be about, and so whose therapist a
    reflection they share may reach: those whose consent to them is in force now (any
    scope), by name. With `what`, listing them is a disclosure of each (audited)."""
    if family_user.role != Role.FAMILY:
        raise NotFound()
    if what is None:
        return [found for found, _consent in linked_patients(family_user, now=now)]
    return [found for found, _consent in family_patients(family_user, now=now, what=what)]


def reading_patient(family_user: User, patient_id: int, *, now: datetime, what: str) -> User:
    """One of `reading_patients`, or NotFound (the refusal audited)."""
    return patient_for_family(family_user, patient_id, scope=None, now=now, disclosure=what)[0]


def reading_family(
    therapist: User, patient_id: int, *, now: datetime, what: str | None = None
) -> tuple[User, list[User]]:
    """The therapist's own patient, and the family members whose readings, shared reflections
    and shared practice tools about that patient the therapist may follow: those whose
    consent is in force now. Anything about another patient, or kept private, is never
    theirs. With `what`, the view is audited (shared practice tools)."""
    patient = therapist_patient(therapist, patient_id, now=now, what=what)
    return patient, family_with_scope(patient, None, now=now)


def seat(
    actor: User, seat_id: int, *, now: datetime, what: str | None, scope: Scope = Scope.SCHEDULING
):
    """A family's seat the actor may see or act on: a seat in one of the therapist's own
    appointments, or one the family member attends under a consent covering `scope`."""
    found = db.session.get(AppointmentFamily, seat_id) if isinstance(seat_id, int) else None
    if found is None:
        raise NotFound()
    if actor.role == Role.THERAPIST and found.appointment.therapist_id == actor.id:
        _viewed(actor, found.patient_id, what, now=now)
        return found
    if actor.role == Role.FAMILY:
        patient_for_family(
            actor, found.patient_id, scope=scope, now=now, disclosure=what or "appointment"
        )
        if any(a.user_id == actor.id for a in found.present_attendees):
            return found
    raise NotFound()


def groups_open_to(patient: User):
    """The condition for the group occurrences a patient's family may see, join or wait for:
    scheduled groups run by the patient's own therapist. The patient must already have been
    allowed (`patient`, `patient_for_family`)."""
    return and_(
        Appointment.therapist_id == patient.therapist_id,
        Appointment.capacity > 1,
        Appointment.status == AppointmentStatus.SCHEDULED,
    )


def group_for_patient(patient: User, appointment_id: int, *, lock: bool = False) -> Appointment:
    """One of those groups, read afresh (with `lock`, held FOR UPDATE on PostgreSQL to the end
    of the transaction); NotFound for any other id, so another therapist's groups look like
    no group at all."""
    query = select(Appointment).where(Appointment.id == appointment_id, groups_open_to(patient))
    if lock and db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(of=Appointment)
    found = db.session.scalars(query.execution_options(populate_existing=True)).first()
    if found is None:
        raise NotFound()
    return found


def consent_record(
    actor: User, consent_id: int, *, now: datetime, what: str | None
) -> ConsentRecord:
    """A consent the patient themself or their own therapist may open (with `what`, audited
    as a view); NotFound for anyone else."""
    consent = db.session.get(ConsentRecord, consent_id) if isinstance(consent_id, int) else None
    if consent is None:
        raise NotFound()
    if not (actor.role == Role.PATIENT and consent.patient_id == actor.id):
        therapist_patient(actor, consent.patient_id, now=now, what=None)
    if what is not None:
        audit.record(
            "consent.viewed", actor=actor, obj=consent, patient_id=consent.patient_id, now=now
        )
    return consent


def waitlist_entry(actor: User, entry_id: int) -> WaitlistEntry:
    """The actor's own waitlist entry; NotFound for anyone else's or an unknown id."""
    entry = db.session.get(WaitlistEntry, entry_id) if isinstance(entry_id, int) else None
    if entry is None or entry.family_user_id != actor.id:
        raise NotFound()
    return entry
