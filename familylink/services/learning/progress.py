"""Progress on readings: the family member's side (assigned readings, opening, saving progress
and reflections) and the therapist's side (what each consented family member has read).

A family member's reflection is private to them unless they choose to share it; showing
readings or progress about a patient is a disclosure and is audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from familylink.extensions import db
from familylink.models import Assignment, LearningModule, ModuleProgress, Role, User
from familylink.services import access, audit
from familylink.services.errors import NotFound, ValidationError
from familylink.services.learning.assignments import consented_family

# ---------------------------------------------------------------------------------------------
# The family member's side


@dataclass
class AssignedReading:
    module: LearningModule
    patient_first_name: str
    note: str | None
    released_at: datetime


def assigned_to(member: User, *, now: datetime) -> list[AssignedReading]:
    """Released readings for this family member, only about patients whose consent is active
    now; showing them is a disclosure, so each patient's is audited."""
    readings = []
    for patient, _consent in access.linked_patients(member, now=now):
        rows = db.session.scalars(
            select(Assignment)
            .where(
                Assignment.family_user_id == member.id,
                Assignment.patient_id == patient.id,
                Assignment.released_at.is_not(None),
                Assignment.stopped_at.is_(None),
            )
            .order_by(Assignment.released_at.desc(), Assignment.id)
        ).all()
        rows = [a for a in rows if a.module.published]
        if not rows:
            continue
        audit.record(
            "disclosure.viewed",
            actor=member,
            patient_id=patient.id,
            recipient_id=member.id,
            detail={"what": "reading assignments"},
            now=now,
        )
        readings.extend(
            AssignedReading(a.module, patient.first_name, a.note, a.released_at) for a in rows
        )
    return readings


def progress_for(member: User, module: LearningModule) -> ModuleProgress | None:
    return db.session.scalar(
        select(ModuleProgress).where(
            ModuleProgress.family_user_id == member.id, ModuleProgress.module_id == module.id
        )
    )


def _progress(member: User, module: LearningModule, now: datetime) -> ModuleProgress:
    if member.role != Role.FAMILY:
        raise NotFound()
    progress = progress_for(member, module)
    if progress is None:
        # Two tabs opening the same reading at once: the second finds the first one's row.
        try:
            with db.session.begin_nested():
                progress = ModuleProgress(
                    family_user_id=member.id, module_id=module.id, updated_at=now
                )
                db.session.add(progress)
        except IntegrityError:
            progress = progress_for(member, module)
    return progress


def _linked_patient_ids(member: User, module: LearningModule, now: datetime) -> list[int]:
    """Patients this reading is assigned about (consent active): progress on it is theirs too."""
    ids = db.session.scalars(
        select(Assignment.patient_id).where(
            Assignment.family_user_id == member.id,
            Assignment.module_id == module.id,
            Assignment.released_at.is_not(None),
        )
    ).all()
    return [
        pid for pid in ids if access.may_disclose(member.id, pid, None, now=now, audit_access=False)
    ]


def open_module(member: User, module: LearningModule, *, now: datetime) -> ModuleProgress:
    """Note the first time a family member opens a module."""
    progress = _progress(member, module, now)
    if progress.opened_at is None:
        progress.opened_at = now
        progress.updated_at = now
        db.session.flush()
        for patient_id in _linked_patient_ids(member, module, now):
            audit.record(
                "learning.opened",
                actor=member,
                obj=progress,
                patient_id=patient_id,
                detail={"module": module.slug},
                now=now,
            )
    return progress


MAX_REFLECTION = 5000


def save_progress(
    member: User,
    module: LearningModule,
    *,
    completed: bool,
    reflection: str | None,
    share: bool,
    now: datetime,
) -> ModuleProgress:
    """Mark done (or not yet) and keep the private reflection; `share` lets the therapist
    of a linked patient read it. Raises ValidationError for an over-long reflection."""
    reflection = (reflection or "").strip()
    if len(reflection) > MAX_REFLECTION:
        raise ValidationError(f"Use at most {MAX_REFLECTION} characters.", field="reflection")
    progress = _progress(member, module, now)
    progress.opened_at = progress.opened_at or now
    if completed and progress.completed_at is None:
        progress.completed_at = now
    elif not completed:
        progress.completed_at = None
    progress.reflection = reflection or None
    progress.reflection_shared = bool(share and reflection)
    progress.updated_at = now
    db.session.flush()
    for patient_id in _linked_patient_ids(member, module, now):
        audit.record(
            "learning.progress_saved",
            actor=member,
            obj=progress,
            patient_id=patient_id,
            # Never the reflection itself: the log is read by staff.
            detail={"completed": completed, "shared": progress.reflection_shared},
            now=now,
        )
    return progress


# ---------------------------------------------------------------------------------------------
# The therapist's side


@dataclass
class ReadingRow:
    module: LearningModule
    assignment: Assignment | None
    opened_at: datetime | None
    completed_at: datetime | None
    # Only when the family member chose to share it; None otherwise, whatever they wrote.
    shared_reflection: str | None


@dataclass
class FamilyProgress:
    member: User
    rows: list[ReadingRow]


def family_progress(therapist: User, patient_id: int, *, now: datetime) -> list[FamilyProgress]:
    """For each consented family member of the therapist's own patient: what was assigned,
    released, opened and completed, plus reflections they chose to share. Audited."""
    patient = access.therapist_patient(therapist, patient_id, now=now, what=None)
    result = []
    for member in consented_family(patient, now=now):
        assignments = db.session.scalars(
            select(Assignment)
            .where(Assignment.family_user_id == member.id, Assignment.patient_id == patient.id)
            .order_by(Assignment.release_at, Assignment.id)
        ).all()
        progress = {
            p.module_id: p
            for p in db.session.scalars(
                select(ModuleProgress).where(ModuleProgress.family_user_id == member.id)
            )
        }
        rows = []
        assigned_ids = set()
        for assignment in assignments:
            assigned_ids.add(assignment.module_id)
            p = progress.get(assignment.module_id)
            rows.append(_row(assignment.module, assignment, p))
        # A reflection shared about a module they chose themselves is shown too.
        for module_id, p in progress.items():
            if module_id not in assigned_ids and p.reflection_shared and p.reflection:
                rows.append(_row(p.module, None, p))
        result.append(FamilyProgress(member, rows))
    audit.record(
        "learning.progress_viewed",
        actor=therapist,
        patient_id=patient.id,
        detail={"family_members": len(result)},
        now=now,
    )
    return result


def _row(module, assignment, progress) -> ReadingRow:
    shared = progress.reflection if progress and progress.reflection_shared else None
    return ReadingRow(
        module=module,
        assignment=assignment,
        opened_at=progress.opened_at if progress else None,
        completed_at=progress.completed_at if progress else None,
        shared_reflection=shared,
    )
