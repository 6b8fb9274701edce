"""What a family member's ended access does to their own learning rows about a patient:
the one shape shared by stopping and withdrawing assignments, withdrawing and unsharing the
notes on readings, unsharing practice entries (`consent.ending` calls each), and by the
waitlist places it leaves (`booking.groups.remove_from_future`). `withdraw_pair` reads the
rows of a model keyed by member and patient first."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from familylink.extensions import db
from familylink.services import audit


def withdraw(
    rows,
    changes: dict,
    action: str,
    *,
    counted_as: str,
    family_user_id: int,
    patient_id: int,
    now: datetime,
    reason: str | None = None,
) -> int:
    """Set `changes` on each of `rows` and, when there were any, write one audit row that
    counts them under `counted_as` (the patient's log says how many, never which or what
    words); returns how many."""
    for row in rows:
        for name, value in changes.items():
            setattr(row, name, value)
    if rows:
        detail = {counted_as: len(rows)}
        if reason is not None:
            detail["reason"] = reason
        audit.record(
            action, patient_id=patient_id, recipient_id=family_user_id, detail=detail, now=now
        )
    db.session.flush()
    return len(rows)


def withdraw_pair(
    model,
    condition,
    changes: dict,
    action: str,
    *,
    counted_as: str,
    family_user_id: int,
    patient_id: int,
    now: datetime,
    reason: str | None = None,
) -> int:
    """`withdraw` the rows of `model` (one keyed by `family_user_id` and `patient_id`: an
    assignment, a reading's notes) of that member about that patient that meet
    `condition`."""
    rows = db.session.scalars(
        select(model).where(
            model.family_user_id == family_user_id, model.patient_id == patient_id, condition
        )
    ).all()
    return withdraw(
        rows,
        changes,
        action,
        counted_as=counted_as,
        family_user_id=family_user_id,
        patient_id=patient_id,
        now=now,
        reason=reason,
    )
