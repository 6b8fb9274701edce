"""Practice tools (CRAFT) for family members: the "before and after" worksheet, "say it so it
can be heard" (a message and its rewrites against the elements of positive communication), the
rewards and consequences plan, and the family safety plan.

Everything a member writes here is theirs and private by default. They may share one entry
with the therapist of one patient: only a patient whose consent to them is in force now
(`access.reading_patients`), and the therapist reads it only while it still is
(`access.reading_family`, which audits the view). The patient never reads it; no email or
calendar file carries it. The audit rows name the tool and whether it is shared, never the
words written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from familylink.extensions import db
from familylink.models import MessageVersion, PracticeEntry, Role, ToolKind, User
from familylink.services import access, audit
from familylink.services.errors import NotFound, ValidationError
from familylink.services.learning import withdrawal

MAX_TITLE = 120
MAX_ANSWER = 2000
#: A message meant to be heard is short; the checklist's first element is "be brief".
MAX_MESSAGE = 1000
#: Rewrites kept per message; the oldest are never dropped, a new message is started instead.
MAX_VERSIONS = 30
#: Entries of each tool per member (the safety plan: one).
MAX_ENTRIES = 50


@dataclass(frozen=True)
class Tool:
    kind: ToolKind
    # The answers it keeps, by field name, in the order the page asks them.
    fields: tuple[str, ...]
    one_only: bool = False
    # Characters per answer; the safety plan's are short so that it prints on one page.
    limit: int = MAX_ANSWER


TOOLS = {
    tool.kind: tool
    for tool in (
        Tool(
            ToolKind.BEFORE_AFTER,
            ("triggers", "what_happens", "short_term_pull", "long_term_cost"),
        ),
        Tool(ToolKind.MESSAGE, ()),
        Tool(ToolKind.REWARDS, ("when_sober", "when_not_sober")),
        Tool(
            ToolKind.SAFETY_PLAN,
            ("warning_signs", "people_to_call", "naloxone_place", "safe_place"),
            one_only=True,
            limit=400,
        ),
    )
}

#: The elements of positive communication a message is checked against (CRAFT; PIUS).
MESSAGE_ELEMENTS = (
    "brief",
    "positive",
    "specific",
    "feelings",
    "understanding",
    "partial_responsibility",
    "offer_help",
)


def tool(kind: str) -> Tool:
    """The tool of that kind; NotFound for any other word (it comes from the address)."""
    try:
        return TOOLS[ToolKind(kind)]
    except ValueError:
        raise NotFound() from None


def _member(actor: User) -> User:
    if actor.role != Role.FAMILY:
        raise NotFound()
    return actor


def own_entries(member: User) -> list[PracticeEntry]:
    """The member's entries, newest change first (one query; their versions are not read)."""
    _member(member)
    return list(
        db.session.scalars(
            select(PracticeEntry)
            .where(PracticeEntry.family_user_id == member.id)
            .order_by(PracticeEntry.updated_at.desc(), PracticeEntry.id.desc())
        )
    )


def own_entry(member: User, entry_id: int) -> PracticeEntry:
    """One of the member's own entries; NotFound for anyone else's, or for anyone but a
    family member (a therapist reads shared entries through `shared_practice` only)."""
    _member(member)
    entry = db.session.get(PracticeEntry, entry_id) if isinstance(entry_id, int) else None
    if entry is None or entry.family_user_id != member.id:
        raise NotFound()
    return entry


def safety_plan(member: User) -> PracticeEntry | None:
    """The member's safety plan, or None (also for anyone who is not a family member)."""
    if member.role != Role.FAMILY:
        return None
    return db.session.scalar(
        select(PracticeEntry).where(
            PracticeEntry.family_user_id == member.id,
            PracticeEntry.kind == ToolKind.SAFETY_PLAN,
        )
    )


def is_filled_in(entry: PracticeEntry | None) -> bool:
    return entry is not None and any((entry.answers or {}).values())


