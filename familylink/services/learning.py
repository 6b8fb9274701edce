"""Learning modules: loading and editing the texts, assigning them, releasing them, progress.

Texts are Markdown rendered with markdown-it-py and cleaned by nh3 against an allowlist when
they are saved; pages only ever show that cleaned HTML. Assignments are patient-linked data:
a therapist may assign only to a family member who holds an active consent from one of the
therapist's own patients, and every assignment, release and view of progress is audited.
A family member's reflection is private to them unless they choose to share it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import nh3
import yaml
from markdown_it import MarkdownIt
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError

from familylink.extensions import db
from familylink.models import (
    Assignment,
    AssignmentSource,
    FamilyLink,
    LearningModule,
    ModuleProgress,
    ModuleVersion,
    Role,
    User,
    VersionSource,
)
from familylink.services import audit, consent, mail
from familylink.services.errors import NotFound, ValidationError

CONTENT_DIR = Path(__file__).resolve().parent.parent / "content"
WEEK = timedelta(days=7)

# ---------------------------------------------------------------------------------------------
# Rendering and sanitizing

ALLOWED_TAGS = {
    "p", "h2", "h3", "h4", "ul", "ol", "li", "strong", "em", "a", "blockquote",
    "code", "pre", "hr", "br", "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "th": {"align"}, "td": {"align"}}
ALLOWED_URL_SCHEMES = {"http", "https", "mailto", "tel"}

_markdown = MarkdownIt("commonmark", {"html": True, "linkify": False}).enable("table")


def render_markdown(text: str) -> str:
    """Markdown to HTML that is safe to put on a page (allowlisted tags, attributes, schemes).

    Raw HTML in the Markdown is parsed, then nh3 drops every tag, attribute and URL scheme
    not on the allowlist: no scripts, no event handlers, no javascript: links.
    """
    html = _markdown.render(text or "")
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=ALLOWED_URL_SCHEMES,
        link_rel="noopener noreferrer",
        strip_comments=True,
    )


# ---------------------------------------------------------------------------------------------
# Content files

REQUIRED_FIELDS = (
    "slug", "title", "summary", "topic", "order", "reading_minutes",
    "key_points", "reflection", "exercise", "sources",
)  # fmt: skip
_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*\n(.*)\Z", re.DOTALL)


@dataclass
class ModuleText:
    """Every part of a module's text, as a content file or an admin edit gives it."""

    slug: str
    title: str
    summary: str
    topic: str
    order: int
    reading_minutes: int
    key_points: list[str]
    reflection: str
    exercise: str
    sources: list[str]
    body_markdown: str
    published: bool = True
    file_hash: str | None = field(default=None, compare=False)


def parse_module_file(path: Path) -> ModuleText:
    """Read one content file (YAML front matter, then Markdown); raises ValidationError."""
    raw = path.read_text(encoding="utf-8")
    match = _FRONT_MATTER.match(raw)
    if not match:
        raise ValidationError(f"{path.name}: no front matter between '---' lines")
    try:
        meta = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError as error:
        raise ValidationError(f"{path.name}: front matter is not valid YAML ({error})")
    missing = [name for name in REQUIRED_FIELDS if meta.get(name) in (None, "", [])]
    if missing:
        raise ValidationError(f"{path.name}: missing {', '.join(missing)}")
    text = ModuleText(
        slug=str(meta["slug"]),
        title=str(meta["title"]),
        summary=str(meta["summary"]),
        topic=str(meta["topic"]),
        order=int(meta["order"]),
        reading_minutes=int(meta["reading_minutes"]),
        key_points=[str(p) for p in meta["key_points"]],
        reflection=str(meta["reflection"]),
        exercise=str(meta["exercise"]),
        sources=[str(s) for s in meta["sources"]],
        body_markdown=match.group(2).strip() + "\n",
        published=bool(meta.get("published", True)),
        file_hash=hashlib.sha256(raw.encode("utf-8")).hexdigest(),
    )
    check_module_text(text)
    return text


def content_files(directory: Path = CONTENT_DIR) -> list[Path]:
    return sorted(directory.glob("*.md"))


def check_module_text(text: ModuleText) -> None:
    """The rules every module text follows, whoever wrote it; raises ValidationError(field)."""
    if not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", text.slug or ""):
        raise ValidationError("Use lower-case letters, digits and hyphens.", field="slug")
    for name, limit in (("title", 200), ("summary", 500), ("topic", 80)):
        value = (getattr(text, name) or "").strip()
        if not value:
            raise ValidationError("This can't be empty.", field=name)
        if len(value) > limit:
            raise ValidationError(f"Use at most {limit} characters.", field=name)
    if not 3 <= len(text.key_points) <= 5 or any(not p.strip() for p in text.key_points):
        raise ValidationError("Give 3 to 5 key points, one per line.", field="key_points")
    if not text.sources or any(not s.strip() for s in text.sources):
        raise ValidationError("Give at least one source, one per line.", field="sources")
    for name in ("reflection", "exercise", "body_markdown"):
        if not (getattr(text, name) or "").strip():
            raise ValidationError("This can't be empty.", field=name)
    if not 1 <= text.reading_minutes <= 60:
        raise ValidationError(
            "Give a reading time between 1 and 60 minutes.", field="reading_minutes"
        )


