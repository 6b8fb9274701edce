"""Delivery: claim due outbox rows, build each message, send it, record the outcome.

Every row is delivered at least once. A message's sent record is committed before the next
message is handed to the server, so a sender that dies repeats at most the one in flight.

Whether a recipient may still be told about a patient is not decided here: delivery asks
the consent check it is given, or the one the app factory wired in
`app.extensions[CONSENT_CHECK]`, and refuses to send without one.
"""

from __future__ import annotations

import logging
import random
import smtplib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import or_, select, text, update
from sqlalchemy.exc import OperationalError

from familylink.extensions import db
from familylink.models import OutboxEmail, OutboxStatus
from familylink.services import audit, screening
from familylink.services.mail.outbox import Attachment
from familylink.services.mail.smtp import (
    SmtpLink,
    build_message,
    connection_still_usable,
    is_permanent,
)
from familylink.services.program import get_program

log = logging.getLogger(__name__)

# The key under which the app factory puts the consent check in app.extensions.
CONSENT_CHECK = "familylink_consent_check"

# check(pairs, scope, *, now) -> the (recipient, patient id) pairs among `pairs` that still
# hold a consent covering `scope` (None: any consent in force). The recipient is the family
# member's user id, or the address for a row sent to no account yet (an invitation).
ConsentCheck = Callable[..., set[tuple[int | str, int]]]


@dataclass
class LeasedEmail:
    """An outbox row leased to this worker, as the sender needs it: values read once."""

    id: int
    kind: str
    claimed_by: str | None
    to_address: str
    to_user_id: int | None
    patient_id: int | None
    required_scope: str | None
    not_after: datetime | None
    attempts: int
    dedupe_key: str
    subject: str
    text_body: str
    html_body: str
    attachment: Attachment | None

    @classmethod
    def columns(cls) -> list:
        """The outbox columns `of` reads."""
        return [OutboxEmail.__table__.c[name] for name in _LEASED_COLUMNS]

    @classmethod
    def of(cls, row) -> LeasedEmail:
        """From an OutboxEmail, or a result row holding `columns()`."""
        attachment = None
        if row.attachment_data:
            attachment = Attachment(row.attachment_name, row.attachment_type, row.attachment_data)
        return cls(**{name: getattr(row, name) for name in _LEASED_VALUES}, attachment=attachment)


# The fields copied as they are; the attachment is built from its three columns.
_LEASED_VALUES = [f.name for f in fields(LeasedEmail) if f.name != "attachment"]
_LEASED_COLUMNS = [*_LEASED_VALUES, "attachment_name", "attachment_type", "attachment_data"]


