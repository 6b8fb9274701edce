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

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

from sqlalchemy import and_, select

from familylink.extensions import db
from familylink.models import (
    Appointment,
    AppointmentFamily,
    AppointmentStatus,
    ConsentRecord,
    Role,
    Scope,
    SeatStatus,
    User,
    WaitlistEntry,
)
from familylink.services import audit
from familylink.services.access.consents import (
    EXPIRING_SOON,
    IN_CARE,
    InForce,
    _active_consent_and_patient,
    _covers,
    _deny,
    access_ended_at,
    active_consent,
    attendees_shown_to,
    consent_end,
    family_in_force,
    family_shown_to,
    family_shown_under,
    family_with_scope,
    in_force_until,
    is_active,
    is_closed,
    lasts_through,
    linked_patients,
    may_disclose,
    pairs_with_scope,
    recipients_allowed,
    scopes_dropped,
    status_of,
)
from familylink.services.errors import NotFound

# The gate's whole answer, whichever module of the package holds each part.
__all__ = [
    "access_ended_at",
    "active_consent",
    "attendance_since",
    "attendees_shown_to",
    "consent_end",
    "consent_record",
    "EXPIRING_SOON",
    "family_in_force",
    "family_patients",
    "family_records",
    "family_scope_shown",
    "family_shown_to",
    "family_with_scope",
    "group_for_patient",
    "groups_open_to",
    "hold_consents",
    "IN_CARE",
    "in_force_until",
    "InForce",
    "is_active",
    "is_closed",
    "lasts_through",
    "linked_patients",
    "may_disclose",
    "overview_per_therapist",
    "pairs_with_scope",
    "patient",
    "patient_for_family",
    "PatientAccess",
    "patients_covered",
    "reading_family",
    "reading_patient",
    "reading_patients",
    "recipients_allowed",
    "scopes_dropped",
    "seat",
    "session_attendee",
    "status_of",
    "therapist_patient",
    "therapist_patients",
    "waitlist_entry",
]


# --- Opening something for a person (audited) ---------------------------------------------


@dataclass(frozen=True)
class PatientAccess:
    patient: User
    #: The consent in force, when the person is a family member.
    consent: ConsentRecord | None = None
    #: Whom it was opened for, and under which scope (`patient`).
    actor_id: int | None = None
    scope: Scope | None = None

    def opened_for(self, actor: User, patient_id: int, scope: Scope | None) -> bool:
        """True when this is the gate's answer to `actor` asking for `patient_id` under
        `scope`, so an operation later in the same request acts under it without reading
        the consent again."""
        return (self.actor_id, self.patient.id, self.scope) == (actor.id, patient_id, scope)

    def family_shown(self, member: User, *, now: datetime) -> list[User]:
        """The other family members `member` (the family member this access was opened
        for) may see and invite, under the consent just read: `family_shown_to` without
        reading it again."""
        return family_shown_under(self.consent, member, self.patient, now=now)


def _view_rows(actor: User, patient_id: int, what: str, *, now: datetime, consent=None):
    """The audit row of showing `what` about a patient: a disclosure to a family member, a
    view for anyone else."""
    if actor.role == Role.FAMILY:
        return audit.disclosure_values(actor, patient_id, what=what, now=now, obj=consent)
    return audit.values(
        "patient_data.viewed", actor=actor, patient_id=patient_id, detail={"page": what}, now=now
    )


def _viewed(actor: User, patient_id: int, what: str | None, *, now: datetime, consent=None):
    if what is None:
        return
    # Written at once (Core), as every page's view rows are: see audit.record_many.
    audit.record_many([_view_rows(actor, patient_id, what, now=now, consent=consent)])


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


EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)  # before any program day; a consent of no episode


def attendance_since(family_user: User, patient_id: int, *, now: datetime) -> datetime | None:
    """From when the patient's program attendance may be shown to this member: the start of
    the episode their consent in force was signed in (after a readmission, nothing of the
    one before), when it covers `attendance` (the disclosure recorded); else None, recording
    nothing: the page says nothing, not even that attendance exists."""
    consent, _patient = _active_consent_and_patient(family_user.id, patient_id, now=now)
    if not _covers(consent, Scope.ATTENDANCE):
        return None
    _viewed(family_user, patient_id, "program attendance", now=now, consent=consent)
    return consent.episode.started_on if consent.episode is not None else EARLIEST


