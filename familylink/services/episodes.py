"""Episodes of care: a therapist discharges a patient, and readmits them later.

A consent that lasts "until the end of this episode (+N days)" follows the episode it was
signed in (`ConsentRecord.episode_id`); the gate (`access.consent_end`) reads that episode's
end, so a readmission never revives it. Discharge ends at once, through
`consent.end_family_access`, the consents whose end has already passed; the others end when
the consent sweep reaches their end.
"""

from __future__ import annotations

from datetime import date, datetime

from flask_babel import gettext as _
from sqlalchemy import select

from familylink.extensions import db
from familylink.models import (
    ClosureReason,
    ConsentClosure,
    ConsentRecord,
    Episode,
    EpisodeEndReason,
    User,
)
from familylink.services import access, audit
from familylink.services.consent import records
from familylink.services.consent.ending import end_family_access
from familylink.services.errors import Conflict, ValidationError
from familylink.services.program import check_day, local_day, start_of_day


def episodes_of(patient_id: int) -> list[Episode]:
    """The patient's episodes, first to latest (callers have passed the gate)."""
    return list(
        db.session.scalars(
            select(Episode).where(Episode.patient_id == patient_id).order_by(Episode.number)
        )
    )


def in_progress(episodes: list[Episode]) -> Episode | None:
    """The episode of care in progress among a patient's episodes (`episodes_of`, first to
    latest): the latest, until it ends. None once the patient is discharged, and before any
    episode started."""
    latest = episodes[-1] if episodes else None
    return latest if latest is not None and latest.ended_on is None else None


def discharge(
    actor: User, patient_id: int, *, ended_on: date | None, reason: str | None, now: datetime
) -> Episode:
    """End the patient's current episode of care on `ended_on` (from the start of that day,
    program time), for one of the neutral `EpisodeEndReason`s.

    Consents signed in this episode that last until its end plus N days end at once, through
    `end_family_access`, when that moment has passed; otherwise the consent sweep ends them
    when it comes. Audited as `episode.ended`.
    NotFound: not the actor's own patient. Conflict: no episode in progress.
    ValidationError (field ended_on or reason): a date in the future or before the episode
    started, or a reason not on the list.
    """
    patient = access.therapist_patient(actor, patient_id, now=now, what=None)
    episode = in_progress(episodes_of(patient.id))
    if episode is None:
        raise Conflict(_("This patient has no episode of care in progress."))
    check_day(ended_on, field="ended_on", not_before=local_day(episode.started_on), now=now)
    try:
        reason = EpisodeEndReason(reason)
    except ValueError:
        raise ValidationError(_("Choose a reason from the list."), field="reason") from None
    episode.ended_on = start_of_day(ended_on)
    episode.end_reason = reason
    episode.ended_by_id = actor.id
    db.session.flush()
    _audit("episode.ended", actor, episode, now=now, reason=str(reason))
    ended = [c for c in _open_consents_of(episode) if not access.is_active(c, patient, now)]
    # Locked all at once, as the sweep does; one closed meanwhile is not closed again.
    for consent in records.still_open(ended):
        end_family_access(consent, ClosureReason.EXPIRED, actor=actor, now=now)
    return episode


def _open_consents_of(episode: Episode) -> list[ConsentRecord]:
    return list(
        db.session.scalars(
            select(ConsentRecord)
            .outerjoin(ConsentClosure, ConsentClosure.consent_id == ConsentRecord.id)
            .where(ConsentRecord.episode_id == episode.id, ConsentClosure.id.is_(None))
            .order_by(ConsentRecord.id)
        ).unique()
    )


def readmit(actor: User, patient_id: int, *, started_on: date | None, now: datetime) -> Episode:
    """Start a new episode of care for a discharged patient, from the start of `started_on`.

    Consents of earlier episodes stay as they are: an ended one is not revived, and a new
    "until the end of this episode" consent follows the new episode. Audited as
    `episode.started`.
    NotFound: not the actor's own patient. Conflict: an episode is still in progress.
    ValidationError (field started_on): a date in the future or before the last discharge.
    """
    patient = access.therapist_patient(actor, patient_id, now=now, what=None)
    history = episodes_of(patient.id)
    if in_progress(history) is not None:
        raise Conflict(_("This patient's episode of care is still in progress."))
    latest = history[-1] if history else None
    not_before = local_day(latest.ended_on) if latest else date.min
    check_day(started_on, field="started_on", not_before=not_before, now=now)
    episode = Episode(
        patient_id=patient.id,
        number=(latest.number + 1) if latest else 1,
        started_on=start_of_day(started_on),
        created_at=now,
    )
    db.session.add(episode)
    db.session.flush()
    _audit("episode.started", actor, episode, now=now)
    return episode


def _audit(action: str, actor: User, episode: Episode, *, now: datetime, **detail) -> None:
    """Every change to an episode is audited with its patient and its number."""
    audit.record_about(
        action, episode, actor=actor, detail={"number": episode.number, **detail}, now=now
    )