@dataclass
class DeliveryReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    cancelled: int = 0

    def add(self, other: DeliveryReport) -> None:
        for name in ("sent", "retried", "failed", "cancelled"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def __str__(self) -> str:
        return (
            f"sent {self.sent}, will retry {self.retried}, failed {self.failed}, "
            f"cancelled {self.cancelled}"
        )


def claim_batch(*, now: datetime, limit: int, worker: str) -> list[LeasedEmail]:
    """Lease up to `limit` due rows to this worker, commit the lease, and return them.

    On PostgreSQL rows locked by another worker's claim are skipped (SKIP LOCKED); on SQLite
    the single UPDATE is atomic. Either way a row is leased to one worker at a time, and a
    crashed worker's rows come back when the lease runs out. On SQLite a write lock held too
    long by another process (past the busy timeout) gives an empty batch, not a crash: the
    rows stay due for the next pass.

    The rows come back from the claiming UPDATE itself (RETURNING), as plain values: one
    statement, and nothing in the ORM session that a later write elsewhere could make stale.
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
    sqlite = db.engine.dialect.name == "sqlite"
    if not sqlite:
        due = due.with_for_update(skip_locked=True)
    token = f"{worker}:{uuid.uuid4().hex[:8]}"
    try:
        # A Core statement on the table, not an ORM update: nothing in the session to sync.
        outbox = OutboxEmail.__table__
        rows = db.session.execute(
            update(outbox)
            .where(outbox.c.id.in_(due.scalar_subquery()))
            .values(locked_until=now + lease, claimed_by=token)
            .returning(*LeasedEmail.columns())
        ).all()
        db.session.commit()
    except OperationalError as error:
        db.session.rollback()
        if sqlite and "locked" in str(error):
            log.warning("outbox busy (another sender holds the write lock); trying next pass")
            return []
        raise
    return sorted((LeasedEmail.of(row) for row in rows), key=lambda item: item.id)


def _backoff(attempts: int) -> timedelta:
    """Exponential backoff with jitter: about 30 s, 1 min, 2 min … capped at 6 hours."""
    base = min(30 * 2 ** (attempts - 1), 6 * 3600)
    return timedelta(seconds=base * random.uniform(0.8, 1.2))


def wired_consent_check(given: ConsentCheck | None = None) -> ConsentCheck:
    """The consent check to use: `given`, else the app's; never none at all."""
    check = given or current_app.extensions.get(CONSENT_CHECK)
    if check is None:
        raise RuntimeError(
            f"no consent check: pass consent_check= or set app.extensions[{CONSENT_CHECK!r}]"
            " (create_app does); emails about patients cannot be sent without one"
        )
    return check


def _recipient(item: LeasedEmail) -> int | str:
    """Whom a row discloses to: the account, or the address when there is none yet."""
    return item.to_user_id if item.to_user_id is not None else item.to_address


def _consents_for(
    items: list[LeasedEmail], now: datetime, check: ConsentCheck
) -> set[tuple[int | str, int, str | None]]:
    """(recipient, patient, scope) of the batch's rows whose consent allows them now."""
    wanted: dict[str | None, set[tuple[int | str, int]]] = {}
    for item in items:
        if item.patient_id is not None:
            wanted.setdefault(item.required_scope, set()).add((_recipient(item), item.patient_id))
    allowed = set()
    for scope, pairs in wanted.items():
        allowed.update((who, patient_id, scope) for who, patient_id in check(pairs, scope, now=now))
    return allowed


def _still_wanted(item: LeasedEmail, now: datetime, allowed: set) -> str | None:
    """Why a leased row must not be sent any more, or None when it may go."""
    if item.not_after is not None and item.not_after <= now:
        return "too late to be useful"
    about_a_patient = item.patient_id is not None
    wanted = (_recipient(item), item.patient_id, item.required_scope)
    if about_a_patient and wanted not in allowed:
        return "consent ended"
    return None


def _settle(item: LeasedEmail, **values) -> bool:
    """Write an outcome to the row, only while this worker's claim on it stands.

    On PostgreSQL the commit does not wait for the disk (synchronous_commit off for this
    transaction only): a crash of the database server itself within a fraction of a second
    could forget the outcome, and then the email is sent again, never lost.
    """
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("SET LOCAL synchronous_commit TO OFF"))
    result = db.session.execute(
        update(OutboxEmail)
        .where(OutboxEmail.id == item.id, OutboxEmail.claimed_by == item.claimed_by)
        .values(locked_until=None, **values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 0:
        log.warning("outbox row %s was claimed by another sender meanwhile", item.id)
        return False
    return True


def _record_failure(item: LeasedEmail, error: Exception, *, now: datetime) -> bool:
    """Record a failed attempt: True when it will be retried, False when it failed for good."""
    attempts = item.attempts + 1
    smtp_error = isinstance(error, smtplib.SMTPException | OSError)
    last_error = f"{type(error).__name__}: {str(error)[:300]}"
    if (
        smtp_error
        and not is_permanent(error)
        and attempts < current_app.config["MAIL_MAX_ATTEMPTS"]
    ):
        next_attempt_at = now + _backoff(attempts)
        _settle(item, attempts=attempts, last_error=last_error, next_attempt_at=next_attempt_at)
        return True
    if not smtp_error:
        log.exception("outbox row %s could not be sent", item.id)
    _settle(item, status=OutboxStatus.FAILED, attempts=attempts, last_error=last_error)
    audit.record(
        "email.failed",
        object_type="outbox_emails",
        object_id=item.id,
        patient_id=item.patient_id,
        now=now,
    )
    return False


def _release(items: list[LeasedEmail]) -> None:
    """Hand unsent rows back before their lease ends, so another pass can take them now."""
    for item in items:
        db.session.execute(
            update(OutboxEmail)
            .where(OutboxEmail.id == item.id, OutboxEmail.claimed_by == item.claimed_by)
            .values(locked_until=None)
            .execution_options(synchronize_session=False)
        )
    db.session.commit()


def deliver_batch(
    items: list[LeasedEmail],
    *,
    now: datetime,
    deadline: float | None = None,
    smtp: SmtpLink | None = None,
    consent_check: ConsentCheck | None = None,
) -> DeliveryReport:
    """Send leased rows over one SMTP connection, committing each outcome as it happens.

    `deadline` (a time.monotonic() value) is when this worker stops starting new messages
    and hands the rest back, so it never sends a row whose lease may have run out. `smtp`
    lets a pass keep one connection across batches; without it the batch opens its own.
    """
    check = wired_consent_check(consent_check)
    report = DeliveryReport()
    if not items:
        return report
    use_dev_mailbox = not current_app.config.get("MAIL_SERVER")
    if use_dev_mailbox and not current_app.config.get("DEV_MAILBOX"):
        log.error("MAIL_SERVER is not set: %d emails stay in the outbox", len(items))
        _release(items)
        return report
    # A stored name with a line break would make every email fail; one saved before the
    # screen existed could name the kind of care: either gives way to a neutral name.
    sender = (
        screening.safe_sender_name(get_program().sender_name),
        current_app.config["MAIL_DEFAULT_SENDER"],
    )
    own_link = smtp is None
    smtp = smtp or SmtpLink()
    # Consent is checked again at send time: for the whole batch at its start.
    allowed = _consents_for(items, now, check)
    try:
        for index, item in enumerate(items):
            if deadline is not None and time.monotonic() >= deadline:
                _release(items[index:])
                break
            reason = _still_wanted(item, now, allowed)
            if reason:
                if _settle(item, status=OutboxStatus.CANCELLED, last_error=reason):
                    report.cancelled += 1
                db.session.commit()
                continue
            message = None
            try:
                message = build_message(item, sender)
                if not use_dev_mailbox:
                    smtp.send(message, sender[1], item.to_address)
            except Exception as error:  # noqa: BLE001 - every failure is recorded on the row
                if _record_failure(item, error, now=now):
                    report.retried += 1
                else:
                    report.failed += 1
                db.session.commit()
                # A message that could not be built never reached the connection.
                if message is not None and not connection_still_usable(error):
                    # The connection is suspect: hand the rest back for the next pass.
                    smtp.close()
                    _release(items[index + 1 :])
                    break
                continue
            # The server has accepted the message: commit its record before the next one
            # goes out, so that only a crash right here can make a later pass send it again.
            if _settle(
                item,
                status=OutboxStatus.SENT,
                attempts=item.attempts + 1,
                sent_at=now,
                last_error=None,
            ):
                audit.record(
                    "email.sent",
                    object_type="outbox_emails",
                    object_id=item.id,
                    patient_id=item.patient_id,
                    recipient_id=item.to_user_id,
                    detail={"kind": item.kind},
                    now=now,
                )
                report.sent += 1
            db.session.commit()
    finally:
        if own_link:
            smtp.close()
    return report


def send_pending(
    *,
    now: datetime,
    worker: str = "worker",
    limit: int | None = None,
    consent_check: ConsentCheck | None = None,
) -> DeliveryReport:
    """One delivery pass: claim due rows batch by batch and send them until none are left.

    `now` is the pass's starting instant; each batch acts at `now` plus the time the pass
    has taken so far, so a long pass does not lease rows with an instant already past.
    """
    check = wired_consent_check(consent_check)  # before any row is leased
    batch_size = current_app.config["MAIL_BATCH_SIZE"]
    lease_seconds = current_app.config["MAIL_LEASE_SECONDS"]
    started = time.monotonic()
    total = DeliveryReport()
    handled = 0
    smtp = SmtpLink()  # one SMTP connection for the whole pass
    try:
        while limit is None or handled < limit:
            batch_now = now + timedelta(seconds=time.monotonic() - started)
            size = batch_size if limit is None else min(batch_size, limit - handled)
            items = claim_batch(now=batch_now, limit=size, worker=worker)
            if not items:
                break
            # Start no new message in the second half of the lease: the one in flight then
            # has the other half to finish before any other worker may take the row.
            deadline = time.monotonic() + lease_seconds / 2
            report = deliver_batch(
                items, now=batch_now, deadline=deadline, smtp=smtp, consent_check=check
            )
            handled += len(items)
            total.add(report)
            if report.sent + report.failed + report.cancelled == 0:
                break  # the server is down: try again on the next pass, not in a tight loop
    finally:
        smtp.close()
        # Outcomes were written by UPDATE statements the session does not apply to what it
        # has loaded (and it keeps loaded values across commits): reload those rows.
        db.session.expire_all()
    return total
