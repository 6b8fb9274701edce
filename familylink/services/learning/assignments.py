"""Assigning modules, the weekly sequence, releasing what is due, stopping what is not.

When a family member's access about the patient ends, their unreleased readings stop
(`stop_assignments`) and the released ones are withdrawn (`withdraw_released`): both are
then stopped rows, which no page shows them and no release sends again; a later consent
shows only readings released under it, and assigning the module again starts the row
afresh (new note, date and email).

Assignments are patient-linked data: a therapist may assign only to a family member who holds
an active consent from one of the therapist's own patients (asked of `access`, the gate), and
every assignment, release and stop is audited.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import NamedTuple

from flask_babel import gettext as _
from sqlalchemy import and_, select

from familylink.extensions import db
from familylink.models import (
    Assignment,
    AssignmentSource,
    FamilyLink,
    LearningModule,
    ToolKind,
    User,
)
from familylink.services import access, audit, mail
from familylink.services.errors import NotFound, ValidationError
from familylink.services.learning import withdrawal
from familylink.services.learning.content import all_modules

WEEK = timedelta(days=7)

# ---------------------------------------------------------------------------------------------
# Who a therapist may assign to


def consented_family(patient: User, *, now: datetime) -> list[User]:
    """Family members of the patient whose consent from the patient is active now."""
    return access.family_with_scope(patient, None, now=now)


def _targets(
    patient: User, family_user_id: int | None, *, now: datetime, family: list[User] | None
) -> list[User]:
    """One consented family member, or all of them (None); NotFound for anyone else.
    `family`: the consented family as the gate already answered it (read when None)."""
    if family is None:
        family = consented_family(patient, now=now)
    if family_user_id is None:
        if not family:
            raise ValidationError(
                _("No family member has an active consent from this patient yet."), field="family"
            )
        return family
    chosen = [m for m in family if m.id == family_user_id]
    if not chosen:
        raise NotFound()
    return chosen


# ---------------------------------------------------------------------------------------------
# Assignment and release


def _assign_one(
    module: LearningModule,
    member: User,
    patient: User,
    *,
    therapist: User,
    note: str | None,
    release_at: datetime,
    source: str,
    now: datetime,
    tool: str | None = None,
) -> Assignment | None:
    """A new assignment, or None when that member already has this module for this patient
    (released or due). A stopped one (their access ended: unreleased, or withdrawn after its
    release) starts afresh: the new note, dates and source, released and emailed anew."""
    existing = db.session.scalar(
        select(Assignment).where(
            Assignment.module_id == module.id,
            Assignment.family_user_id == member.id,
            Assignment.patient_id == patient.id,
        )
    )
    if existing is not None and existing.stopped_at is None:
        return None
    if existing is not None:
        # Access ended once and was given again: the assignment starts afresh.
        assignment = existing
        assignment.stopped_at = None
        assignment.released_at = None
    else:
        assignment = Assignment(
            module_id=module.id, family_user_id=member.id, patient_id=patient.id
        )
        db.session.add(assignment)
    assignment.assigned_by_id = therapist.id
    assignment.note = note
    assignment.release_at = release_at
    assignment.source = source
    assignment.tool = tool
    assignment.created_at = now
    db.session.flush()
    audit.record_about(
        "learning.assigned",
        assignment,
        actor=therapist,
        recipient_id=member.id,
        detail={"module": module.slug, "source": source},
        now=now,
    )
    return assignment


def assign_modules(
    *,
    therapist: User,
    patient_id: int,
    family_user_id: int | None,
    module_ids: list[int],
    note: str | None,
    now: datetime,
    tool: str | None = None,
    opened: access.PatientAccess | None = None,
    family: list[User] | None = None,
) -> list[Assignment]:
    """Assign modules now to one consented family member (or all: None) of the therapist's
    own patient, with a practice tool to try alongside (`tool`, a ToolKind value, or None).
    Raises NotFound for anyone else, ValidationError for an empty choice or an unknown tool.
    Modules already assigned to that person are skipped; released ones are emailed.
    `opened`: the page's gate answer (`access.therapist_patient`), not asked again;
    `family`: the family of `access.reading_family`'s answer for this patient in the same
    request (its family members with a consent in force), not read again."""
    patient = access.therapist_patient(therapist, patient_id, now=now, what=None, opened=opened)
    members = _targets(patient, family_user_id, now=now, family=family)
    if not module_ids:
        raise ValidationError(_("Choose at least one module."), field="modules")
    if tool is not None and tool not in set(ToolKind):
        raise ValidationError(_("Choose a tool from the list, or none."), field="tool")
    modules = []
    for module_id in module_ids:
        module = db.session.get(LearningModule, module_id)
        if module is None or not module.published:
            raise NotFound()
        modules.append(module)
    note = (note or "").strip() or None
    made = []
    for member in members:
        for module in modules:
            assignment = _assign_one(
                module,
                member,
                patient,
                therapist=therapist,
                note=note,
                release_at=now,
                source=AssignmentSource.MANUAL,
                now=now,
                tool=tool,
            )
            if assignment is not None:
                made.append(assignment)
    release_due(now=now)
    return made


def sequence_start(linked_at: datetime, now: datetime) -> datetime:
    """When a default sequence starts: the link date, unless that is a week or more ago —
    then today, so a family member is not sent a pile of readings at once."""
    return linked_at if now - linked_at < WEEK else now


def apply_sequence(
    *,
    therapist: User,
    patient_id: int,
    family_user_id: int | None,
    now: datetime,
    opened: access.PatientAccess | None = None,
    family: list[User] | None = None,
) -> list[Assignment]:
    """The program's default sequence: every published module in reading order, one a week
    from the link date. Same access rules (and `opened`, `family`) as `assign_modules`."""
    patient = access.therapist_patient(therapist, patient_id, now=now, what=None, opened=opened)
    members = _targets(patient, family_user_id, now=now, family=family)
    modules = [m for m in all_modules() if m.published]
    made = []
    for member in members:
        link = db.session.scalar(
            select(FamilyLink).where(
                FamilyLink.patient_id == patient.id, FamilyLink.family_user_id == member.id
            )
        )
        start = sequence_start(link.linked_at, now)
        for index, module in enumerate(modules):
            assignment = _assign_one(
                module,
                member,
                patient,
                therapist=therapist,
                note=None,
                release_at=start + index * WEEK,
                source=AssignmentSource.SEQUENCE,
                now=now,
            )
            if assignment is not None:
                made.append(assignment)
    release_due(now=now)
    return made


class ReleaseReport(NamedTuple):
    released: list[Assignment]
    stopped: int


def release_due(now: datetime) -> ReleaseReport:
    """Release every assignment whose time has come and email the family member once.

    An assignment whose consent is no longer active is stopped instead (ending the consent
    normally does that first) by `stop_assignments`, with the pair's later ones. One whose
    module is unpublished waits until it is published again: its email would point at
    nothing. Also the hook the mail worker runs before each pass, and `flask learn release`.
    Flushes; the caller commits.
    """
    due = db.session.scalars(
        select(Assignment)
        .join(LearningModule, LearningModule.id == Assignment.module_id)
        .where(
            LearningModule.published,
            Assignment.released_at.is_(None),
            Assignment.stopped_at.is_(None),
            Assignment.release_at <= now,
        )
        .order_by(Assignment.release_at, Assignment.id)
    ).all()
    released, refused = [], set()
    for assignment in due:
        if not access.may_disclose(
            assignment.family_user_id, assignment.patient_id, None, now=now, audit_access=False
        ):
            refused.add((assignment.family_user_id, assignment.patient_id))
            continue
        assignment.released_at = now
        member = db.session.get(User, assignment.family_user_id)
        mail.queue_email(
            "module_assigned",
            to=member,
            dedupe_key=f"module_assigned:{assignment.id}:{assignment.release_at.isoformat()}",
            now=now,
            context={"link": mail.external_url("learn.library")},
            patient_id=assignment.patient_id,
        )
        audit.record_about("learning.released", assignment, recipient_id=member.id, now=now)
        released.append(assignment)
    # As ending the consent would have: every unreleased reading of the pair stops.
    stopped = sum(
        stop_assignments(family_user_id=member_id, patient_id=patient_id, now=now)
        for member_id, patient_id in sorted(refused)
    )
    db.session.flush()
    return ReleaseReport(released, stopped)


def stop_assignments(*, family_user_id: int, patient_id: int, now: datetime) -> int:
    """Stop every unreleased assignment for that family member about that patient."""
    return withdrawal.withdraw_pair(
        Assignment,
        and_(Assignment.released_at.is_(None), Assignment.stopped_at.is_(None)),
        {"stopped_at": now},
        "learning.stopped",
        counted_as="assignments",
        family_user_id=family_user_id,
        patient_id=patient_id,
        now=now,
    )


def withdraw_released(*, family_user_id: int, patient_id: int, now: datetime) -> int:
    """The member's access about the patient ended (`consent.end_family_access`): the
    readings released to them about that patient are withdrawn (stopped: no page shows them
    again, whatever consent comes later; only readings released under it). Returns how
    many; one audit row counts them (the patient's log says how many, never which). The
    therapist's page still says each was shared then, and that it is no longer shown."""
    return withdrawal.withdraw_pair(
        Assignment,
        and_(Assignment.released_at.is_not(None), Assignment.stopped_at.is_(None)),
        {"stopped_at": now},
        "learning.withdrawn",
        counted_as="readings",
        family_user_id=family_user_id,
        patient_id=patient_id,
        now=now,
        reason="consent ended",
    )