def therapist_patient(
    therapist: User,
    patient_id: int,
    *,
    now: datetime,
    what: str | None,
    opened: PatientAccess | None = None,
):
    """The therapist's own patient (a patient they treat), or NotFound: another therapist's
    patient looks like no one. `opened`: the gate's answer earlier in the same request
    (`patient`), used when it answered this same question, so a request asks once."""
    if (
        opened is not None
        and therapist.role == Role.THERAPIST
        and opened.opened_for(therapist, patient_id, None)
    ):
        _viewed(therapist, patient_id, what, now=now)
        return opened.patient
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
    opened = partial(PatientAccess, actor_id=actor.id, scope=scope)
    if actor.role == Role.FAMILY:
        found, consent = patient_for_family(
            actor, patient_id, scope=scope, now=now, disclosure=what or "action"
        )
        return opened(found, consent)
    if actor.role == Role.THERAPIST:
        return opened(therapist_patient(actor, patient_id, now=now, what=what))
    if actor.role == Role.PATIENT and actor.id == patient_id:
        _viewed(actor, actor.id, what, now=now)
        return opened(actor)
    raise NotFound()


def hold_consents(actor: User, patient_id: int, people: list[User], *, now: datetime):
    """The booking's consent read: of `people` (family members a booking is about to seat
    with the patient), those whose consent in force covers scheduling, read under a shared
    lock on their consent rows held to the end of the transaction (FOR SHARE on
    PostgreSQL; on SQLite the transaction's write lock already excludes any revocation).

    Closing a consent locks its row first (`consent.records.lock_for_closing`), before ending
    access takes anyone off sessions, so a revocation and a booking exclude each other:
    either the revocation waits for the booking to commit and then cancels its seat too,
    or this waits for the revocation and finds the consent ended. The answer is read in a
    statement begun after the lock, since one that waited on it would still see the
    consent open (its closure is another table's row). NotFound (the refusal audited)
    when `actor` is a family member whose own consent no longer covers scheduling."""
    ids = sorted({person.id for person in people})
    if ids and db.session.get_bind().dialect.name == "postgresql":
        # In id order, so two bookings and the expiry sweep take them in one order.
        db.session.execute(
            select(ConsentRecord.id)
            .where(ConsentRecord.patient_id == patient_id, ConsentRecord.recipient_user_id.in_(ids))
            .order_by(ConsentRecord.id)
            .with_for_update(read=True)
        ).all()
    pairs = {(member_id, patient_id) for member_id in ids}
    held = {member_id for member_id, _ in pairs_with_scope(pairs, Scope.SCHEDULING, now=now)}
    if actor.role == Role.FAMILY and actor.id not in held:
        _deny(actor, patient_id, detail={"wanted": "booking", "asked_for": patient_id}, now=now)
        raise NotFound()
    return [person for person in people if person.id in held]


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
    audit.record_many(
        [
            _view_rows(family_user, found.id, what, now=now, consent=consent)
            for found, consent in pairs
        ]
    )
    return pairs


def patients_covered(pairs: list[tuple[User, ConsentRecord]], scope: Scope | None) -> set[int]:
    """Of the gate's answer (`family_patients`: each patient with the consent in force), the
    ids of the patients whose consent covers `scope` (None: all): for a page showing parts
    under different scopes from one consent read. Records nothing (the read did)."""
    return {found.id for found, consent in pairs if _covers(consent, scope)}


def family_records(
    family_user: User,
    read: Callable[[list[int]], list],
    *,
    now: datetime,
    what: str | None,
    scope: Scope | None = None,
    linked: list[tuple[User, ConsentRecord]] | None = None,
) -> tuple[dict[int, User], list]:
    """What `read(patient_ids)` finds (rows with a `patient_id`) about the patients whose
    consent to this family member is in force now (with `scope`: and covers it), and those
    patients by id. Showing the rows is a disclosure of `what`: one row per patient with
    something shown, none for a patient with nothing; `what=None` when the page records its
    own. Without such a consent nothing is read; a row about anyone else is dropped.
    `linked`: this member's `family_patients` answer earlier in the same request, so their
    consents are not read again."""
    if family_user.role != Role.FAMILY:
        raise NotFound()
    if linked is None:
        linked = linked_patients(family_user, now=now, scope=scope)
    patients = {found.id: found for found, consent in linked if _covers(consent, scope)}
    if not patients:
        return {}, []
    rows = [row for row in read(list(patients)) if row.patient_id in patients]
    if what is not None:
        audit.record_disclosures(family_user, [row.patient_id for row in rows], what=what, now=now)
    return patients, rows


