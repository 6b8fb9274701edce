"""Progress updates: a therapist writes, the patient approves the exact text, then (and only
then) the family members it is for may read it (DESIGN.md, the `progress` scope).

The order of things, and why (42 CFR Part 2: the patient decides what is disclosed):

1. The therapist drafts an update about their own patient (`access.therapist_patient`) for
   one family member, or for all, whose consent in force covers the progress scope. The
   text is checked: length, no control characters, and a warning (not a refusal: the
   therapist may confirm) for diagnosis, substance and medication words.
2. The patient reads that exact version and approves it, asks for changes (a note to the
   therapist, who writes a new version) or declines. Approval names the version the
   patient read: a newer one is never approved by a click on an older page.
3. On approval the approved version is released to each recipient whose consent covers
   the progress scope at that moment: one disclosure row each (the patient's "what was
   shared with whom") and one email that says only that there is an update; the sender
   checks the consent again before it goes out.
4. A family member reads released updates on the patient's page, through the gate at the
   moment they read (`access.family_scope_shown`): a revoked or expired consent hides them.
5. When their access about the patient ends, or a renewal no longer covers progress, the
   releases to them are withdrawn (`withdraw_releases`): a later consent does not show them
   again; only updates released under it do.

Drafts, declined updates and versions nobody approved never reach a family member.
"""

from __future__ import annotations

import re
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from familylink.extensions import db
from familylink.models import (
    ProgressUpdate,
    ProgressUpdateRecipient,
    ProgressUpdateVersion,
    Role,
    Scope,
    UpdateStatus,
    User,
)
from familylink.services import access, audit, lockout, mail
from familylink.services.errors import Conflict, NotFound, ValidationError
from familylink.services.learning import withdrawal
from familylink.services.screening import clinical_hits, fold, has_control

#: Short and plain: a family reads it on a phone. Longer notes belong in the record.
MAX_LENGTH = 1500
MIN_LENGTH = 40
MAX_NOTE_LENGTH = 1000

#: Words that `screening` does not list because a name or an address may well use them,
#: but that do not belong in a note to a family: medication and symptom words (English and
#: Spanish, matched on the folded text, from the start of a word). Diagnoses are
#: `screening`'s.
EXTRA_STEMS = (
    "medicat",
    "medicin",
    "medicament",
    "prescri",
    "receta",
    "dosage",
    "dose",
    "dosis",
    "pill",
    "pastilla",
    "antidepress",
    "antidepres",
    "antipsych",
    "antipsic",
    "benzo",
    "relapse",
    "recaida",
    "withdrawal",
    "abstinencia",
    "craving",
)
_EXTRA = re.compile("|".join(rf"(?<![^\W_]){stem}\w*" for stem in EXTRA_STEMS))


class Decision:
    APPROVE = "approve"
    CHANGES = "changes"
    DECLINE = "decline"
    ALL = (APPROVE, CHANGES, DECLINE)


class WordsToConfirm(ValidationError):
    """The text holds words that may say what kind of care this is; `words` as typed."""

    def __init__(self, message: str, words: tuple[str, ...]):
        super().__init__(message, field="text")
        self.words = words


def prompts() -> str:
    """The template a new update starts from: three prompts, in the reader's words."""
    return (
        "\n\n".join(
            (
                _("What we worked on:"),
                _("How the family can help this week:"),
                _("What is next:"),
            )
        )
        + "\n"
    )


def flagged_words(text: str) -> tuple[str, ...]:
    """Diagnosis, substance, medication and other clinical words in `text`, as typed."""
    words = [hit.shown for hit in clinical_hits(text)]
    folded, origin = fold(text)
    for match in _EXTRA.finditer(folded):
        shown = text[origin[match.start()] : origin[match.end() - 1] + 1]
        if shown not in words:
            words.append(shown)
    return tuple(words)


def _clean_lines(text: str | None, *, field: str, limit: int) -> str:
    """`text` with its line breaks made plain, or ValidationError: other control or
    invisible characters are refused (one could split a word so the check misses it)."""
    text = (text or "").replace("\r\n", "\n").replace("\r", "\n").strip()
    if any(has_control(line) for line in text.split("\n")):
        raise ValidationError(
            _(
                "Use letters, numbers, punctuation and line breaks only: no tabs or invisible "
                "characters."
            ),
            field=field,
        )
    if len(text) > limit:
        raise ValidationError(
            _(
                "Use at most %(limit)d characters (this has %(count)d).",
                limit=limit,
                count=len(text),
            ),
            field=field,
        )
    return text


