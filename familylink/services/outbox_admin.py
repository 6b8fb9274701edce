"""The admin's view of the outbox (`/admin/outbox`): how many emails are in each status, the
failed ones, and putting one back in the queue."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update

from familylink.extensions import db
from familylink.models import OutboxEmail, OutboxStatus, User
from familylink.services import audit
from familylink.services.errors import NotFound


def outbox_counts() -> dict[str, int]:
    """How many rows are in each status (every status listed, zero included)."""
    rows = db.session.execute(
        select(OutboxEmail.status, func.count()).group_by(OutboxEmail.status)
    ).all()
    counts = {str(status): 0 for status in OutboxStatus}
    counts.update({str(status): n for status, n in rows})
    return counts


def failed_emails(actor: User, *, now: datetime, limit: int = 100) -> list[OutboxEmail]:
    """The most recently failed rows, newest first, as the admin's outbox page shows them.

    The addresses and kinds shown are linked to patients, so each patient shown gets a
    "patient_data.viewed" row (page "outbox")."""
    rows = list(
        db.session.scalars(
            select(OutboxEmail)
            .where(OutboxEmail.status == OutboxStatus.FAILED)
            .order_by(OutboxEmail.created_at.desc(), OutboxEmail.id.desc())
            .limit(limit)
        )
    )
    patient_ids = [row.patient_id for row in rows if row.patient_id is not None]
    audit.record_patient_views(actor, patient_ids, page="outbox", now=now)
    return rows


def retry_failed(email_id: int, *, actor: User, now: datetime) -> OutboxEmail:
    """Put one failed row back in the queue with a fresh set of attempts.

    Raises NotFound for an unknown id or a row that is not failed. Consent and the row's
    useful-until time are still checked when it is sent.
    """
    # Only while still failed: cancelled meanwhile (access ended, too late, the session
    # changed), its message is gone and its retry would send an empty email.
    requeued = db.session.execute(
        update(OutboxEmail)
        .where(OutboxEmail.id == email_id, OutboxEmail.status == OutboxStatus.FAILED)
        .values(
            status=OutboxStatus.PENDING,
            attempts=0,
            next_attempt_at=now,
            locked_until=None,
            claimed_by=None,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if not requeued:
        raise NotFound()
    row = db.session.get(OutboxEmail, email_id, populate_existing=True)
    audit.record_about(
        "email.retried",
        row,
        actor=actor,
        recipient_id=row.to_user_id,
        # The error's kind only: a server's words may quote the address or the message,
        # and audit rows are kept for good.
        detail={"kind": row.kind, "last_error": (row.last_error or "").split(":", 1)[0][:60]},
        now=now,
    )
    db.session.flush()
    return row