def family_scope_shown(family_user: User, patient_id: int, scope: Scope, *, now, what: str):
    """For a part of a page shown only under `scope`: True when the consent in force from
    the patient to this family member covers it now (the disclosure of `what` audited);
    False, recording nothing, otherwise (the page itself was allowed and audited)."""
    consent = active_consent(family_user.id, patient_id, now=now)
    if family_user.role != Role.FAMILY or not _covers(consent, scope):
        return False
    _viewed(family_user, patient_id, what, now=now, consent=consent)
    return True


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
    therapist: User,
    patient_id: int,
    *,
    now: datetime,
    what: str | None = None,
    opened: PatientAccess | None = None,
) -> tuple[User, list[User]]:
    """The therapist's own patient, and the family members whose readings, shared reflections
    and shared practice tools about that patient the therapist may follow: those whose
    consent is in force now. Anything about another patient, or kept private, is never
    theirs. With `what`, the view is audited (shared practice tools). `opened` as for
    `therapist_patient`."""
    patient = therapist_patient(therapist, patient_id, now=now, what=what, opened=opened)
    return patient, family_with_scope(patient, None, now=now)


def seat(
    actor: User, seat_id: int, *, now: datetime, what: str | None, scope: Scope = Scope.SCHEDULING
):
    """A family's seat the actor may see or act on: a seat in one of the therapist's own
    appointments, or one the family member attends under a consent covering `scope`.

    A family member's own attendance is checked first: another family's seat (even of a
    patient they may see) is refused as a missing one would be, the refusal audited, and
    no disclosure recorded, since nothing is shown; their own is a disclosure of `what`."""
    found = db.session.get(AppointmentFamily, seat_id) if isinstance(seat_id, int) else None
    if found is None:
        raise NotFound()
    if actor.role == Role.THERAPIST and found.appointment.therapist_id == actor.id:
        _viewed(actor, found.patient_id, what, now=now)
        return found
    if actor.role == Role.FAMILY:
        if any(a.user_id == actor.id for a in found.present_attendees):
            patient_for_family(
                actor, found.patient_id, scope=scope, now=now, disclosure=what or "appointment"
            )
            return found
        _deny(
            actor,
            found.patient_id,
            detail={"wanted": what or "appointment", "asked_for_seat": found.id},
            now=now,
        )
    raise NotFound()


def session_attendee(actor: User, appointment: Appointment, *, now: datetime, what: str):
    """None for its therapist (a view of each patient seated, audited); else the seat `actor`
    comes through (a patient's own, or a family member's under a consent covering scheduling
    now), booked or not. Audited; else NotFound.

    A family member may sit in one group occurrence for several patients (a seat each): any
    seat whose patient's consent to them covers scheduling now lets them in, and the seat
    returned (and audited) is the first such one still booked, else the first such one. When
    no consent covers it, the first of their seats is refused (audited) as `seat` refuses."""
    if actor.role == Role.THERAPIST and appointment.therapist_id == actor.id:
        patient_ids = [found.patient_id for found in appointment.seats]
        audit.record_patient_views(actor, patient_ids, page=what, now=now)
        return None
    if actor.role == Role.PATIENT:
        for found in appointment.seats:
            if found.patient_id == actor.id:
                _viewed(actor, actor.id, what, now=now)
                return found
    if actor.role == Role.FAMILY:
        theirs = [
            found
            for found in appointment.seats
            if actor.id in {a.user_id for a in found.present_attendees}
        ]
        allowed = [
            found
            for found in theirs
            if may_disclose(
                actor.id, found.patient_id, Scope.SCHEDULING, now=now, audit_access=False
            )
        ]
        booked = [found for found in allowed if found.status == SeatStatus.BOOKED]
        chosen = (booked or allowed or theirs or [None])[0]
        if chosen is not None:
            return seat(actor, chosen.id, now=now, what=what)
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
        audit.record_about("consent.viewed", consent, actor=actor, now=now)
    return consent


def waitlist_entry(actor: User, entry_id: int) -> WaitlistEntry:
    """The actor's own waitlist entry; NotFound for anyone else's or an unknown id."""
    entry = db.session.get(WaitlistEntry, entry_id) if isinstance(entry_id, int) else None
    if entry is None or entry.family_user_id != actor.id:
        raise NotFound()
    return entry


def overview_per_therapist(actor: User) -> bool:
    """May `actor` open the program overview (counts for the program as a whole, no patient
    data), and split by therapist? The admin: yes, and yes. The program director: yes, and
    never by therapist. Anyone else: NotFound."""
    if actor.role == Role.ADMIN:
        return True
    if actor.role == Role.DIRECTOR:
        return False
    raise NotFound()
