"""Progress on readings: the family member's side (assigned readings, opening, saving progress
and reflections) and the therapist's side (what each consented family member has read).

Progress belongs to (family member, patient, module). A reading opened from an assignment is
about that assignment's patient; a reading opened from the library is the member's own and
reaches nobody, unless they choose one of their patients when sharing, which makes it a
reading about that patient. A reflection is private unless shared, and then only with the
therapist of the patient it is about, while that patient's consent is in force (the gate:
`access.reading_patients`, `reading_patient`, `reading_family`). Showing readings or progress
about a patient is a disclosure and is audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import partial

from flask_babel import gettext as _
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import lazyload

from familylink.extensions import db
from familylink.models import Assignment, LearningModule, ModuleProgress, Role, ToolKind, User
from familylink.services import access, audit
from familylink.services.errors import NotFound, ValidationError
from familylink.services.learning import withdrawal
from familylink.services.learning.library import ModulePage

# ---------------------------------------------------------------------------------------------
# The family member's side


@dataclass
class AssignedReading:
    module: LearningModule
    patient_id: int
    patient_first_name: str
    note: str | None
    released_at: datetime
    # A practice tool the therapist suggested trying with it, or None.
    tool: ToolKind | None = None


def assigned_to(member: User, *, now: datetime) -> list[AssignedReading]:
    """Released readings for this family member, only about patients whose consent is active
    now, newest first; showing them is a disclosure, so the gate audits each patient's. One
    query for the readings however many patients."""
    patients, rows = access.family_records(
        member, partial(_released_to, member), now=now, what="reading assignments"
    )
    return [
        AssignedReading(
            a.module,
            a.patient_id,
            patients[a.patient_id].first_name,
            a.note,
            a.released_at,
            ToolKind(a.tool) if a.tool else None,
        )
        for a in rows
    ]


def _released_to(member: User, patient_ids: list[int]) -> list[Assignment]:
    rows = db.session.scalars(
        select(Assignment)
        .where(
            Assignment.family_user_id == member.id,
            Assignment.patient_id.in_(patient_ids),
            Assignment.released_at.is_not(None),
            Assignment.stopped_at.is_(None),
        )
        .order_by(Assignment.released_at.desc(), Assignment.id)
    ).all()
    return [a for a in rows if a.module.published]


@dataclass
class Reading:
    """A family member's notes on a module page: their progress, the patient it is about
    (None: a reading of their own), and the patients whose therapist they may share the
    reflection with (only that patient, for a reading about one)."""

    progress: ModuleProgress | None
    patient: User | None
    share_choices: list[User]


# Every module page reads it: built once (one for a reading about a patient, one for the
# member's own), the ids as parameters. The caller holds the module already (the page's
# text, `module_page`, or the model): not joined again (its text and lists read twice).
_OWN_PROGRESS = (
    select(ModuleProgress)
    .options(lazyload(ModuleProgress.module))
    .where(
        ModuleProgress.family_user_id == bindparam("member"),
        ModuleProgress.module_id == bindparam("module"),
        # Notes withdrawn when an earlier access about the patient ended are no reading
        # about them now (`withdraw_readings`).
        ModuleProgress.withdrawn_at.is_(None),
    )
)
_PROGRESS_ABOUT = {
    False: _OWN_PROGRESS.where(ModuleProgress.patient_id == bindparam("patient")),
    True: _OWN_PROGRESS.where(ModuleProgress.patient_id.is_(None)),
}


def progress_for(
    member: User, module: LearningModule | ModulePage, patient_id: int | None
) -> ModuleProgress | None:
    """The member's progress on the module about that patient (None: their own reading)."""
    parameters = {"member": member.id, "module": module.id}
    if patient_id is not None:
        parameters["patient"] = patient_id
    return db.session.scalar(_PROGRESS_ABOUT[patient_id is None], parameters)


def _progress(
    member: User, module: LearningModule | ModulePage, patient: User | None, now: datetime
) -> ModuleProgress:
    patient_id = patient.id if patient is not None else None
    progress = progress_for(member, module, patient_id)
    if progress is None:
        # Two tabs opening the same reading at once: the second finds the first one's row.
        # The page's held audit rows first: on SQLite their INSERT opens the request's
        # transaction, else the savepoint would be it and its release would commit early.
        audit.write_held()
        try:
            with db.session.begin_nested():
                progress = ModuleProgress(
                    family_user_id=member.id,
                    patient_id=patient_id,
                    module_id=module.id,
                    updated_at=now,
                )
                db.session.add(progress)
        except IntegrityError:
            progress = progress_for(member, module, patient_id)
    return progress