def share_choices(member: User, *, now: datetime) -> list[User]:
    """The patients whose therapist the member may share an entry with: those whose consent
    to them is in force now. Listing them is a disclosure of each (audited)."""
    return access.reading_patients(_member(member), now=now, what="practice share choices")


def _shared_with(member: User, share_with: int | None, now: datetime) -> User | None:
    if share_with is None:
        return None
    chosen = next(
        (p for p in access.reading_patients(member, now=now, what=None) if p.id == share_with),
        None,
    )
    if chosen is None:
        raise ValidationError(_("Choose a therapist from the list, or nobody."), field="share")
    return chosen


def _clean(value: str | None, limit: int, field: str) -> str:
    value = (value or "").replace("\r\n", "\n").strip()
    if len(value) > limit:
        raise ValidationError(_("Use at most %(count)s characters.", count=limit), field=field)
    return value


def _new_entry(member: User, spec: Tool, title: str, now: datetime) -> PracticeEntry:
    count = db.session.scalar(
        select(func.count(PracticeEntry.id)).where(
            PracticeEntry.family_user_id == member.id, PracticeEntry.kind == spec.kind
        )
    )
    if count >= MAX_ENTRIES:
        raise ValidationError(
            _("You have %(count)s of these already: add to one of them instead.", count=count)
        )
    entry = PracticeEntry(
        family_user_id=member.id,
        kind=spec.kind,
        title=title,
        answers={},
        created_at=now,
        updated_at=now,
    )
    if not spec.one_only:
        db.session.add(entry)
        return entry
    # Two tabs saving a first safety plan at once: the second saves into the first one's.
    try:
        with db.session.begin_nested():
            db.session.add(entry)
    except IntegrityError:
        entry = safety_plan(member)
    return entry


def _add_version(entry: PracticeEntry, message: str, checked, now: datetime) -> None:
    """Keep the message as a new version when its words or its ticks changed."""
    checked = [element for element in MESSAGE_ELEMENTS if element in set(checked or ())]
    latest = entry.versions[0] if entry.versions else None
    if latest is not None and latest.text == message and latest.checked == checked:
        return
    if not message:
        raise ValidationError(_("Write the message you want to send."), field="message")
    if len(entry.versions) >= MAX_VERSIONS:
        raise ValidationError(
            _("This message has %(count)s versions: start a new one.", count=MAX_VERSIONS),
            field="message",
        )
    number = latest.number + 1 if latest is not None else 1
    version = MessageVersion(entry=entry, number=number, text=message, checked=checked)
    version.created_at = now
    db.session.add(version)


def save_entry(
    member: User,
    kind: str,
    *,
    entry_id: int | None = None,
    title: str | None,
    answers: dict[str, str | None],
    message: str | None = None,
    checked=(),
    share_with: int | None,
    now: datetime,
) -> PracticeEntry:
    """Create (`entry_id` None) or change one of the member's entries of that tool: its title,
    its answers (only the tool's fields are kept), for a message a new version when the
    wording or the ticks changed, and whom it is shared with (`share_with`, a patient id
    offered by `share_choices`, or None: nobody). A second safety plan is the first one.

    Raises NotFound for another member's entry or another tool's; ValidationError for an
    empty title, an over-long text, an empty first message, too many entries or versions, or
    a share choice that was not offered.
    """
    spec = tool(kind)
    _member(member)
    title = _clean(title, MAX_TITLE, "title")
    if not title and spec.kind != ToolKind.SAFETY_PLAN:
        raise ValidationError(_("Give it a short name, for you."), field="title")
    title = title or _("Family safety plan")
    cleaned = {name: _clean(answers.get(name), spec.limit, name) for name in spec.fields}
    message = _clean(message, MAX_MESSAGE, "message")
    shared_with = _shared_with(member, share_with, now)
    if entry_id is not None:
        entry = own_entry(member, entry_id)
        if entry.kind != spec.kind:
            raise NotFound()
    elif spec.one_only and (existing := safety_plan(member)) is not None:
        entry = existing
    else:
        entry = _new_entry(member, spec, title, now)
    if spec.kind == ToolKind.MESSAGE:
        _add_version(entry, message, checked, now)
    was_shared_with = entry.shared_patient_id
    entry.title = title
    entry.answers = cleaned
    entry.shared_patient_id = shared_with.id if shared_with else None
    entry.updated_at = now
    db.session.flush()
    # Each patient whose therapist gains or loses (or keeps) this entry gets a row in their
    # log of what was shared; a private entry is nobody's business but the member's.
    for patient_id in sorted({p for p in (was_shared_with, entry.shared_patient_id) if p}):
        audit.record(
            "practice.saved",
            actor=member,
            obj=entry,
            patient_id=patient_id,
            detail={"tool": str(spec.kind), "shared": patient_id == entry.shared_patient_id},
            now=now,
        )
    return entry


