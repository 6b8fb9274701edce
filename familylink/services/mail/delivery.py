"""Delivery: claim due outbox rows, build each message, send it, record the outcome.

Every row is delivered at least once. A message's sent record is committed before the next
message is handed to the server, so a sender that dies repeats at most the one in flight.

Whether a recipient may still be told about a patient is not decided here: delivery asks
the consent check it is given, or the one the app factory wired in
`app.extensions[CONSENT_CHECK]`, and refuses to send without one.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import logging
import random
import smtplib
import ssl
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.headerregistry import Address, BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import formatdate
from types import SimpleNamespace

import flask_mail
from flask import current_app
from sqlalchemy import Connection, bindparam, func, or_, select, update
from sqlalchemy.exc import OperationalError

from familylink.extensions import db
from familylink.models import OutboxEmail, OutboxStatus
from familylink.services import audit, screening
from familylink.services.program import get_program

log = logging.getLogger(__name__)

# The key under which the app factory puts the consent check in app.extensions.
CONSENT_CHECK = "familylink_consent_check"
# check(pairs, scope, *, now) -> the (recipient, patient id) pairs among `pairs` that still
# hold a consent covering `scope` (None: any consent in force). The recipient is the family
# member's user id, or the address for a row sent to no account yet (an invitation).
ConsentCheck = Callable[..., set[tuple[int | str, int]]]

OUTBOX = OutboxEmail.__table__
# Every outcome is written only while this worker's claim on the row stands.
_SETTLE = update(OUTBOX).where(
    OUTBOX.c.id == bindparam("row_id"), OUTBOX.c.claimed_by == bindparam("token")
)
# On PostgreSQL the same statement tells the commit not to wait for the disk.
_SETTLE_PG = _SETTLE.returning(func.set_config("synchronous_commit", "off", True))


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


# --- The message, and the connection it goes over.


class _Header(BaseHeader):
    """A header that remembers how it was folded: shared headers are folded once."""

    def fold(self, *, policy):
        key = (policy.linesep, policy.max_line_length, policy.utf8)
        folds = self.__dict__.setdefault("_folds", {})
        if key not in folds:
            folds[key] = super().fold(policy=policy)
        return folds[key]


class _Headers(HeaderRegistry):
    """The email package's headers, each class made once and each value parsed once: the
    stock registry makes a new class for every header set and parses every value, most of
    the cost of building a message, though most headers (the sender, the subject, the parts'
    types) are the same in every message. Headers are immutable, so sharing them is safe."""

    __getitem__ = functools.cache(HeaderRegistry.__getitem__)
    __call__ = functools.lru_cache(maxsize=256)(HeaderRegistry.__call__)


POLICY = EmailPolicy(header_factory=_Headers(base_class=_Header))


def message_id(dedupe_key: str) -> str:
    """A Message-ID that is the same on every attempt, so duplicates can be recognised.

    A keyed hash of the dedupe key, which holds record ids that must not show in a header.
    """
    secret = str(current_app.config["SECRET_KEY"]).encode()
    digest = hmac.new(secret, dedupe_key.encode(), hashlib.sha256).hexdigest()[:32]
    domain = current_app.config["MAIL_DEFAULT_SENDER"].rpartition("@")[2] or "familylink"
    return f"<{digest}@{domain}>"


def build_message(item, sender: tuple[str, str]) -> EmailMessage:
    """The message as sent: text and HTML alternatives, and the attachment if any.

    `item` is a claimed row. Headers identify the outbox row only: no names, no kind of
    email, no patient.
    """
    message = EmailMessage(policy=POLICY)
    message["Subject"] = item.subject
    message["From"] = str(Address(sender[0], addr_spec=sender[1]))
    message["To"] = item.to_address
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = message_id(item.dedupe_key)
    message["X-FamilyLink-Id"] = str(item.id)
    message.set_content(item.text_body)
    message.add_alternative(item.html_body, subtype="html")
    if item.attachment_data:
        # Parsed as a header, so parameters such as method=REQUEST carry over.
        content_type = EmailMessage()
        content_type["Content-Type"] = item.attachment_type
        message.add_attachment(
            item.attachment_data,
            content_type.get_content_maintype(),
            content_type.get_content_subtype(),
            filename=item.attachment_name,
            params=dict(content_type["Content-Type"].params),
        )
    # Chosen here rather than by the generator, which searches the whole text for each one
    # it makes up; "=_" appears in neither quoted-printable nor base64.
    for part in message.walk():
        if part.is_multipart():
            part.set_boundary(f"=_{uuid.uuid4().hex}")
    return message


def _build(item, sender: tuple[str, str]) -> EmailMessage | Exception:
    try:
        return build_message(item, sender)
    except Exception as error:  # noqa: BLE001 - recorded on the row when its turn comes
        return error


class SmtpLink(flask_mail.Connection):
    """Flask-Mail's connection, opened when first needed and kept for a whole pass, whose
    TLS checks the server's certificate and host name (Flask-Mail calls starttls() with no
    context, which accepts any certificate)."""

    def __init__(self):
        super().__init__(current_app.extensions["mail"])
        self.opened = False

    def configure_host(self):
        mail, timeout = self.mail, current_app.config.get("MAIL_TIMEOUT", 10)
        # Built only when used: loading the CA store costs a tenth of a second.
        context = ssl.create_default_context() if mail.use_ssl or mail.use_tls else None
        if mail.use_ssl:
            host = smtplib.SMTP_SSL(mail.server, mail.port, timeout=timeout, context=context)
        else:
            host = smtplib.SMTP(mail.server, mail.port, timeout=timeout)
        try:
            if mail.use_tls:
                host.starttls(context=context)
            if mail.username and mail.password:
                host.login(mail.username, mail.password)
        except BaseException:
            host.close()
            raise
        return host

    def send(self, message: EmailMessage, sender: str, to: str) -> None:
        if not self.opened:
            self.__enter__()  # no host when Flask-Mail suppresses sending
            self.opened = True
        if self.host is not None:
            self.host.send_message(message, sender, [to])

    def close(self) -> None:
        host, self.host, self.opened = self.host, None, False
        if host is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                host.quit()
            host.close()


def _smtp_code(error: Exception) -> int | None:
    if isinstance(error, smtplib.SMTPRecipientsRefused):  # the worst of the recipients'
        return min(code for code, _ in error.recipients.values())
    return getattr(error, "smtp_code", None)


# --- Claiming, checking and recording.


def claim_batch(*, now: datetime, limit: int, worker: str) -> list[SimpleNamespace]:
    """Lease up to `limit` due rows to this worker, commit the lease, and return them.

    On PostgreSQL rows locked by another worker's claim are skipped (SKIP LOCKED); on SQLite
    the single UPDATE is atomic. Either way a row is leased to one worker at a time, and a
    crashed worker's rows come back when the lease runs out. On SQLite a write lock held
    past the busy timeout gives an empty batch, not a crash: the rows stay due.
    The rows come back as plain values from the claiming UPDATE itself (RETURNING).
    """
    lease = timedelta(seconds=current_app.config["MAIL_LEASE_SECONDS"])
    due = (
        select(OUTBOX.c.id)
        .where(
            OUTBOX.c.status == OutboxStatus.PENDING,
            OUTBOX.c.next_attempt_at <= now,
            or_(OUTBOX.c.locked_until.is_(None), OUTBOX.c.locked_until < now),
        )
        .order_by(OUTBOX.c.next_attempt_at, OUTBOX.c.id)
        .limit(limit)
    )
    sqlite = db.engine.dialect.name == "sqlite"
    if not sqlite:
        due = due.with_for_update(skip_locked=True)
    token = f"{worker}:{uuid.uuid4().hex[:8]}"
    try:
        rows = db.session.execute(
            update(OUTBOX)
            .where(OUTBOX.c.id.in_(due.scalar_subquery()))
            .values(locked_until=now + lease, claimed_by=token)
            .returning(*(c for c in OUTBOX.c if c.name not in ("created_at", "sent_at")))
        ).all()
        db.session.commit()
    except OperationalError as error:
        db.session.rollback()
        if sqlite and "locked" in str(error):
            log.warning("outbox busy (another sender holds the write lock); trying next pass")
            return []
        raise
    return sorted((SimpleNamespace(**row._mapping) for row in rows), key=lambda r: r.id)


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


def _consent_key(item) -> tuple:
    """Whom a row discloses to (the account, or the address when there is none yet), about
    which patient, under which scope."""
    who = item.to_user_id if item.to_user_id is not None else item.to_address
    return who, item.patient_id, item.required_scope


def _allowed(items: list, now: datetime, check: ConsentCheck) -> set[tuple]:
    """The consent keys of the batch's rows about a patient that may still be sent."""
    wanted: dict[str | None, set[tuple]] = {}
    for who, patient_id, scope in {_consent_key(i) for i in items if i.patient_id is not None}:
        wanted.setdefault(scope, set()).add((who, patient_id))
    return {
        (*pair, scope) for scope, pairs in wanted.items() for pair in check(pairs, scope, now=now)
    }