_TEXT_FIELDS = (
    "title", "summary", "topic", "order", "reading_minutes", "key_points",
    "reflection", "exercise", "sources", "body_markdown", "published",
)  # fmt: skip


def _apply(module: LearningModule, text: ModuleText, *, source: str, actor, now) -> ModuleVersion:
    """Put `text` on the module and keep it as a new version."""
    for name in _TEXT_FIELDS:
        setattr(module, name, getattr(text, name))
    module.body_html = render_markdown(text.body_markdown)
    module.updated_at = now
    db.session.flush()  # a new module needs its id
    number = (
        db.session.scalar(
            select(func.max(ModuleVersion.number)).where(ModuleVersion.module_id == module.id)
        )
        or 0
    ) + 1
    version = ModuleVersion(
        module_id=module.id,
        number=number,
        source=source,
        created_at=now,
        created_by_id=actor.id if actor is not None else None,
        **{name: getattr(text, name) for name in _TEXT_FIELDS},
    )
    db.session.add(version)
    db.session.flush()
    return version


@dataclass
class LoadReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"{len(self.created)} new, {len(self.updated)} updated, {len(self.unchanged)} unchanged"
        )


def load_modules(*, now: datetime, directory: Path = CONTENT_DIR) -> LoadReport:
    """Load every content file; a new or changed file becomes a new version, others are skipped.

    Raises ValidationError (naming the file) before changing anything when a file is broken.
    An admin's in-app edit stays in place until the file itself changes.
    """
    texts = [parse_module_file(path) for path in content_files(directory)]
    report = LoadReport()
    for text in texts:
        module = db.session.scalar(select(LearningModule).where(LearningModule.slug == text.slug))
        if module is not None and module.file_hash == text.file_hash:
            report.unchanged.append(text.slug)
            continue
        if module is None:
            module = LearningModule(slug=text.slug)
            db.session.add(module)
            report.created.append(text.slug)
        else:
            report.updated.append(text.slug)
        module.file_hash = text.file_hash
        _apply(module, text, source=VersionSource.FILE, actor=None, now=now)
    return report


# ---------------------------------------------------------------------------------------------
# Admin editing


def module_by_id(module_id: int) -> LearningModule:
    module = db.session.get(LearningModule, module_id)
    if module is None:
        raise NotFound()
    return module


def all_modules() -> list[LearningModule]:
    return list(db.session.scalars(select(LearningModule).order_by(LearningModule.order)))


def save_module(module: LearningModule, text: ModuleText, *, actor: User, now: datetime):
    """An admin's edit: checked, sanitized, kept as a new version. Raises ValidationError."""
    text.slug = module.slug
    check_module_text(text)
    version = _apply(module, text, source=VersionSource.EDIT, actor=actor, now=now)
    audit.record(
        "module.edited", actor=actor, obj=module, detail={"version": version.number}, now=now
    )
    return version


def restore_version(module: LearningModule, version_id: int, *, actor: User, now: datetime):
    """Bring back an earlier text as a new version; NotFound for another module's version."""
    version = db.session.get(ModuleVersion, version_id)
    if version is None or version.module_id != module.id:
        raise NotFound()
    text = ModuleText(slug=module.slug, **{name: getattr(version, name) for name in _TEXT_FIELDS})
    new = _apply(module, text, source=VersionSource.RESTORE, actor=actor, now=now)
    audit.record(
        "module.restored",
        actor=actor,
        obj=module,
        detail={"restored": version.number, "version": new.number},
        now=now,
    )
    return new


# ---------------------------------------------------------------------------------------------
# Library


def published_module(slug: str) -> LearningModule:
    module = db.session.scalar(
        select(LearningModule).where(LearningModule.slug == slug, LearningModule.published)
    )
    if module is None:
        raise NotFound()
    return module


def library(query: str = "") -> dict[str, list[LearningModule]]:
    """Published modules grouped by topic, in reading order; `query` searches titles and
    summaries (case-insensitive, taken literally)."""
    stmt = select(LearningModule).where(LearningModule.published)
    query = (query or "").strip()
    if query:
        needle = query.lower()
        stmt = stmt.where(
            or_(
                func.lower(LearningModule.title).contains(needle, autoescape=True),
                func.lower(LearningModule.summary).contains(needle, autoescape=True),
            )
        )
    grouped: dict[str, list[LearningModule]] = {}
    for module in db.session.scalars(stmt.order_by(LearningModule.order, LearningModule.id)):
        grouped.setdefault(module.topic, []).append(module)
    return grouped


# ---------------------------------------------------------------------------------------------
# Who a therapist may assign to


