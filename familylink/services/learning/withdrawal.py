"""What a family member's ended access does to their own learning rows about a patient:
the one shape shared by stopping assignments and unsharing practice entries and
reflections (`consent.ending` calls each), and by the waitlist places it leaves
(`booking.groups.remove_from_future`)."""

from __future__ import annotations

from datetime import datetime

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