def _settle(records: Connection, item, **values) -> bool:
    """Write an outcome to the row while this worker's claim stands; False if it does not.

    On PostgreSQL the commit does not wait for the disk (for this transaction only): a crash
    of the database server itself could forget the last outcomes, and then those emails are
    sent again, never lost.
    """
    statement = _SETTLE_PG if records.dialect.name == "postgresql" else _SETTLE
    values = {"row_id": item.id, "token": item.claimed_by, "locked_until": None, **values}
    if records.execute(statement, values).rowcount:
        return True
    log.warning("outbox row %s was claimed by another sender meanwhile", item.id)
    return False


def _audit(records: Connection, action: str, item, now: datetime, **extra) -> None:
    values = audit.values(
        action,
        object_type=OUTBOX.name,
        object_id=item.id,
        patient_id=item.patient_id,
        now=now,
        **extra,
    )
    audit.record_many([values], connection=records)


def _record_failure(records: Connection, item, error: Exception, *, now: datetime) -> bool:
    """Record a failed attempt: True when it will be retried, False when it failed for good."""
    attempts = item.attempts + 1
    smtp_error = isinstance(error, smtplib.SMTPException | OSError)
    code = _smtp_code(error)
    last_error = f"{type(error).__name__}: {str(error)[:300]}"
    if smtp_error and not (code or 0) >= 500 and attempts < current_app.config["MAIL_MAX_ATTEMPTS"]:
        next_attempt_at = now + _backoff(attempts)
        _settle(
            records, item, attempts=attempts, last_error=last_error, next_attempt_at=next_attempt_at
        )
        return True
    if not smtp_error:
        log.exception("outbox row %s could not be sent", item.id)
    _settle(records, item, status=OutboxStatus.FAILED, attempts=attempts, last_error=last_error)
    _audit(records, "email.failed", item, now)
    return False


