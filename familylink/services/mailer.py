"""Email: queue into the outbox inside the caller's transaction; deliver later, reliably.

Delivery guarantee: every row is delivered at least once, and exactly once unless the
process dies between the SMTP server accepting a message and the commit that marks it sent.
"""

from __future__ import annotations

import contextlib
import logging
import random
import smtplib
import ssl
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app, has_request_context, render_template, url_for
from flask_mail import Connection, Message
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from familylink.extensions import db
from familylink.models import OutboxEmail, OutboxStatus, User
from familylink.services import audit
from familylink.services.program import get_program

log = logging.getLogger(__name__)

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
}


@dataclass
class Attachment:
    filename: str
    content_type: str
    data: bytes


def external_url(endpoint: str, **values) -> str:
    """An absolute link for an email, built from SERVER_NAME when it is set."""
    config = current_app.config
    if has_request_context() and not config.get("SERVER_NAME"):
        return url_for(endpoint, _external=True, **values)
    base = f"{config['PREFERRED_URL_SCHEME']}://{config.get('SERVER_NAME') or '127.0.0.1:5000'}"
    with current_app.test_request_context("/", base_url=base):
        return url_for(endpoint, _external=True, **values)


def queue_email(
    kind: str,
    *,
    to: User | str,
    dedupe_key: str,
    now: datetime,
    context: dict | None = None,
    patient_id: int | None = None,
    required_scope: str | None = None,
    attachment: Attachment | None = None,
    not_after: datetime | None = None,
    send_at: datetime | None = None,
    actor: User | None = None,
) -> OutboxEmail | None:
    """Render an email and add it to the outbox; return None when that key was queued before.

    `patient_id` + `required_scope` mean the recipient must still hold that consent scope at
    send time, or the email is cancelled instead of sent.
    """
    existing = db.session.scalar(select(OutboxEmail).where(OutboxEmail.dedupe_key == dedupe_key))
    if existing is not None:
        return None
    address = to.email if isinstance(to, User) else to.lower()
    program = get_program()
    zone = to.timezone if isinstance(to, User) else program.timezone
    ctx = {"program": program, "recipient": to if isinstance(to, User) else None, "zone": zone}
    ctx.update(context or {})
    subject = SUBJECTS[kind]
    row = OutboxEmail(
        kind=kind,
        dedupe_key=dedupe_key,
        to_address=address,
        to_user_id=to.id if isinstance(to, User) else None,
        patient_id=patient_id,
        required_scope=required_scope,
        subject=subject,
        text_body=render_template(f"email/{kind}.txt", subject=subject, **ctx),
        html_body=render_template(f"email/{kind}.html", subject=subject, **ctx),
        attachment_name=attachment.filename if attachment else None,
        attachment_type=attachment.content_type if attachment else None,
        attachment_data=attachment.data if attachment else None,
        created_at=now,
        next_attempt_at=send_at or now,
        not_after=not_after,
    )
    # A savepoint, so losing a dedupe race to another transaction leaves ours usable.
    try:
        with db.session.begin_nested():
            db.session.add(row)
    except IntegrityError:
        return None
    audit.record(
        "email.queued",
        actor=actor,
        obj=row,
        patient_id=patient_id,
        recipient_id=row.to_user_id,
        detail={"kind": kind},
        now=now,
    )
    return row