def check_text(text: str | None, *, confirmed: tuple[str, ...] = ()) -> str:
    """The text to save, or ValidationError (field "text"); WordsToConfirm when it holds
    clinical words the therapist has not confirmed (`confirmed`: the words they were shown
    and chose to keep; a word not among them is warned about again)."""
    text = _clean_lines(text, field="text", limit=MAX_LENGTH)
    written = text
    for prompt in prompts().split("\n"):
        written = written.replace(prompt.strip(), "") if prompt.strip() else written
    if len(written.strip()) < MIN_LENGTH:
        raise ValidationError(
            _(
                "Write a few sentences under the prompts (at least %(count)d characters).",
                count=MIN_LENGTH,
            ),
            field="text",
        )
    kept = {word.casefold() for word in confirmed}
    words = tuple(word for word in flagged_words(text) if word.casefold() not in kept)
    if words:
        raise WordsToConfirm(
            _(
                "This mentions %(words)s. Family updates should be plain and say nothing "
                "clinical: no diagnosis, substance or medication. Change the text, or tick "
                "the box below to keep them.",
                words=", ".join(f"“{word}”" for word in words),
            ),
            words,
        )
    return text


# --- The therapist --------------------------------------------------------------------------


def progress_family(patient: User, *, now: datetime) -> list[User]:
    """Who an update about `patient` may be written for: family members whose consent in
    force covers the progress scope."""
    return access.family_with_scope(patient, Scope.PROGRESS, now=now)


def _load(update_id: int, *, lock: bool = False) -> ProgressUpdate:
    """The update, read afresh; with `lock`, held FOR UPDATE on PostgreSQL (SQLite: the
    request's write lock) so two answers to the same update cannot both be taken."""
    query = select(ProgressUpdate).where(ProgressUpdate.id == update_id)
    if lock and db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    found = db.session.scalars(query.execution_options(populate_existing=True)).first()
    if found is None:
        raise NotFound()
    return found


def updates_of(patient_id: int) -> list[ProgressUpdate]:
    """Every update about the patient, newest first, with versions and recipients (three
    queries whatever their number)."""
    return list(
        db.session.scalars(
            select(ProgressUpdate)
            .where(ProgressUpdate.patient_id == patient_id)
            .options(
                selectinload(ProgressUpdate.versions),
                selectinload(ProgressUpdate.recipients).selectinload(
                    ProgressUpdateRecipient.member
                ),
            )
            .order_by(ProgressUpdate.created_at.desc(), ProgressUpdate.id.desc())
        )
    )


def therapist_page(therapist: User, patient_id: int, *, now: datetime):
    """The therapist's own patient (the view audited), their updates and who may get one;
    NotFound for anyone else's patient."""
    patient = access.therapist_patient(therapist, patient_id, now=now, what="progress updates")
    return patient, updates_of(patient.id), progress_family(patient, now=now)


def draft_update(
    therapist: User,
    patient_id: int,
    *,
    text: str | None,
    family_user_id: int | None,
    confirmed: tuple[str, ...] = (),
    now: datetime,
) -> ProgressUpdate:
    """A new update about the therapist's own patient, waiting for the patient's approval,
    for one family member (`family_user_id`) or all (None) whose consent covers progress.

    Raises NotFound (not their patient), ValidationError (text, or nobody to write for;
    WordsToConfirm for clinical words not confirmed).
    """
    patient = access.therapist_patient(therapist, patient_id, now=now, what=None)
    family = progress_family(patient, now=now)
    if not family:
        raise ValidationError(
            _(
                "No family member may receive progress updates: none of %(name)s's consents "
                "in force includes general progress.",
                name=patient.first_name,
            ),
            field="recipient",
        )
    chosen = family if family_user_id is None else [m for m in family if m.id == family_user_id]
    if not chosen:
        raise ValidationError(_("Choose someone from the list."), field="recipient")
    text = check_text(text, confirmed=confirmed)
    lockout.lock_account(patient.id)  # two drafts at once: the second finds the first
    _refuse_a_second(patient.id, text, {m.id for m in chosen})
    update = ProgressUpdate(
        patient_id=patient.id,
        therapist_id=therapist.id,
        created_at=now,
        status=UpdateStatus.AWAITING_PATIENT,
        versions=[ProgressUpdateVersion(number=1, text=text, created_at=now)],
        recipients=[ProgressUpdateRecipient(family_user_id=m.id) for m in chosen],
    )
    db.session.add(update)
    db.session.flush()
    _audit_text("progress_update.drafted", therapist, update, text, now=now)
    return update