def _release(records: Connection, items: list) -> None:
    """Hand unsent rows back before their lease ends, so another pass can take them now."""
    if items:
        records.execute(
            _SETTLE.values(locked_until=None),
            [{"row_id": item.id, "token": item.claimed_by} for item in items],
        )
    records.commit()


def deliver_batch(
    items: list,
    *,
    now: datetime,
    deadline: float | None = None,
    smtp: SmtpLink | None = None,
    consent_check: ConsentCheck | None = None,
    records: Connection | None = None,
) -> DeliveryReport:
    """Send claimed rows over one SMTP connection, committing each outcome as it happens.

    `deadline` (a time.monotonic() value) is when this worker stops starting new messages
    and hands the rest back, so it never sends a row whose lease may have run out. `smtp`
    and `records` (the database connection outcomes are written and committed on) let a
    pass keep both connections across batches; without them the batch opens its own.
    """
    check = wired_consent_check(consent_check)
    report = DeliveryReport()
    if not items:
        return report
    use_dev_mailbox = not current_app.config.get("MAIL_SERVER")
    if use_dev_mailbox and not current_app.config.get("DEV_MAILBOX"):
        log.error("MAIL_SERVER is not set: %d emails stay in the outbox", len(items))
        with db.engine.connect() as own:
            _release(records or own, items)
        return report
    # A stored name with a line break would make every email fail; one saved before the
    # screen existed could name the kind of care: either gives way to a neutral name.
    sender = (
        screening.safe_sender_name(get_program().sender_name),
        current_app.config["MAIL_DEFAULT_SENDER"],
    )
    allowed = _allowed(items, now, check)  # consent checked again at send time, per batch
    db.session.commit()  # the check's transaction ends here; the records have their own
    # Every message is built before the first is sent, so nothing but sending and recording
    # sits between two messages (a message that cannot be built is recorded as a failure).
    messages = [_build(item, sender) for item in items]
    own_link, smtp = smtp is None, smtp or SmtpLink()
    own_records, records = records is None, records or db.engine.connect()
    try:
        for index, item in enumerate(items):
            if deadline is not None and time.monotonic() >= deadline:
                _release(records, items[index:])
                break
            if item.not_after is not None and item.not_after <= now:
                reason = "too late to be useful"
            elif item.patient_id is not None and _consent_key(item) not in allowed:
                reason = "consent ended"
            else:
                reason = None
            if reason:
                report.cancelled += _settle(
                    records, item, status=OutboxStatus.CANCELLED, last_error=reason
                )
                records.commit()
                continue
            message = messages[index]
            try:
                if isinstance(message, Exception):
                    raise message
                if not use_dev_mailbox:
                    smtp.send(message, sender[1], item.to_address)
            except Exception as error:  # noqa: BLE001 - every failure is recorded on the row
                if _record_failure(records, item, error, now=now):
                    report.retried += 1
                else:
                    report.failed += 1
                records.commit()
                # After a refusal of one message smtplib resets the session; 421 and I/O
                # errors end it: hand the rest back for the next pass. A message that could
                # not be built never reached the connection.
                code = _smtp_code(error)
                usable = isinstance(error, smtplib.SMTPRecipientsRefused) or (
                    isinstance(error, smtplib.SMTPResponseException) and code not in (-1, 421)
                )
                if not isinstance(message, Exception) and not usable:
                    smtp.close()
                    _release(records, items[index + 1 :])
                    break
                continue
            # The server has accepted the message: commit its record before the next one
            # goes out, so that only a crash right here can make a later pass send it again.
            done = {"status": OutboxStatus.SENT, "attempts": item.attempts + 1, "sent_at": now}
            if _settle(records, item, **done, last_error=None):
                kind = {"kind": item.kind}
                _audit(records, "email.sent", item, now, recipient_id=item.to_user_id, detail=kind)
                report.sent += 1
            records.commit()
    finally:
        if own_link:
            smtp.close()
        if own_records:
            records.close()
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
    total, handled = DeliveryReport(), 0
    # One SMTP connection and one database connection for the records, for the whole pass.
    smtp, records = SmtpLink(), db.engine.connect()
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
                items,
                now=batch_now,
                deadline=deadline,
                smtp=smtp,
                consent_check=check,
                records=records,
            )
            handled += len(items)
            total.add(report)
            if report.sent + report.failed + report.cancelled == 0:
                break  # the server is down: try again on the next pass, not in a tight loop
    finally:
        smtp.close()
        records.close()
        # Outcomes were written by Core statements the ORM session does not apply to the
        # rows it has loaded: reload those.
        db.session.expire_all()
    return total
