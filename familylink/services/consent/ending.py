"""Ending a family member's access: one operation, whatever the entry point.

The patient revoking in the portal, their therapist recording a written revocation, the
expiry sweep, a discharge ending the episode of care, and the command line all call
`end_family_access`, which performs every effect in one documented order, inside the
caller's transaction (it flushes; the caller commits once). Nothing here is wired by a
signal or depends on which modules happen to be imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import select

from familylink.extensions import db
from familylink.models import (
    ClosureReason,
    ConsentClosure,
    ConsentRecord,
    FamilyLink,
    Scope,
    User,
    UserSession,
)
from familylink.services import access, audit, mail, progress_updates, sessions
from familylink.services.booking import groups as booking_groups
from familylink.services.consent import records
from familylink.services.errors import Conflict, ValidationError
from familylink.services.learning import assignments, practice, progress


def end_family_access(
    consent: ConsentRecord,
    reason: str,
    *,
    actor: User | None,
    now: datetime,
    method: str | None = None,
    note: str | None = None,
    keep_session: UserSession | None = None,
) -> int:
    """End what `consent` allowed, in this order, and return how many emails were cancelled:

    1. close the consent (a ConsentClosure row: revoked or expired; records never change);
    2. for each family member it covered: take them off that patient's future sessions and
       waitlists (a seat nobody can attend any more, or a place an offer held for them, is
       released and offered on), stop their unreleased readings about the patient and
       withdraw the released ones (their own notes on them no longer about the patient),
       make private again the practice tools and reflections they shared with the patient's
       therapist and withdraw the progress updates released to them (a later consent opens
       none of these again), and end their sign-in
       sessions, so no open page keeps showing what they may no longer see (all but
       `keep_session`: the one a member is accepting a new invitation in, whose next page
       the gate builds under the new consent);
    3. cancel every queued email about the patient to them, and to the address the consent
       was sent to (an invitation not yet accepted), and use up the patient's invitation
       links to that address once no open consent to it waits for acceptance;
    4. record it in the audit log (the patient's disclosure log shows the end);
    5. tell the patient's therapist (with how many future sessions the member was taken off
       and how many of those emails were cancelled, each only if any), and the family
       member, neutrally, when they had accepted it (an address that never accepted had no
       access to lose, and is told nothing about the patient's program); when it expired
       (the sweep, or a discharge), tell the patient too, without saying why.

    Calendar feeds are built when they are read, through the access gate, so the patient's
    sessions leave the family member's feed at once without a step here.

    Conflict (`records.ALREADY_ENDED`), with nothing done, when the consent is closed
    already: another transaction closed it while this one waited for its row's lock.
    """
    records.close_consent(consent, reason, now=now, by=actor, method=method, note=note)
    patient = db.session.get(User, consent.patient_id)
    # The person it was bound to when they accepted it, whatever their address is now.
    members = list(
        db.session.scalars(
            select(FamilyLink.family_user_id).where(
                FamilyLink.patient_id == consent.patient_id,
                FamilyLink.family_user_id == consent.recipient_user_id,
            )
        )
    )
    left = 0  # future sessions they were taken off
    for member_id in members:
        left += leave_sessions(member_id, patient.id, now=now, reason="consent ended")
        assignments.stop_assignments(family_user_id=member_id, patient_id=patient.id, now=now)
        assignments.withdraw_released(family_user_id=member_id, patient_id=patient.id, now=now)
        progress.withdraw_readings(family_user_id=member_id, patient_id=patient.id, now=now)
        practice.unshare_about(family_user_id=member_id, patient_id=patient.id, now=now)
        progress.unshare_reflections(family_user_id=member_id, patient_id=patient.id, now=now)
        progress_updates.withdraw_releases(family_user_id=member_id, patient_id=patient.id, now=now)
        sessions.end_all_sessions(member_id, "consent_ended", now=now, keep=keep_session)
    cancelled = mail.cancel_pending(
        patient_id=patient.id, to_user_ids=members, to_address=consent.recipient_email
    )
    # An invitation nobody accepted opens nothing now, and no home says one waits.
    records.withdraw_unused_invitations(patient.id, consent.recipient_email, now=now)
    audit.record_about(
        f"consent.{reason}",
        consent,
        actor=actor,
        recipient_id=members[0] if members else None,
        detail={"cancelled_emails": cancelled},
        now=now,
    )
    member = members[0] if members else None
    _tell_people(consent, patient, member, reason, actor, now, cancelled=cancelled, left=left)
    return cancelled


def leave_sessions(member_id: int, patient_id: int, *, now: datetime, reason: str) -> int:
    """The one step that takes a family member off the patient's future sessions and
    waitlists, whether access ended or only scheduling did (`end_scopes`): each
    removal audited (`booking.attendee_removed`), a seat nobody can attend any more released
    (its reminders cancelled, a group place offered on). Returns how many sessions."""
    return booking_groups.remove_from_future(
        family_user_id=member_id, patient_id=patient_id, now=now, reason=reason
    )


def replace(
    previous: list[ConsentRecord],
    by: ConsentRecord,
    *,
    now: datetime,
    actor,
    keep_session: UserSession | None = None,
) -> None:
    """`by` replaces `previous` for the same person (signed, recorded from paper, or bound
    when they accepted its invitation), sharing no more than they and `by` allow:

    - one that had already reached its end by the clock (the sweep had not come to it yet)
      ended access then: it is closed as expired by `end_family_access`, every effect
      included, exactly as if the sweep had run first, so what was shared under it is not
      shown again under `by` and nothing depends on when the sweep runs; but for
      `keep_session`, the sign-in session of the member accepting `by`'s invitation, so
      accepting it does not sign them out;
    - the others are superseded, when `by` is in force itself (never by one already at its
      end: they stay in force); the scopes they covered that `by` does not end here
      (`end_scopes`), for the person `by` is bound to."""
    patient = db.session.get(User, by.patient_id)
    # A consent not in force itself (already at its end, or closed) replaces nothing: the
    # open ones stay as they are, each in force until its own end.
    in_force = access.is_active(by, patient, now)
    superseded = []
    # Locked first; one another transaction closed meanwhile (a revocation, the sweep) has
    # had every effect of its end there, and is left as it is. Those left are open, so one
    # no longer active has reached its end by the clock.
    for old in records.still_open(previous):
        if not access.is_active(old, patient, now):
            end_family_access(
                old, ClosureReason.EXPIRED, actor=None, now=now, keep_session=keep_session
            )
        elif in_force:
            records.supersede(old, by, now=now, actor=actor)
            superseded.append(old)
    dropped = access.scopes_dropped(superseded, by)
    if dropped and by.recipient_user_id is not None:
        end_scopes(by, dropped, actor=actor, now=now)


#: Why an email is cancelled when the consent in force no longer covers what it needs (the
#: member's access goes on): not "consent ended", which is ending access's.
SCOPE_DROPPED = "consent no longer covers this"


def end_scopes(consent: ConsentRecord, dropped: list[Scope], *, actor, now: datetime) -> None:
    """What ending access does, for the scopes a renewal (`consent`, in force for its person)
    no longer covers: off future sessions and waitlists without `scheduling`, their unsent
    email needing a dropped scope cancelled (SCOPE_DROPPED), one audit row, and the
    therapist told (how many emails were cancelled among it). Their other access goes on."""
    member_id, patient = consent.recipient_user_id, db.session.get(User, consent.patient_id)
    left = 0
    if Scope.SCHEDULING in dropped:
        left = leave_sessions(member_id, patient.id, now=now, reason="scheduling not in consent")
    if Scope.PROGRESS in dropped:
        progress_updates.withdraw_releases(
            family_user_id=member_id, patient_id=patient.id, now=now, reason=SCOPE_DROPPED
        )
    cancelled = mail.cancel_pending(
        patient_id=patient.id, to_user_ids=[member_id], scopes=dropped, reason=SCOPE_DROPPED
    )
    audit.record_about(
        "consent.scopes_ended",
        consent,
        actor=actor,
        recipient_id=member_id,
        detail={
            "scopes": [str(scope) for scope in dropped],
            "cancelled_emails": cancelled,
            "sessions": left,
        },
        now=now,
    )
    _tell_therapist(
        "family_access_narrowed_therapist",
        f"consent_narrowed_therapist:{consent.id}",
        consent,
        patient,
        actor=actor,
        now=now,
        dropped=dropped,
        cancelled=cancelled,
    )


def _tell_therapist(kind: str, dedupe_key: str, consent, patient: User, *, actor, now, **more):
    """Tell the patient's therapist (if they have one) about a family contact's consent."""
    therapist = db.session.get(User, patient.therapist_id) if patient.therapist_id else None
    if therapist is None:
        return
    mail.queue_email(
        kind,
        to=therapist,
        dedupe_key=dedupe_key,
        now=now,
        actor=actor,
        patient_id=patient.id,
        required_scope=access.IN_CARE,
        context={
            "patient_first_name": patient.first_name,
            "consent": consent,
            "link": mail.external_url("therapist.family_contacts", patient_id=patient.id),
            **more,
        },
    )


def _tell_people(
    consent,
    patient: User,
    member_id: int | None,
    reason: str,
    actor,
    now,
    *,
    cancelled: int,
    left: int,
) -> None:
    # The therapist is told how many future sessions the member was taken off and how many
    # emails were cancelled (none: nothing is said of them).
    _tell_therapist(
        "family_access_ended_therapist",
        f"consent_ended_therapist:{consent.id}",
        consent,
        patient,
        actor=actor,
        now=now,
        reason=reason,
        cancelled=cancelled,
        sessions=left,
    )
    if reason == ClosureReason.EXPIRED:  # it ended by the clock: the patient may not expect it
        mail.queue_email(
            "family_access_ended_patient",
            to=patient,
            dedupe_key=f"family_access_ended_patient:{consent.id}",
            now=now,
            actor=actor,
            patient_id=patient.id,
            required_scope=access.IN_CARE,
            context={
                "consent": consent,
                # Its own end (known: it ended by the clock), not the sweep's time.
                "ended_at": access.consent_end(consent, patient),
                "link": mail.external_url("patient.shared"),
            },
        )
    family_user = db.session.get(User, member_id) if member_id else None
    if family_user is None or consent.recipient_user_id is None:
        # Never accepted: whoever holds the address had no access to lose, and an email
        # would tell them a patient of this program once named them.
        return
    # Neutral, and not tied to the patient, so the cancellation above does not stop it.
    mail.queue_email(
        "family_access_ended",
        to=family_user,
        dedupe_key=f"family_access_ended:{consent.id}",
        now=now,
        actor=actor,
        context={"recipient_name": consent.recipient_name},
    )


def revoke_consent(
    actor: User,
    consent_id: int,
    *,
    now: datetime,
    method: str = "portal",
    note: str | None = None,
) -> ConsentRecord:
    """End a consent at once: the patient in the portal, or their therapist from writing.

    NotFound for anyone else's consent; Conflict when it has already ended, also when
    another revocation (or the sweep) closed it while this one waited for its lock: the
    same answer as a second revocation made afterwards, with nothing done twice.
    """
    consent = access.consent_record(actor, consent_id, now=now, what=None)
    patient = db.session.get(User, consent.patient_id)
    if not access.is_active(consent, patient, now):
        raise Conflict(records.ALREADY_ENDED)
    note = (note or "").strip() or None
    if note and len(note) > 1000:
        raise ValidationError(_("Use at most %(count)s characters.", count=1000), field="note")
    end_family_access(
        consent, ClosureReason.REVOKED, actor=actor, now=now, method=method, note=note
    )
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
    statuses = [
        (consent, patient, access.status_of(consent, patient, now)) for consent, patient in rows
    ]
    # Locked all at once; one a revocation closed while this waited is not closed again.
    due = records.still_open([c for c, _, status in statuses if status == "expired"])
    due_ids = {consent.id for consent in due}
    for consent, patient, status in statuses:
        if status == "expired":
            if consent.id in due_ids:
                end_family_access(consent, ClosureReason.EXPIRED, actor=None, now=now)
                report.expired += 1
        elif status == "expiring":
            queued = mail.queue_email(
                "consent_expiring",
                to=patient,
                dedupe_key=f"consent_expiring:{consent.id}",
                now=now,
                patient_id=patient.id,
                required_scope=access.IN_CARE,
                context={
                    "consent": consent,
                    "ends_at": access.consent_end(consent, patient),
                    "link": mail.external_url("patient.consents"),
                },
            )
            report.reminded += queued is not None
    return report