def _refuse_a_second(patient_id: int, text: str, recipient_ids: set[int]) -> None:
    """ValidationError when the same text for the same family members already awaits the
    patient (the form sent twice): the patient is not asked twice about one update."""
    waiting = select(ProgressUpdate).where(
        ProgressUpdate.patient_id == patient_id,
        ProgressUpdate.status == UpdateStatus.AWAITING_PATIENT,
    )
    loaded = waiting.options(
        selectinload(ProgressUpdate.versions), selectinload(ProgressUpdate.recipients)
    )
    for update in db.session.scalars(loaded):
        same_people = {r.family_user_id for r in update.recipients} == recipient_ids
        if same_people and update.current.text == text:
            raise ValidationError(_("This update is already waiting for the patient to read it."))


def therapist_update(therapist: User, update_id: int, *, now: datetime) -> ProgressUpdate:
    """An update about one of the therapist's own patients (the view audited), or NotFound."""
    update = _load(update_id)
    access.therapist_patient(therapist, update.patient_id, now=now, what="progress update")
    return update


def revise_update(
    therapist: User,
    update_id: int,
    *,
    text: str | None,
    confirmed: tuple[str, ...] = (),
    now: datetime,
) -> ProgressUpdate:
    """A new version of an update still undecided or sent back for changes; the patient is
    asked about it afresh. Raises NotFound, Conflict (already released or declined),
    ValidationError."""
    update = _load(update_id, lock=True)
    access.therapist_patient(therapist, update.patient_id, now=now, what=None)
    if update.status not in (UpdateStatus.AWAITING_PATIENT, UpdateStatus.CHANGES_REQUESTED):
        raise Conflict(_("This update is already decided: write a new one instead."))
    text = check_text(text, confirmed=confirmed)
    update.versions.append(
        ProgressUpdateVersion(number=update.current.number + 1, text=text, created_at=now)
    )
    update.status = UpdateStatus.AWAITING_PATIENT
    db.session.flush()
    _audit_text("progress_update.revised", therapist, update, text, now=now)
    return update


def _audit_text(action: str, therapist: User, update: ProgressUpdate, text: str, *, now):
    # The words confirmed are kept (folded): who chose to keep what, and when.
    audit.record_about(
        action,
        update,
        actor=therapist,
        detail={"version": update.current.number, "confirmed_words": list(flagged_words(text))},
        now=now,
    )


# --- The patient ----------------------------------------------------------------------------


def patient_page(patient: User, *, now: datetime) -> list[ProgressUpdate]:
    """The patient's own updates, newest first (the view audited)."""
    access.patient(patient, patient.id, now=now, what="progress updates")
    return updates_of(patient.id)


def decide(
    patient: User,
    update_id: int,
    *,
    version_id: int | None,
    decision: str,
    note: str | None,
    now: datetime,
) -> ProgressUpdate:
    """The patient's answer about the exact version `version_id` they read: approve (and
    release), ask for changes (with `note`, for the therapist) or decline.

    Raises NotFound (not their update), Conflict (already decided, or a newer version came
    since they read it), ValidationError (no note with a change request).
    """
    if patient.role != Role.PATIENT:
        raise NotFound()  # only the patient decides: not their therapist, not the family
    update = _load(update_id, lock=True)
    access.patient(patient, update.patient_id, now=now, what=None)
    if update.status != UpdateStatus.AWAITING_PATIENT:
        raise Conflict(_("You have already answered about this update."))
    version = update.current
    if version_id != version.id:
        raise Conflict(_("Your therapist changed this update since you read it. Read it again."))
    if decision == Decision.APPROVE:
        version.approved_at = now
        update.status = UpdateStatus.RELEASED
    elif decision == Decision.CHANGES:
        version.change_note = _clean_lines(note, field="note", limit=MAX_NOTE_LENGTH)
        if not version.change_note:
            raise ValidationError(_("Say what you would like changed."), field="note")
        update.status = UpdateStatus.CHANGES_REQUESTED
    elif decision == Decision.DECLINE:
        update.status = UpdateStatus.DECLINED
    else:
        raise ValidationError(_("Choose what to do with this update."), field="decision")
    update.decided_at = now
    db.session.flush()
    audit.record_about(
        f"progress_update.{update.status}",
        update,
        actor=patient,
        detail={"version": version.number},
        now=now,
    )
    if update.status == UpdateStatus.RELEASED:
        _release(update, now=now)
    return update