def delete_entry(member: User, entry_id: int, *, now: datetime) -> None:
    """Delete one of the member's entries, with every version of a message, for good.
    NotFound for anyone else's. When it was shared, the patient's log says a shared entry
    went (the tool, never the words)."""
    entry = own_entry(member, entry_id)
    if entry.shared_patient_id is not None:
        audit.record(
            "practice.deleted",
            actor=member,
            patient_id=entry.shared_patient_id,
            detail={"tool": entry.kind},
            now=now,
        )
    for version in entry.versions:
        db.session.delete(version)
    db.session.delete(entry)
    db.session.flush()


def unshare_about(*, family_user_id: int, patient_id: int, now: datetime) -> int:
    """Access ended: the member's entries shared with that patient's therapist become private
    again (a later consent shows nothing until the member shares again); returns how many.
    The patient's log says how many were unshared, never which tool or what words."""
    entries = db.session.scalars(
        select(PracticeEntry).where(
            PracticeEntry.family_user_id == family_user_id,
            PracticeEntry.shared_patient_id == patient_id,
        )
    ).all()
    return withdrawal.withdraw(
        entries,
        {"shared_patient_id": None},
        "practice.unshared",
        counted_as="entries",
        family_user_id=family_user_id,
        patient_id=patient_id,
        now=now,
        reason="consent ended",
    )


# ---------------------------------------------------------------------------------------------
# The therapist's side


@dataclass
class SharedPractice:
    member: User
    entries: list[PracticeEntry]


def shared_practice(therapist: User, patient_id: int, *, now: datetime) -> list[SharedPractice]:
    """For the therapist's own patient: each family member whose consent is in force now,
    with the entries they chose to share with this patient's therapist (a message with its
    versions). Nothing shared about another patient, nothing private, nothing once the
    consent has ended. The view is audited through the gate. Two queries for the entries and
    their versions, however many members."""
    patient, family = access.reading_family(
        therapist, patient_id, now=now, what="shared practice tools"
    )
    return practice_of(patient, family)


def practice_of(patient: User, family: list[User]) -> list[SharedPractice]:
    """`shared_practice` for a patient and family the gate has just allowed (what
    `access.reading_family` returned, the view audited there)."""
    by_member: dict[int, list[PracticeEntry]] = {m.id: [] for m in family}
    if by_member:
        for entry in db.session.scalars(
            select(PracticeEntry)
            .where(
                PracticeEntry.shared_patient_id == patient.id,
                PracticeEntry.family_user_id.in_(by_member),
            )
            .options(selectinload(PracticeEntry.versions))
            .order_by(PracticeEntry.updated_at.desc(), PracticeEntry.id.desc())
        ):
            by_member[entry.family_user_id].append(entry)
    return [SharedPractice(m, by_member[m.id]) for m in family if by_member[m.id]]
