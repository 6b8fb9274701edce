"""Consent records as each person sees them, and the one write allowed on a signed record:
closing it (revoked, expired or superseded) with a ConsentClosure row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache

from flask import render_template
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from markupsafe import Markup
from sqlalchemy import and_, bindparam, or_, select
from sqlalchemy.orm import aliased
from sqlalchemy.orm.attributes import set_committed_value

from familylink.extensions import db
from familylink.i18n import LANGUAGES, normalise
from familylink.models import (
    AccountToken,
    AuditEvent,
    ClosureReason,
    ConsentClosure,
    ConsentRecord,
    Episode,
    OutboxEmail,
    Role,
    TokenPurpose,
    User,
)
from familylink.services import access, audit, lockout, mail
from familylink.services.consent.wording import form_terms
from familylink.services.errors import Conflict
from familylink.services.timefmt import format_local_date


def open_consents_to(
    patient_id: int, email: str | None, user_id: int | None = None
) -> list[ConsentRecord]:
    """The patient's open consents to one person, newest first: those bound to `user_id`,
    and those to `email` that nobody has accepted yet (one bound to someone else who once
    held that address is theirs, not this person's)."""
    conditions = for_person(email, user_id)
    if not conditions:
        return []
    return list(
        db.session.scalars(
            select(ConsentRecord)
            .outerjoin(ConsentClosure, ConsentClosure.consent_id == ConsentRecord.id)
            .where(
                ConsentRecord.patient_id == patient_id,
                or_(*conditions),
                ConsentClosure.id.is_(None),
            )
            .order_by(ConsentRecord.signed_at.desc(), ConsentRecord.id.desc())
        )
    )


def for_person(email: str | None, user_id: int | None) -> list:
    """The conditions on a consent to `open_consents_to`'s person, open or not (empty:
    nobody)."""
    conditions = []
    if email is not None:
        conditions.append(
            and_(
                ConsentRecord.recipient_user_id.is_(None),
                ConsentRecord.recipient_email == email.lower(),
            )
        )
    if user_id is not None:
        conditions.append(ConsentRecord.recipient_user_id == user_id)
    return conditions


#: Why a queued invitation is cancelled when a newer consent to the same address replaces
#: its consent before anyone accepted it (the newer one sends its own).
INVITATION_REPLACED = "a newer invitation replaces it"


def withdraw_invitations(
    patient_id: int, email: str, *, now: datetime, consent_id: int | None = None
) -> int:
    """Use up the unused invitation links from the patient to `email` (only `consent_id`'s
    invitation, given one), so none opens anything or says on a home that one waits; with
    `consent_id`, its queued email is cancelled too. Returns how many links."""
    if consent_id is not None:
        mail.cancel_unsent(
            OutboxEmail.dedupe_key == f"family_invitation:{consent_id}",
            reason=INVITATION_REPLACED,
        )
    used = 0
    for token in db.session.scalars(
        select(AccountToken).where(
            AccountToken.purpose == TokenPurpose.FAMILY_INVITE,
            AccountToken.email == email.lower(),
            AccountToken.used_at.is_(None),
        )
    ):
        named = db.session.get(ConsentRecord, (token.payload or {}).get("consent_id") or 0)
        if named is None or named.patient_id != patient_id:
            continue
        if consent_id is None or named.id == consent_id:
            token.used_at = now
            used += 1
    db.session.flush()
    return used


def withdraw_unused_invitations(patient_id: int, email: str, *, now: datetime) -> int:
    """Once no open consent from the patient to `email` waits for acceptance, its
    invitation links are used up (`withdraw_invitations`)."""
    if open_consents_to(patient_id, email):
        return 0
    return withdraw_invitations(patient_id, email, now=now)


def supersede(old: ConsentRecord, by: ConsentRecord, *, now: datetime, actor: User) -> None:
    """Close `old` because `by` replaces it for the same person: a closure row and its audit
    row (what `by` grants goes on; it is not an end of access). When nobody had accepted
    `old`, its invitation is withdrawn (its queued email cancelled, its link used up): `by`
    is the one to accept, with its own invitation if it needs one. When `by` went to another
    address (the person changed theirs), unsent email to the old address about the patient
    is cancelled: that address is no longer the person's, and no open consent names it."""
    close_consent(old, ClosureReason.SUPERSEDED, now=now, by=actor)
    if old.recipient_user_id is None:
        withdraw_invitations(old.patient_id, old.recipient_email, now=now, consent_id=old.id)
    old_address = old.recipient_email.lower()
    if old_address != by.recipient_email.lower() and not open_consents_to(
        old.patient_id, old_address
    ):
        mail.cancel_pending(patient_id=old.patient_id, to_address=old_address)
    audit.record_about(
        "consent.superseded", old, actor=actor, detail={"by_consent": by.id}, now=now
    )


def bind_to_person(user: User, patient_id: int, email: str) -> list[ConsentRecord]:
    """On acceptance: the patient's open consents to `email` that nobody has accepted become
    `user`'s. Returns all their open consents from that patient, newest first: the newest
    replaces the others (`ending.replace`: one consent in force per person and patient)."""
    for record in open_consents_to(patient_id, email):
        if record.recipient_user_id is None:
            record.recipient_user_id = user.id
    db.session.flush()
    return open_consents_to(patient_id, None, user.id)


def other_grants(consent: ConsentRecord, *, now: datetime) -> list[ConsentRecord]:
    """The patient's other consents still in force for the person `consent` is bound to,
    newest first: what still lets them see the patient once `consent` ends."""
    if consent.recipient_user_id is None:
        return []
    patient = db.session.get(User, consent.patient_id)
    return [
        other
        for other in open_consents_to(consent.patient_id, None, consent.recipient_user_id)
        if other.id != consent.id and access.is_active(other, patient, now)
    ]


@dataclass(frozen=True)
class Revoked:
    """What the person who revoked a consent is told (`message`), and whether its person
    keeps access under another consent (`access_goes_on`)."""

    message: str
    access_goes_on: bool


def after_revocation(consent: ConsentRecord, *, now: datetime, timezone: str) -> Revoked:
    """The answer to a revocation, for the patient and the therapist alike: that access is
    gone, or which other consent (`other_grants`, its day in `timezone`) still grants it and
    what it shows; never "no longer has access" while one does."""
    others = other_grants(consent, now=now)
    if not others:
        return Revoked(
            _("Done. %(name)s no longer has access.", name=consent.recipient_name), False
        )
    other = others[0]
    message = _(
        "This consent is revoked, but another consent, signed on %(day)s, still lets "
        "%(name)s see: %(what)s. Revoke that one too to end their access.",
        day=format_local_date(other.signed_at, timezone),
        name=other.recipient_name,
        what=", ".join(scope.label.lower() for scope in other.scopes),
    )
    return Revoked(message, True)


def lock_for_closing(consents: list[ConsentRecord]) -> None:
    """Lock the rows of consents about to be closed, to the end of the transaction (FOR NO
    KEY UPDATE on PostgreSQL; SQLite's write lock does it there). A booking seating a family
    member holds their consent row FOR SHARE (`access.hold_consents`), so this waits for
    that booking to commit, and ending access, next, takes the member off its seat too; a
    booking that comes after waits for this transaction and finds the consent ended. An
    operation closing several (the expiry sweep, a discharge) locks them all first, in id
    order as bookings do, so it never waits for one while holding a group a booking needs."""
    ids = sorted(consent.id for consent in consents)
    if ids and db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(
            select(ConsentRecord.id)
            .where(ConsentRecord.id.in_(ids))
            .order_by(ConsentRecord.id)
            .with_for_update(key_share=True)
        ).all()


def lock_consents_of(patient_id: int) -> None:
    """Serialize, to the end of the transaction, the operations that create one patient's
    consents (the patient signing, their therapist recording a paper form): the patient's
    row is locked (`lockout.lock_account`). Taken before the open consents to the person
    are read, so of two at once the second waits for the first to commit and then finds its
    consent (read by statements begun after the lock) and supersedes it, or refuses a paper
    form signed before it: never two open consents to one person."""
    lockout.lock_account(patient_id)


#: What closing a consent that has already ended answers (a second revocation, or one that
#: waited on the lock while another revocation or the sweep closed it).
ALREADY_ENDED = _l("This consent has already ended.")


def still_open(consents: list[ConsentRecord]) -> list[ConsentRecord]:
    """Lock the rows of `consents` (`lock_for_closing`) and return those still open once the
    lock is held. Another transaction may have closed one while this one waited for its
    lock (two revocations at once, a revocation and the sweep or a discharge): its closure
    is another table's row, read here by a statement begun after the lock, so it is seen.

    That statement reads the consents afresh (with their closures), over what the session
    held: one that waited may have been bound to a person meanwhile (an invitation accepted,
    `bind_to_person`), and ending access must reach that person."""
    lock_for_closing(consents)
    ids = [consent.id for consent in consents]
    if not ids:
        return []
    db.session.scalars(
        select(ConsentRecord)
        .where(ConsentRecord.id.in_(ids))
        .execution_options(populate_existing=True)
    ).unique().all()
    return [consent for consent in consents if not access.is_closed(consent)]


def close_consent(
    consent: ConsentRecord, reason: str, *, now: datetime, by: User | None = None, **extra
):
    """Close `consent` (a ConsentClosure row), its row locked first (`still_open`).

    Conflict (ALREADY_ENDED), changing nothing, when it is closed already: by this
    transaction, or by another that held the lock first and has committed."""
    if not still_open([consent]):
        raise Conflict(ALREADY_ENDED)
    closure = ConsentClosure(
        consent_id=consent.id,
        reason=reason,
        closed_at=now,
        closed_by_id=by.id if by else None,
        **extra,
    )
    db.session.add(closure)
    db.session.flush()
    # `consent.closure` is this row, as loading would find it, without reading it back and
    # without a change to the consent (whose record is never updated).
    set_committed_value(consent, "closure", closure)
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


DISCLOSURE_LABELS = {
    "disclosure.viewed": _l("Viewed a page"),
    "disclosure.invitation": _l("Invitation email, with your first name"),
    "email.queued": _l("Email written, waiting to be sent"),
    "email.sent": _l("Email sent"),
    "disclosure.progress_update": _l("A progress update you approved"),
    "consent.revoked": _l("Access ended (the consent was revoked)"),
    "consent.expired": _l("Access ended (the consent reached its end)"),
}


#: What a family member was shown (the audit row's "what"), in words for the patient's log;
#: the English is the audit's own word, anything not listed is shown as recorded.
DISCLOSURE_DETAILS = {
    "patient page": _l("patient page"),
    "home page": _l("home page"),
    "progress update": _l("progress update"),
    "progress updates": _l("progress updates"),
    "reading": _l("reading"),
    "reading assignments": _l("reading assignments"),
    "calendar feed": _l("calendar feed"),
    "booking": _l("booking"),
    "booking list": _l("booking list"),
    "booking page": _l("booking page"),
    "group booking": _l("group booking"),
    "groups": _l("groups"),
    "series booking": _l("series booking"),
    "series move": _l("series move"),
    "appointment": _l("appointment"),
    "video session": _l("video session"),
    "video room": _l("video room"),
    "waitlist": _l("waitlist"),
    # The kind of an email (its audit rows' "kind").
    "booking_confirmed": _l("session booked"),
    "booking_cancelled": _l("session cancelled"),
    "booking_rescheduled": _l("session moved"),
    "late_cancellation": _l("late cancellation"),
    "reminder": _l("session reminder"),
    "waitlist_offer": _l("place offered from the waitlist"),
    "module_assigned": _l("reading assigned"),
    "progress_update": _l("progress update"),
    "consent_expiring": _l("access ending soon"),
    "family_access_ended": _l("access ended"),
    "family_invitation": _l("invitation"),
}


def disclosures_of(patient: User, *, limit: int = 500) -> list[dict]:
    """The patient's accounting of disclosures: what was shared, with whom, when. Emails to
    the patient and their care team name the patient too, but disclose nothing: not listed."""
    events = db.session.scalars(
        select(AuditEvent)
        .outerjoin(User, User.id == AuditEvent.recipient_id)
        .where(
            AuditEvent.patient_id == patient.id,
            AuditEvent.outcome == "success",
            or_(
                and_(AuditEvent.action.like("disclosure.%"), AuditEvent.recipient_id.is_not(None)),
                AuditEvent.action == "disclosure.invitation",
                and_(AuditEvent.action.like("email.%"), User.role == Role.FAMILY),
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
                "detail": _detail(detail.get("what") or detail.get("kind", "")),
            }
        )
    return rows


def _detail(what: str) -> str:
    return str(DISCLOSURE_DETAILS.get(what, what))


def printable(consent: ConsentRecord, *, now: datetime) -> dict:
    """What the printable consent page shows: its status in the viewer's language, and the
    document itself (`document`) in the language it was signed in, §2.32 notice included."""
    patient = db.session.get(User, consent.patient_id)
    recorded_by = db.session.get(User, consent.recorded_by_id) if consent.recorded_by_id else None
    locale = normalise(consent.locale)
    with force_locale(locale):
        html = render_template(
            "consent/_document.html",
            consent=consent,
            recorded_by=recorded_by,
            language_name=LANGUAGES[locale],
            **form_terms(),
        )
    document = Markup(html)  # noqa: S704  our own template, escaped as it rendered
    return {
        "consent": consent,
        "status": access.status_of(consent, patient, now),
        "language_name": LANGUAGES[locale],
        "document": document,
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


# The home's reads for a member with nobody shared now, built once with their values as
# parameters (as the gate's consent reads are): building them cost more than running them.
@cache
def _consents_to_member_query():
    return (
        select(ConsentRecord, User)
        .join(User, User.id == ConsentRecord.patient_id)
        .where(ConsentRecord.recipient_user_id == bindparam("member"))
    )


@cache
def _invitation_waiting_query():
    # An unused link is not enough: it waits only while an open consent from the patient it
    # came from to the address it was sent to waits for acceptance (as `invitations.
    # invitation` asks), each read with its episode, to be checked against the clock.
    named = aliased(ConsentRecord)
    return (
        select(ConsentRecord, User)
        .select_from(AccountToken)
        .join(named, named.id == AccountToken.payload["consent_id"].as_integer())
        .join(
            ConsentRecord,
            and_(
                ConsentRecord.patient_id == named.patient_id,
                ConsentRecord.recipient_email == AccountToken.email,
                ConsentRecord.recipient_user_id.is_(None),
            ),
        )
        .join(User, User.id == ConsentRecord.patient_id)
        .where(
            AccountToken.purpose == TokenPurpose.FAMILY_INVITE,
            # sent to their address, or to the one they had when it was sent
            or_(
                AccountToken.email == bindparam("email"),
                AccountToken.user_id == bindparam("member"),
            ),
            AccountToken.used_at.is_(None),
            AccountToken.expires_at > bindparam("now"),
            ~ConsentRecord.closure.has(),
        )
    )


def family_standing(member: User, *, now: datetime) -> FamilyStanding:
    """The member's standing when `access.linked_patients` is empty (one or two queries)."""
    ends = []
    for consent, patient in db.session.execute(
        _consents_to_member_query(), {"member": member.id}
    ).all():
        if (ended := access.access_ended_at(consent, patient, now)) is not None:
            ends.append(ended)
    waiting = any(
        access.is_active(consent, patient, now)
        for consent, patient in db.session.execute(
            _invitation_waiting_query(),
            {"email": member.email.lower(), "member": member.id, "now": now},
        )
        .unique()
        .all()
    )
    return FamilyStanding(max(ends) if ends else None, waiting)


def episode_in_force(patient_id: int, at: datetime) -> Episode | None:
    """The patient's episode of care in force at `at`: the latest one started by then (or,
    for a moment before any started, the first). A consent follows the one it was signed in."""
    episodes = db.session.scalars(
        select(Episode).where(Episode.patient_id == patient_id).order_by(Episode.number.desc())
    ).all()
    started = [e for e in episodes if e.started_on <= at]
    return started[0] if started else (episodes[-1] if episodes else None)
