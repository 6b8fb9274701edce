"""Email: queued here, inside the caller's transaction; delivered later, reliably, by
`delivery` (whose steps tests and benchmarks import from it). Callers write
`from familylink.services import mail`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from sqlalchemy import func, or_, select, update

from familylink.extensions import db
from familylink.models import OutboxEmail, OutboxStatus, User
from familylink.services import audit
from familylink.services.bulk import insert_rows
from familylink.services.errors import NotFound
from familylink.services.mail.delivery import CONSENT_CHECK, send_pending  # noqa: F401
from familylink.services.program import get_program

# Subjects are neutral: they never name the kind of care, a diagnosis or a substance.
SUBJECTS = {
    "verify_email": "Confirm your email address",
    "already_registered": "About your sign-up",
    "password_reset": "Reset your password",
    "reset_no_account": "About your password reset",
    "staff_invitation": "You're invited to set up your account",
    "patient_invitation": "You're invited to set up your account",
    "module_assigned": "New reading from your care team",
    "progress_update": "A new update from your care team",
    "family_invitation": "You're invited to join your family's sessions",
    "family_access_ended": "Your access has ended",
    "family_access_ended_therapist": "A family contact's access has ended",
    "family_access_ended_patient": "A sharing permission has ended",
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


@dataclass
class Queued:
    """One email to queue. `patient_id` + `required_scope` mean the recipient must still
    hold that consent scope at send time, or the email is cancelled instead of sent."""

    kind: str
    to: User | str  # or any account with the same id, email, name and timezone
    dedupe_key: str
    context: dict | None = None
    patient_id: int | None = None
    required_scope: str | None = None
    not_after: datetime | None = None
    send_at: datetime | None = None
    attachment: Attachment | None = None
    actor: User | None = None
    # The language to write it in when the recipient has no account yet (an invitation).
    locale: str | None = None


def queue_email(kind: str, *, to: User | str, dedupe_key: str, now: datetime, **fields):
    """Render one email and add it to the outbox (`fields`: those of Queued); return its
    row, or None when that dedupe key was queued before."""
    added = _insert([Queued(kind, to, dedupe_key, **fields)], now=now)
    return db.session.get(OutboxEmail, added[0]) if added else None


def queue_many(emails: list[Queued], *, now: datetime) -> int:
    """Queue many emails at once, as queue_email would one by one; return how many were new."""
    return len(_insert(emails, now=now)) if emails else 0


def _insert(emails: list[Queued], *, now: datetime) -> list[int]:
    """Render the emails, insert them in one statement that skips every dedupe key already
    in the outbox (whoever queued it, even a moment ago: overlapping sweeps queue each email
    once), then their audit rows in one more. Returns the ids of those added."""
    templates, outbox = _Templates(), OutboxEmail.__table__
    rows = [_row(email, now, templates) for email in emails]
    db.session.flush()  # the accounts they are addressed to
    added = insert_rows(
        db.session.connection(),
        outbox,
        rows,
        skip_existing=outbox.c.dedupe_key,
        returning=(outbox.c.id, outbox.c.dedupe_key),
    )
    by_key = {email.dedupe_key: email for email in emails}
    audit.record_many([_queued_event(by_key[key], row_id, now) for row_id, key in added])
    return sorted(row_id for row_id, _ in added)


def _row(email: Queued, now: datetime, templates: _Templates) -> dict:
    """The outbox row of one email: addressed, rendered, due at `send_at`."""
    program, to = get_program(), email.to
    person = None if isinstance(to, str) else to
    zone = person.timezone if person is not None else program.timezone
    context = {"program": program, "recipient": person, "zone": zone}
    subject = SUBJECTS[email.kind]
    context.update(email.context or {}, subject=subject)
    attachment = email.attachment or Attachment(None, None, None)
    return {
        "kind": email.kind,
        "to_address": person.email if person is not None else to.lower(),
        "to_user_id": person.id if person is not None else None,
        "subject": subject,
        "text_body": templates[f"email/{email.kind}.txt"](context),
        "html_body": templates[f"email/{email.kind}.html"](context),
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


class _Templates(dict):
    """Each email template looked up once per INSERT and rendered with its context alone:
    emails use no request, session or context processor. A sweep renders thousands, so
    the template's globals (gettext among them) are copied once, not merged per render as
    `Template.render` does (half the cost of a short template)."""

    def __missing__(self, name: str):
        template = current_app.jinja_env.get_template(name)
        self[name] = functools.partial(_render, template, dict(template.globals))
        return self[name]


def _render(template, globals_: dict, context: dict) -> str:
    context = template.new_context({**globals_, **context}, shared=True)
    return template.environment.concat(template.root_render_func(context))


def _queued_event(email: Queued, row_id: int, now: datetime) -> dict:
    to_user_id = None if isinstance(email.to, str) else email.to.id
    return audit.values(
        "email.queued",
        actor=email.actor,
        object_type=OutboxEmail.__tablename__,
        object_id=row_id,
        patient_id=email.patient_id,
        recipient_id=to_user_id,
        detail={"kind": email.kind},
        now=now,
    )


#: Rows that may still be sent: queued ones, and failed ones an admin may put back in the queue.
UNSENT = (OutboxStatus.PENDING, OutboxStatus.FAILED)


def cancel_pending(*, patient_id: int, to_user_ids=(), to_address: str | None = None) -> int:
    """Cancel every unsent email (queued, or failed and waiting for an admin's retry) about
    that patient to those people, or to that address (invitations, sent before there was an
    account); return how many."""
    to = [OutboxEmail.to_user_id.in_(list(to_user_ids))]
    if to_address is not None:
        to.append(OutboxEmail.to_address == to_address.lower())
    result = db.session.execute(
        update(OutboxEmail)
        .where(OutboxEmail.status.in_(UNSENT), OutboxEmail.patient_id == patient_id, or_(*to))
        .values(status=OutboxStatus.CANCELLED, last_error="consent ended", locked_until=None)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount


# --- The admin's view of the outbox.


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
    row = db.session.get(OutboxEmail, email_id)
    if row is None or row.status != OutboxStatus.FAILED:
        raise NotFound()
    row.status, row.attempts, row.next_attempt_at = OutboxStatus.PENDING, 0, now
    row.locked_until = row.claimed_by = None
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
