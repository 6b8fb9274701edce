"""The outbox: emails queued inside the caller's transaction, and the admin's view of them.

This is what the rest of the app imports; `delivery` sends what is queued here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from sqlalchemy import ARRAY, bindparam, cast, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from familylink.extensions import db
from familylink.models import OutboxEmail, OutboxStatus, User
from familylink.services import audit
from familylink.services.errors import NotFound
from familylink.services.program import get_program

# Subjects are neutral: they never name the kind of care, a diagnosis or a substance.
SUBJECTS = {
    "verify_email": "Confirm your email address",
    "already_registered": "About your sign-up",
    "password_reset": "Reset your password",
    "staff_invitation": "You're invited to set up your account",
    "patient_invitation": "You're invited to set up your account",
    "module_assigned": "New reading from your care team",
    "family_invitation": "You're invited to join your family's sessions",
    "family_access_ended": "Your access has ended",
    "family_access_ended_therapist": "A family contact's access has ended",
    "consent_expiring": "A sharing permission ends soon",
    "booking_confirmed": "Your appointment is confirmed",
    "booking_rescheduled": "Your appointment has moved",
    "booking_cancelled": "Your appointment is cancelled",
    "late_cancellation": "A late cancellation",
    "waitlist_offer": "A place has opened for you",
    "email_change_verify": "Confirm your new email address",
    "email_changed_notice": "Your sign-in email address was changed",
    "password_changed_notice": "Your password was changed",
    "reminder": "Your appointment reminder",
}


@dataclass
class Attachment:
    filename: str
    content_type: str
    data: bytes


# Where `make run` serves: the links of a debug app with no SERVER_NAME.
DEV_SERVER_NAME = "127.0.0.1:5000"


def external_url(endpoint: str, **values) -> str:
    """An absolute link for an email, built from the settings alone (SERVER_NAME and
    PREFERRED_URL_SCHEME), never from the request: its Host header is whatever the sender of
    the request chose, and a reset link on their host hands them the token."""
    app = current_app._get_current_object()
    config = app.config
    # No request context: pushing one would run the teardown hooks of the request being
    # served (its audit origin) when popped, and costs more than the link itself.
    adapter = app.url_map.bind(
        config.get("SERVER_NAME") or DEV_SERVER_NAME,
        script_name=config.get("APPLICATION_ROOT") or "/",
        url_scheme=config["PREFERRED_URL_SCHEME"],
    )
    app.inject_url_defaults(endpoint, values)
    return adapter.build(endpoint, values, force_external=True)


def _rendered(kind: str, to: User | str, context: dict | None) -> dict:
    """The columns that name the recipient and hold the words, rendered now."""
    program = get_program()
    zone = to.timezone if isinstance(to, User) else program.timezone
    ctx = {"program": program, "recipient": to if isinstance(to, User) else None, "zone": zone}
    ctx.update(context or {})
    subject = SUBJECTS[kind]
    return {
        "kind": kind,
        "to_address": to.email if isinstance(to, User) else to.lower(),
        "to_user_id": to.id if isinstance(to, User) else None,
        "subject": subject,
        "text_body": _render(f"email/{kind}.txt", {**ctx, "subject": subject}),
        "html_body": _render(f"email/{kind}.html", {**ctx, "subject": subject}),
    }


def _render(template: str, context: dict) -> str:
    """A template rendered with its context alone: emails use no request, session or
    context processor, and a sweep renders thousands, where Flask's per-call work is a third
    of the cost."""
    return current_app.jinja_env.get_template(template).render(context)


@dataclass
class Queued:
    """One email to queue. `patient_id` + `required_scope` mean the recipient must still
    hold that consent scope at send time, or the email is cancelled instead of sent."""

    kind: str
    to: User | str
    dedupe_key: str
    context: dict | None = None
    patient_id: int | None = None
    required_scope: str | None = None
    not_after: datetime | None = None
    send_at: datetime | None = None
    attachment: Attachment | None = None
    actor: User | None = None


def queue_email(kind: str, *, to: User | str, dedupe_key: str, now: datetime, **fields):
    """Render one email and add it to the outbox (`fields`: those of Queued); return its
    row, or None when that dedupe key was queued before."""
    added = _insert([Queued(kind, to, dedupe_key, **fields)], now=now)
    return db.session.get(OutboxEmail, added[0]) if added else None


def queue_many(emails: list[Queued], *, now: datetime) -> int:
    """Queue many emails at once, as queue_email would one by one; return how many were new."""
    return len(_insert(emails, now=now)) if emails else 0


def _insert(emails: list[Queued], *, now: datetime) -> list[int]:
    """One INSERT that skips every dedupe key already in the outbox, whoever queued it and
    even if they committed a moment ago (so sweeps that overlap queue each email once), then
    one INSERT of the audit rows of those it added. Returns their ids."""
    rows = []
    for email in emails:
        attachment = email.attachment or Attachment(None, None, None)
        rows.append(
            {
                **_rendered(email.kind, email.to, email.context),
                "dedupe_key": email.dedupe_key,
                "patient_id": email.patient_id,
                "required_scope": email.required_scope,
                "attachment_name": attachment.filename,
                "attachment_type": attachment.content_type,
                "attachment_data": attachment.data,
                "created_at": now,
                "next_attempt_at": email.send_at or now,
                "not_after": email.not_after,
                "status": OutboxStatus.PENDING,
                "attempts": 0,
            }
        )
    outbox = OutboxEmail.__table__
    if db.session.get_bind().dialect.name == "postgresql":
        # INSERT … SELECT from one array per column: one short statement whatever the count
        # (psycopg takes seconds to parse a VALUES list of thousands of rows).
        arrays = []
        for column in rows[0]:
            array = ARRAY(outbox.c[column].type)
            values = bindparam(column, [row[column] for row in rows], array)
            arrays.append(func.unnest(cast(values, array)))
        statement = postgresql.insert(outbox).from_select(list(rows[0]), select(*arrays))
        params = None
    else:
        statement, params = sqlite.insert(outbox), rows
    added = db.session.execute(
        statement.on_conflict_do_nothing(index_elements=[outbox.c.dedupe_key]).returning(
            outbox.c.id, outbox.c.dedupe_key, outbox.c.to_user_id
        ),
        params,
    ).all()
    by_key = {email.dedupe_key: email for email in emails}
    audit.record_many(
        [
            audit.values(
                "email.queued",
                actor=by_key[key].actor,
                object_type=outbox.name,
                object_id=row_id,
                patient_id=by_key[key].patient_id,
                recipient_id=to_user_id,
                detail={"kind": by_key[key].kind},
                now=now,
            )
            for row_id, key, to_user_id in added
        ]
    )
    return sorted(row_id for row_id, _, _ in added)


#: Rows that may still be sent: queued ones, and failed ones an admin may put back in the queue.
UNSENT = (OutboxStatus.PENDING, OutboxStatus.FAILED)


def _cancel_unsent(*where) -> int:
    result = db.session.execute(
        update(OutboxEmail)
        .where(OutboxEmail.status.in_(UNSENT), *where)
        .values(status=OutboxStatus.CANCELLED, last_error="consent ended", locked_until=None)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount


def cancel_pending(*, now: datetime, to_user_id: int, patient_id: int) -> int:
    """Cancel every unsent email (queued, or failed and waiting for an admin's retry) to
    that person about that patient; return how many."""
    return _cancel_unsent(
        OutboxEmail.to_user_id == to_user_id, OutboxEmail.patient_id == patient_id
    )


def cancel_pending_to_address(*, now: datetime, to_address: str, patient_id: int) -> int:
    """The same for an address with no account (invitations)."""
    address = OutboxEmail.to_address == to_address.lower()
    return _cancel_unsent(address, OutboxEmail.patient_id == patient_id)


# --- The admin's view of the outbox.


def outbox_counts() -> dict[str, int]:
    """How many rows are in each status (every status listed, zero included)."""
    rows = db.session.execute(
        select(OutboxEmail.status, func.count()).group_by(OutboxEmail.status)
    ).all()
    counts = {str(status): 0 for status in OutboxStatus}
    counts.update({str(status): n for status, n in rows})
    return counts


def failed_emails(limit: int = 100) -> list[OutboxEmail]:
    """The most recently failed rows, newest first."""
    return list(
        db.session.scalars(
            select(OutboxEmail)
            .where(OutboxEmail.status == OutboxStatus.FAILED)
            .order_by(OutboxEmail.created_at.desc(), OutboxEmail.id.desc())
            .limit(limit)
        )
    )


def retry_failed(email_id: int, *, actor: User, now: datetime) -> OutboxEmail:
    """Put one failed row back in the queue with a fresh set of attempts.

    Raises NotFound for an unknown id or a row that is not failed. Consent and the row's
    useful-until time are still checked when it is sent.
    """
    row = db.session.get(OutboxEmail, email_id)
    if row is None or row.status != OutboxStatus.FAILED:
        raise NotFound()
    row.status = OutboxStatus.PENDING
    row.attempts = 0
    row.next_attempt_at = now
    row.locked_until = None
    row.claimed_by = None
    audit.record(
        "email.retried",
        actor=actor,
        obj=row,
        patient_id=row.patient_id,
        recipient_id=row.to_user_id,
        detail={"kind": row.kind, "last_error": (row.last_error or "")[:200]},
        now=now,
    )
    db.session.flush()
    return row