def own_patient(therapist: User, patient_id: int) -> User:
    """The therapist's own patient, or NotFound (someone else's patient looks like no one)."""
    patient = db.session.get(User, patient_id)
    if (
        therapist.role != Role.THERAPIST
        or patient is None
        or patient.role != Role.PATIENT
        or patient.therapist_id != therapist.id
    ):
        raise NotFound()
    return patient


def consented_family(patient: User, *, now: datetime) -> list[User]:
    """Family members linked to the patient whose consent from the patient is active now."""
    members = db.session.scalars(
        select(User)
        .join(FamilyLink, FamilyLink.family_user_id == User.id)
        .where(FamilyLink.patient_id == patient.id, User.role == Role.FAMILY)
        .order_by(User.name, User.id)
    ).all()
    return [
        m
        for m in members
        if consent.may_disclose(m.id, patient.id, None, now=now, audit_access=False)
    ]


def _targets(patient: User, family_user_id: int | None, *, now: datetime) -> list[User]:
    """One consented family member, or all of them (None); NotFound for anyone else."""
    family = consented_family(patient, now=now)
    if family_user_id is None:
        if not family:
            raise ValidationError(
                "No family member has an active consent from this patient yet.", field="family"
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
) -> Assignment | None:
    """A new assignment, or None when that member already has this module for this patient."""
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
        # Consent ended once and was given again: the assignment starts afresh.
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
    assignment.created_at = now
    db.session.flush()
    audit.record(
        "learning.assigned",
        actor=therapist,
        obj=assignment,
        patient_id=patient.id,
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
) -> list[Assignment]:
    """Assign modules now to one consented family member (or all: None) of the therapist's
    own patient. Raises NotFound for anyone else, ValidationError for an empty choice.
    Modules already assigned to that person are skipped; released ones are emailed."""
    patient = own_patient(therapist, patient_id)
    members = _targets(patient, family_user_id, now=now)
    if not module_ids:
        raise ValidationError("Choose at least one module.", field="modules")
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
    *, therapist: User, patient_id: int, family_user_id: int | None, now: datetime
) -> list[Assignment]:
    """The program's default sequence: every published module in reading order, one a week
    from the link date. Same access rules as `assign_modules`."""
    patient = own_patient(therapist, patient_id)
    members = _targets(patient, family_user_id, now=now)
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


def release_due(*, now: datetime) -> list[Assignment]:
    """Release every assignment whose time has come and email the family member once.

    An assignment whose consent is no longer active is stopped instead (the consent_ended
    receiver normally does that first). Flushes; the caller commits.
    """
    due = db.session.scalars(
        select(Assignment)
        .where(
            Assignment.released_at.is_(None),
            Assignment.stopped_at.is_(None),
            Assignment.release_at <= now,
        )
        .order_by(Assignment.release_at, Assignment.id)
    ).all()
    released = []
    for assignment in due:
        if not consent.may_disclose(
            assignment.family_user_id, assignment.patient_id, None, now=now, audit_access=False
        ):
            assignment.stopped_at = now
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
        audit.record(
            "learning.released",
            obj=assignment,
            patient_id=assignment.patient_id,
            recipient_id=member.id,
            now=now,
        )
        released.append(assignment)
    db.session.flush()
    return released


def stop_assignments(*, family_user_id: int, patient_id: int, now: datetime) -> int:
    """Stop every unreleased assignment for that family member about that patient."""
    pending = db.session.scalars(
        select(Assignment).where(
            Assignment.family_user_id == family_user_id,
            Assignment.patient_id == patient_id,
            Assignment.released_at.is_(None),
            Assignment.stopped_at.is_(None),
        )
    ).all()
    for assignment in pending:
        assignment.stopped_at = now
    if pending:
        audit.record(
            "learning.stopped",
            patient_id=patient_id,
            recipient_id=family_user_id,
            detail={"assignments": len(pending)},
            now=now,
        )
    db.session.flush()
    return len(pending)


@consent.consent_ended.connect
def _on_consent_ended(sender, *, family_user_id: int, patient_id: int, now: datetime, **_):
    stop_assignments(family_user_id=family_user_id, patient_id=patient_id, now=now)


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
    for patient, _consent in consent.linked_patients(member, now=now):
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
        pid
        for pid in ids
        if consent.may_disclose(member.id, pid, None, now=now, audit_access=False)
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


def own_patients(therapist: User) -> list[User]:
    return list(
        db.session.scalars(
            select(User)
            .where(User.role == Role.PATIENT, User.therapist_id == therapist.id)
            .order_by(User.name, User.id)
        )
    )


def family_progress(therapist: User, patient_id: int, *, now: datetime) -> list[FamilyProgress]:
    """For each consented family member of the therapist's own patient: what was assigned,
    released, opened and completed, plus reflections they chose to share. Audited."""
    patient = own_patient(therapist, patient_id)
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


# ---------------------------------------------------------------------------------------------
# The sweep


def release_sweep(now: datetime) -> int:
    """The hook run by the mail worker before each pass: release what is due, commit."""
    released = release_due(now=now)
    db.session.commit()
    return len(released)