def _about(member: User, patient_id: int | None, now: datetime) -> User | None:
    """The patient a reading is about (one whose consent is in force, else NotFound), or None
    for the member's own reading. Only family members keep readings."""
    if member.role != Role.FAMILY:
        raise NotFound()
    if patient_id is None:
        return None
    return access.reading_patient(member, patient_id, now=now, what="reading")


def _choices(member: User, patient: User | None, now: datetime, what: str | None) -> list[User]:
    """Whose therapist may read the reflection: that reading's patient, or (a reading of
    one's own) any patient whose consent to the member is in force."""
    if patient is not None:
        return [patient]
    return access.reading_patients(member, now=now, what=what)


def reading(
    member: User,
    module: LearningModule | ModulePage,
    *,
    patient_id: int | None = None,
    now: datetime,
) -> Reading:
    """The module page's notes as they stand, changing nothing (progress may be None)."""
    patient = _about(member, patient_id, now)
    progress = progress_for(member, module, patient.id if patient is not None else None)
    return Reading(progress, patient, _choices(member, patient, now, "reading share choices"))


def open_module(
    member: User,
    module: LearningModule | ModulePage,
    *,
    patient_id: int | None = None,
    now: datetime,
) -> Reading:
    """Note the first time a family member opens a module (about `patient_id`, from its
    assignment, or on their own), and say whom they may share a reflection with."""
    patient = _about(member, patient_id, now)
    progress = _progress(member, module, patient, now)
    if progress.opened_at is None:
        progress.opened_at = now
        progress.updated_at = now
        db.session.flush()
        _audit(member, progress, "learning.opened", patient, {"module": module.slug}, now=now)
    return Reading(progress, patient, _choices(member, patient, now, "reading share choices"))


MAX_REFLECTION = 5000


def _shared_with(
    member: User, patient: User | None, share_with: int | None, now: datetime
) -> User | None:
    """The patient whose therapist may read the reflection: one of the choices the page
    offered (that reading's patient, or any patient whose consent is in force), or None."""
    if share_with is None:
        return None
    choices = _choices(member, patient, now, None)
    chosen = next((p for p in choices if p.id == share_with), None)
    if chosen is None:
        raise ValidationError(_("Choose a therapist from the list, or nobody."), field="share")
    return chosen


def _earliest(*times: datetime | None) -> datetime | None:
    return min((t for t in times if t), default=None)


def _move_own_notes(
    member: User, module: LearningModule | ModulePage, progress: ModuleProgress
) -> None:
    """Sharing a reading of one's own makes it the reading about the chosen patient
    (`progress`): the member's own row goes, keeping when it was first opened and finished."""
    own = progress_for(member, module, None)
    if own is not None:
        progress.opened_at = _earliest(own.opened_at, progress.opened_at)
        progress.completed_at = _earliest(own.completed_at, progress.completed_at)
        db.session.delete(own)


def save_progress(
    member: User,
    module: LearningModule | ModulePage,
    *,
    patient_id: int | None = None,
    completed: bool,
    reflection: str | None,
    share_with: int | None,
    now: datetime,
) -> ModuleProgress:
    """Mark done (or not yet) and keep the private reflection of the reading about
    `patient_id` (None: the member's own). `share_with` (a patient id, or None for nobody)
    lets that patient's therapist read it; sharing a reading of one's own makes it a reading
    about the chosen patient (the notes move there). Raises ValidationError for an over-long
    reflection or a choice that was not offered."""
    reflection = (reflection or "").strip()
    if len(reflection) > MAX_REFLECTION:
        raise ValidationError(
            _("Use at most %(count)s characters.", count=MAX_REFLECTION), field="reflection"
        )
    patient = _about(member, patient_id, now)
    shared_with = _shared_with(member, patient, share_with, now)
    about = shared_with or patient
    progress = _progress(member, module, about, now)
    if patient is None and shared_with is not None:
        _move_own_notes(member, module, progress)
    progress.opened_at = progress.opened_at or now
    if completed and progress.completed_at is None:
        progress.completed_at = now
    elif not completed:
        progress.completed_at = None
    progress.reflection = reflection or None
    progress.reflection_shared = bool(shared_with and reflection)
    progress.updated_at = now
    db.session.flush()
    # Never the reflection itself: the log is read by staff.
    detail = {"completed": completed, "shared": progress.reflection_shared}
    _audit(member, progress, "learning.progress_saved", about, detail, now=now)
    return progress