def cancel_pending(*, now: datetime, to_user_id: int, patient_id: int) -> int:
    """Cancel every unsent email to that person about that patient; return how many."""
    result = db.session.execute(
        update(OutboxEmail)
        .where(
            OutboxEmail.status == OutboxStatus.PENDING,
            OutboxEmail.to_user_id == to_user_id,
            OutboxEmail.patient_id == patient_id,
        )
        .values(status=OutboxStatus.CANCELLED, last_error="consent ended", locked_until=None)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount


def cancel_pending_to_address(*, now: datetime, to_address: str, patient_id: int) -> int:
    """Cancel unsent emails about that patient to an address with no account (invitations)."""
    result = db.session.execute(
        update(OutboxEmail)
        .where(
            OutboxEmail.status == OutboxStatus.PENDING,
            OutboxEmail.to_address == to_address.lower(),
            OutboxEmail.patient_id == patient_id,
        )
        .values(status=OutboxStatus.CANCELLED, last_error="consent ended", locked_until=None)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount


class VerifiedConnection(Connection):
    """Flask-Mail's connection, but TLS checks the server's certificate and host name.

    Flask-Mail calls starttls() with no context, which in Python 3.11 accepts any
    certificate; a man in the middle could then read every email.
    """

    def configure_host(self):
        timeout = current_app.config.get("MAIL_TIMEOUT", 10)
        context = ssl.create_default_context()
        if self.mail.use_ssl:
            host = smtplib.SMTP_SSL(
                self.mail.server, self.mail.port, timeout=timeout, context=context
            )
        else:
            host = smtplib.SMTP(self.mail.server, self.mail.port, timeout=timeout)
        try:
            if self.mail.use_tls:
                host.starttls(context=context)
            if self.mail.username and self.mail.password:
                host.login(self.mail.username, self.mail.password)
        except BaseException:
            host.close()
            raise
        return host


def claim_batch(*, now: datetime, limit: int, worker: str) -> list[OutboxEmail]:
    """Lease up to `limit` due rows to this worker, and commit the lease.

    On PostgreSQL rows locked by another worker's claim are skipped (SKIP LOCKED); on SQLite
    the single UPDATE is atomic. Either way a row is leased to one worker at a time, and a
    crashed worker's rows come back when the lease runs out.
    """
    lease = timedelta(seconds=current_app.config["MAIL_LEASE_SECONDS"])
    due = (
        select(OutboxEmail.id)
        .where(
            OutboxEmail.status == OutboxStatus.PENDING,
            OutboxEmail.next_attempt_at <= now,
            or_(OutboxEmail.locked_until.is_(None), OutboxEmail.locked_until < now),
        )
        .order_by(OutboxEmail.next_attempt_at, OutboxEmail.id)
        .limit(limit)
    )
    if db.engine.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    token = f"{worker}:{uuid.uuid4().hex[:8]}"
    db.session.execute(
        update(OutboxEmail)
        .where(OutboxEmail.id.in_(due.scalar_subquery()))
        .values(locked_until=now + lease, claimed_by=token)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return list(
        db.session.scalars(
            select(OutboxEmail)
            .where(OutboxEmail.claimed_by == token, OutboxEmail.status == OutboxStatus.PENDING)
            .order_by(OutboxEmail.id)
        )
    )


def _backoff(attempts: int) -> timedelta:
    """Exponential backoff with jitter: about 30 s, 1 min, 2 min … capped at 6 hours."""
    base = min(30 * 2 ** (attempts - 1), 6 * 3600)
    return timedelta(seconds=base * random.uniform(0.8, 1.2))


def _is_permanent(error: Exception) -> bool:
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in error.recipients.values()]
        return all(code >= 500 for code in codes)
    code = getattr(error, "smtp_code", None)
    return code is not None and code >= 500


def _message(row: OutboxEmail) -> Message:
    program = get_program()
    sender = (program.sender_name, current_app.config["MAIL_DEFAULT_SENDER"])
    msg = Message(
        subject=row.subject,
        recipients=[row.to_address],
        body=row.text_body,
        html=row.html_body,
        sender=sender,
    )
    if row.attachment_data:
        msg.attach(row.attachment_name, row.attachment_type, row.attachment_data)
    return msg


@dataclass
class DeliveryReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    cancelled: int = 0

    def __str__(self) -> str:
        return (
            f"sent {self.sent}, will retry {self.retried}, failed {self.failed}, "
            f"cancelled {self.cancelled}"
        )


def _still_wanted(row: OutboxEmail, now: datetime) -> str | None:
    """Why a leased row must not be sent any more, or None when it may go."""
    if row.not_after is not None and row.not_after <= now:
        return "too late to be useful"
    if row.patient_id is not None and row.to_user_id is not None:
        from familylink.services import consent  # consent depends on mail for its notices

        if not consent.may_disclose(
            row.to_user_id, row.patient_id, row.required_scope, now=now, audit_access=False
        ):
            return "consent ended"
    return None


def deliver_batch(rows: list[OutboxEmail], *, now: datetime) -> DeliveryReport:
    """Send leased rows over one SMTP connection, committing each outcome as it happens."""
    report = DeliveryReport()
    if not rows:
        return report
    max_attempts = current_app.config["MAIL_MAX_ATTEMPTS"]
    use_dev_mailbox = not current_app.config.get("MAIL_SERVER")
    if use_dev_mailbox and not current_app.config.get("DEV_MAILBOX"):
        log.error("MAIL_SERVER is not set: %d emails stay in the outbox", len(rows))
        return report
    connection = None
    try:
        for index, row in enumerate(rows):
            reason = _still_wanted(row, now)
            if reason:
                row.status, row.last_error, row.locked_until = OutboxStatus.CANCELLED, reason, None
                db.session.commit()
                report.cancelled += 1
                continue
            row.attempts += 1
            try:
                if not use_dev_mailbox:
                    if connection is None:
                        connection = VerifiedConnection(current_app.extensions["mail"]).__enter__()
                    connection.send(_message(row))
            except (smtplib.SMTPException, OSError) as error:
                row.last_error = f"{type(error).__name__}: {str(error)[:300]}"
                row.locked_until = None
                if _is_permanent(error) or row.attempts >= max_attempts:
                    row.status = OutboxStatus.FAILED
                    report.failed += 1
                    audit.record("email.failed", obj=row, patient_id=row.patient_id, now=now)
                else:
                    row.next_attempt_at = now + _backoff(row.attempts)
                    report.retried += 1
                db.session.commit()
                if not isinstance(error, smtplib.SMTPRecipientsRefused):
                    # The connection is suspect: hand the rest back for the next pass.
                    _release(rows[index + 1 :])
                    _close(connection)
                    connection = None
                    break
                continue
            row.status, row.sent_at, row.locked_until, row.last_error = (
                OutboxStatus.SENT,
                now,
                None,
                None,
            )
            audit.record(
                "email.sent",
                obj=row,
                patient_id=row.patient_id,
                recipient_id=row.to_user_id,
                detail={"kind": row.kind},
                now=now,
            )
            db.session.commit()
            report.sent += 1
    finally:
        _close(connection)
    return report


def _close(connection: Connection | None) -> None:
    if connection is None or connection.host is None:
        return
    with contextlib.suppress(smtplib.SMTPException, OSError):
        connection.host.quit()
    connection.host.close()


def _release(rows: list[OutboxEmail]) -> None:
    for row in rows:
        row.locked_until = None
    db.session.commit()


def send_pending(
    *, now: datetime, worker: str = "worker", limit: int | None = None
) -> DeliveryReport:
    """One delivery pass: claim due rows batch by batch and send them until none are left."""
    batch_size = current_app.config["MAIL_BATCH_SIZE"]
    total = DeliveryReport()
    handled = 0
    while limit is None or handled < limit:
        rows = claim_batch(now=now, limit=batch_size, worker=worker)
        if not rows:
            break
        report = deliver_batch(rows, now=now)
        handled += len(rows)
        for field in ("sent", "retried", "failed", "cancelled"):
            setattr(total, field, getattr(total, field) + getattr(report, field))
        if report.sent + report.failed + report.cancelled == 0:
            break  # the server is down: try again on the next pass, not in a tight loop
    return total