def _release(update: ProgressUpdate, *, now: datetime) -> None:
    """Release the approved version to each recipient whose consent covers progress now:
    a disclosure row and a content-free email each; the others get nothing (audited)."""
    allowed = access.pairs_with_scope(
        {(r.family_user_id, update.patient_id) for r in update.recipients},
        Scope.PROGRESS,
        now=now,
    )
    for recipient in update.recipients:
        if (recipient.family_user_id, update.patient_id) not in allowed:
            audit.record_about(
                "progress_update.withheld", update, recipient_id=recipient.family_user_id, now=now
            )
            continue
        recipient.released_at = now
        audit.record_about(
            "disclosure.progress_update",
            update,
            recipient_id=recipient.family_user_id,
            detail={"what": "progress update", "version": update.approved.number},
            now=now,
        )
        mail.queue_email(
            "progress_update",
            to=recipient.member,
            dedupe_key=f"progress_update:{update.id}:{recipient.family_user_id}",
            now=now,
            context={"link": mail.external_url("family.home")},
            patient_id=update.patient_id,
            required_scope=Scope.PROGRESS.value,
        )
    db.session.flush()


# --- The family member ----------------------------------------------------------------------


def released_to(member: User, patient_id: int, *, now: datetime) -> list[tuple[datetime, str]]:
    """(released at, approved text) of each update released to this family member about the
    patient, newest first; none unless their consent in force covers progress now (the
    reading audited through the gate). Only approved versions are ever read here, and never
    one withdrawn when an earlier access of theirs ended (`withdraw_releases`)."""
    rows = db.session.execute(
        select(ProgressUpdateRecipient.released_at, ProgressUpdateVersion.text)
        .join(ProgressUpdate, ProgressUpdate.id == ProgressUpdateRecipient.update_id)
        .join(ProgressUpdateVersion, ProgressUpdateVersion.update_id == ProgressUpdate.id)
        .where(
            ProgressUpdateRecipient.family_user_id == member.id,
            ProgressUpdateRecipient.released_at.is_not(None),
            ProgressUpdateRecipient.withdrawn_at.is_(None),
            ProgressUpdate.patient_id == patient_id,
            ProgressUpdate.status == UpdateStatus.RELEASED,
            ProgressUpdateVersion.approved_at.is_not(None),
        )
        .order_by(ProgressUpdateRecipient.released_at.desc(), ProgressUpdate.id.desc())
    ).all()
    if not rows or not access.family_scope_shown(
        member, patient_id, Scope.PROGRESS, now=now, what="progress updates"
    ):
        return []
    return [(released_at, text) for released_at, text in rows]


def withdraw_releases(
    *, family_user_id: int, patient_id: int, now: datetime, reason: str = "consent ended"
) -> int:
    """The member's access about the patient ended (`consent.end_family_access`), or a
    renewal no longer covers progress (`consent.ending.end_scopes`, `reason` saying so):
    the updates released to them about that patient are withdrawn, so a later consent does
    not show them again (only updates released under it). Returns how many; one audit row
    counts them (the patient's log says how many, never which or what words). The patient's
    and therapist's pages still say each was released then."""
    released = db.session.scalars(
        select(ProgressUpdateRecipient)
        .join(ProgressUpdate, ProgressUpdate.id == ProgressUpdateRecipient.update_id)
        .where(
            ProgressUpdateRecipient.family_user_id == family_user_id,
            ProgressUpdateRecipient.released_at.is_not(None),
            ProgressUpdateRecipient.withdrawn_at.is_(None),
            ProgressUpdate.patient_id == patient_id,
        )
    ).all()
    return withdrawal.withdraw(
        released,
        {"withdrawn_at": now},
        "progress_update.withdrawn",
        counted_as="updates",
        family_user_id=family_user_id,
        patient_id=patient_id,
        now=now,
        reason=reason,
    )