def _audit(
    member: User, progress: ModuleProgress, action: str, patient: User | None, detail, *, now
) -> None:
    """A family member's reading about a patient is audited with that patient; a reading
    of their own (no patient) concerns no patient data and is not."""
    if patient is not None:
        audit.record(
            action, actor=member, obj=progress, patient_id=patient.id, detail=detail, now=now
        )


def unshare_reflections(*, family_user_id: int, patient_id: int, now: datetime) -> int:
    """Access ended: the member's reflections about that patient shared with its therapist
    become private again (a later consent shows none until the member shares again);
    returns how many. The reflections themselves stay the member's."""
    return withdrawal.withdraw_pair(
        ModuleProgress,
        ModuleProgress.reflection_shared.is_(True),
        {"reflection_shared": False},
        "learning.reflections_unshared",
        counted_as="reflections",
        family_user_id=family_user_id,
        patient_id=patient_id,
        now=now,
        reason="consent ended",
    )


def withdraw_readings(*, family_user_id: int, patient_id: int, now: datetime) -> int:
    """Access ended: the member's notes on readings about that patient (opened, finished,
    reflection) are kept but withdrawn: no page shows them again (not the module page, not
    the therapist's, not the member's own), whatever consent comes later (a reading under
    it starts a new row). Returns how many; one audit row."""
    return withdrawal.withdraw_pair(
        ModuleProgress,
        ModuleProgress.withdrawn_at.is_(None),
        {"withdrawn_at": now},
        "learning.notes_withdrawn",
        counted_as="readings",
        family_user_id=family_user_id,
        patient_id=patient_id,
        now=now,
        reason="consent ended",
    )


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
    released, opened and completed about this patient, plus reflections they chose to share
    with this patient's therapist. Readings about another patient, or of their own, are not
    shown. Two queries however many members and readings. Audited."""
    patient, family = access.reading_family(therapist, patient_id, now=now)
    return progress_of(therapist, patient, family, now=now)


def progress_of(
    therapist: User, patient: User, family: list[User], *, now: datetime
) -> list[FamilyProgress]:
    """`family_progress` for a patient and family the gate has just allowed (what
    `access.reading_family` returned), so a page showing more than progress asks it once."""
    # This row records the whole Family reading page: progress and shared practice tools.
    audit.record(
        "learning.progress_viewed",
        actor=therapist,
        patient_id=patient.id,
        detail={"family_members": len(family)},
        now=now,
    )
    member_ids = [m.id for m in family]
    assignments = db.session.scalars(
        select(Assignment)
        .where(Assignment.patient_id == patient.id, Assignment.family_user_id.in_(member_ids))
        .order_by(Assignment.release_at, Assignment.id)
    ).all()
    progress = {
        (p.family_user_id, p.module_id): p
        for p in db.session.scalars(
            select(ModuleProgress)
            .where(
                ModuleProgress.patient_id == patient.id,
                ModuleProgress.family_user_id.in_(member_ids),
                # Notes from an access that ended are no longer shown against its readings.
                ModuleProgress.withdrawn_at.is_(None),
            )
            .order_by(ModuleProgress.id)
        )
    }
    rows: dict[int, list[ReadingRow]] = {m.id: [] for m in family}
    assigned = set()
    for assignment in assignments:
        key = (assignment.family_user_id, assignment.module_id)
        assigned.add(key)
        rows[assignment.family_user_id].append(
            _row(assignment.module, assignment, progress.get(key))
        )
    # A reflection shared about a module they chose themselves is shown too.
    for key, p in progress.items():
        if key not in assigned and p.reflection_shared and p.reflection:
            rows[p.family_user_id].append(_row(p.module, None, p))
    return [FamilyProgress(member, rows[member.id]) for member in family]


def _row(module, assignment, progress) -> ReadingRow:
    shared = progress.reflection if progress and progress.reflection_shared else None
    return ReadingRow(
        module=module,
        assignment=assignment,
        opened_at=progress.opened_at if progress else None,
        completed_at=progress.completed_at if progress else None,
        shared_reflection=shared,
    )
